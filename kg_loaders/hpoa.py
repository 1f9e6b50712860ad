"""HPO disease annotations (``phenotype.hpoa``): disease -> phenotype relations.

Each row annotates an OMIM / ORPHA / DECIPHER disease with an HPO term. ``NOT`` rows become
negated relations (the disease is known *not* to show the phenotype); frequency, evidence,
onset, sex, modifier and references are kept as relation attributes, and a known frequency is
also the relation's weight. Rows of one disease are contiguous in the release, so the reader
merges the rows of one (disease, term) pair while it streams, holding one disease at a time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from graph.records import Concept, ConceptKind
from kg_loaders.base import RelationRow, RelationTable, SourceReader, open_text
from kg_loaders.curies import normalize_curie

COLUMNS = (
    "database_id",
    "disease_name",
    "qualifier",
    "hpo_id",
    "reference",
    "evidence",
    "onset",
    "frequency",
    "sex",
    "modifier",
    "aspect",
    "biocuration",
)
# Annotation aspect -> schema type: P phenotypic abnormality, I inheritance, C clinical course,
# M clinical modifier, H past medical history.
HPOA_RELATIONS: dict[str, str | None] = {
    "P": "HAS_PHENOTYPE",
    "I": "ASSOCIATED_WITH",
    "C": "ASSOCIATED_WITH",
    "M": "ASSOCIATED_WITH",
    "H": "ASSOCIATED_WITH",
}
# HPO frequency terms -> the middle of the range they stand for.
FREQUENCY_TERMS: dict[str, float] = {
    "HP:0040280": 1.0,  # obligate
    "HP:0040281": 0.895,  # very frequent, 80-99%
    "HP:0040282": 0.545,  # frequent, 30-79%
    "HP:0040283": 0.17,  # occasional, 5-29%
    "HP:0040284": 0.025,  # very rare, 1-4%
    "HP:0040285": 0.0,  # excluded
}
_FRACTION = re.compile(r"^(\d+)/(\d+)$")
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)%$")
_ATTRIBUTES = ("evidence", "onset", "frequency", "sex", "modifier", "reference", "aspect")
_ATTRIBUTE_INDEX = tuple(COLUMNS.index(name) for name in _ATTRIBUTES)
_FREQUENCY_SLOT = _ATTRIBUTES.index("frequency")


def frequency_weight(value: str) -> float | None:
    """A frequency (``3/7``, ``45%`` or an HPO frequency term) as a number in [0, 1]."""
    if not value:
        return None
    if value in FREQUENCY_TERMS:
        return FREQUENCY_TERMS[value]
    if match := _FRACTION.match(value):
        num, den = int(match.group(1)), int(match.group(2))
        return min(1.0, num / den) if den else None
    if match := _PERCENT.match(value):
        return min(1.0, float(match.group(1)) / 100.0)
    return None


class HpoaReader(SourceReader):
    """Read ``phenotype.hpoa``.

    Args:
        path: the ``phenotype.hpoa`` file (``.gz`` works too).
        lenient: skip malformed lines instead of failing.
    """

    name = "HPO"

    def __init__(self, path: Path | str, *, lenient: bool = False) -> None:
        super().__init__(path, lenient=lenient)
        self.table = RelationTable(HPOA_RELATIONS, self.stats)
        self._version: str | None = None

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = "unknown"
            with open_text(self.path) as handle:
                for line in handle:
                    if not line.startswith("#"):
                        break
                    key, _, value = line[1:].partition(":")
                    if key.strip() in ("version", "date"):
                        self._version = value.strip()
                        break
        return self._version

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """Annotation rows as field lists in :data:`COLUMNS` order (comments, header skipped)."""
        width = len(COLUMNS)
        with open_text(self.path) as handle:
            for line_no, line in enumerate(handle, 1):
                if line[0] == "#" or line[:11] == "database_id" or not line.strip():
                    continue
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) != width:
                    self.bad_line(
                        self.path, line_no, f"expected {width} fields, found {len(fields)}"
                    )
                    continue
                if ":" not in fields[0] or not fields[3].startswith("HP:"):
                    self.bad_line(self.path, line_no, "database_id or hpo_id is not PREFIX:id")
                    continue
                if fields[2] and fields[2] != "NOT":
                    self.bad_line(self.path, line_no, f"unknown qualifier {fields[2]!r}")
                    continue
                yield line_no, fields

    def concepts(self) -> Iterator[Concept]:
        """One disease concept per ``database_id`` (rows are checked by the relation pass)."""
        provenance = (self.provenance,)
        seen: set[str] = set()
        with open_text(self.path) as handle:
            for line in handle:
                if line[0] == "#" or line[:11] == "database_id":
                    continue
                fields = line.split("\t", 2)
                if len(fields) < 3 or fields[0] in seen or ":" not in fields[0]:
                    continue
                seen.add(fields[0])
                disease = normalize_curie(fields[0])
                if disease is None:
                    continue
                yield Concept(
                    id=disease,
                    name=fields[1] or disease,
                    kind=ConceptKind.DISEASE,
                    sources=provenance,
                )

    def relation_rows(self) -> Iterator[RelationRow]:
        current: str | None = None
        pending: dict[tuple[str, str, bool], list[list[str]]] = {}
        table = self.table
        for _, fields in self.rows():
            if fields[0] != current:
                yield from self._flush(current, pending)
                current, pending = fields[0], {}
            rel_type = table.map(fields[10])
            if rel_type is None:
                continue
            key = (fields[3], rel_type, fields[2] == "NOT")
            merged = pending.get(key)
            if merged is None:
                pending[key] = [[fields[i]] if fields[i] else [] for i in _ATTRIBUTE_INDEX]
                continue
            for values, i in zip(merged, _ATTRIBUTE_INDEX, strict=True):
                if fields[i] and fields[i] not in values:
                    values.append(fields[i])
        yield from self._flush(current, pending)

    @staticmethod
    def _flush(disease_field: str | None, pending) -> Iterator[RelationRow]:
        if disease_field is None:
            return
        disease = normalize_curie(disease_field) or disease_field
        for (term, rel_type, negated), values in pending.items():
            frequencies = values[_FREQUENCY_SLOT]
            weights = [w for w in map(frequency_weight, frequencies) if w is not None]
            attributes = {
                name: ";".join(v) for name, v in zip(_ATTRIBUTES, values, strict=True) if v
            }
            yield (disease, term, rel_type, negated, max(weights) if weights else 1.0, attributes)
