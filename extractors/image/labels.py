"""Label maps: each output class of an image model is a knowledge-graph concept id.

A label map is a TSV data file (``index``/``label``/``concept_id``/``concept_name`` columns) that
ships beside the model's weights, so a model never emits a free-text class name.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from graph.errors import ConfigError
from graph.records import check_curie


@dataclass(frozen=True)
class LabelMap:
    """Ordered output classes of a model and the KG concept each one stands for."""

    labels: tuple[str, ...]
    concept_ids: tuple[str, ...]
    concept_names: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def concept_of(self, label: str) -> str:
        """Return the concept id of ``label``; raises ``ConfigError`` for an unknown label."""
        try:
            return self.concept_ids[self.labels.index(label)]
        except ValueError:
            raise ConfigError(f"label {label!r} is not in the label map {self.labels}") from None


def load_label_map(path: Path) -> LabelMap:
    """Read a label-map TSV (rows in output order; an ``index`` column, when present, decides).

    Raises:
        ConfigError: the file is missing, empty, has a non-CURIE concept id or gaps in ``index``.
    """
    if not path.is_file():
        raise ConfigError(f"label map {path} not found; it must ship beside the model weights")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    if not rows or not {"label", "concept_id"} <= set(rows[0]):
        raise ConfigError(f"label map {path} needs a header with 'label' and 'concept_id' columns")
    if "index" in rows[0]:
        rows.sort(key=lambda row: int(row["index"]))
        if [int(row["index"]) for row in rows] != list(range(len(rows))):
            raise ConfigError(f"label map {path}: 'index' must run 0..{len(rows) - 1} without gaps")
    try:
        concept_ids = tuple(check_curie(row["concept_id"].strip()) for row in rows)
    except ValueError as exc:
        raise ConfigError(f"label map {path}: {exc}") from None
    return LabelMap(
        labels=tuple(row["label"].strip() for row in rows),
        concept_ids=concept_ids,
        concept_names=tuple((row.get("concept_name") or row["label"]).strip() for row in rows),
    )
