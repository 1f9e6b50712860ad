"""HPO disease annotations (``phenotype.hpoa``): disease -> phenotype relations.

Each row annotates an OMIM / ORPHA / DECIPHER disease with an HPO term. ``NOT`` rows become
negated relations (the disease is known *not* to show the phenotype); frequency, evidence,
onset, sex, modifier and references are kept as relation attributes, and a known frequency is
also the relation's weight. Rows of one disease are contiguous in the release, so the reader
merges the rows of one (disease, term) pair while it streams, holding one disease at a time.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graph.records import Concept, ConceptKind
from kg_loaders import hpoa_columns as hc
from kg_loaders.base import RelationRow, RelationTable, SourceReader, open_text
from kg_loaders.columns import ROW_SCHEMA, table_rows
from kg_loaders.curies import normalize_curie

COLUMNS = hc.COLUMNS

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
    columnar = True

    def __init__(self, path: Path | str, *, lenient: bool = False) -> None:
        super().__init__(path, lenient=lenient)
        self.table = RelationTable(HPOA_RELATIONS, self.stats)
        self._version: str | None = None
        self._table: pa.Table | None = None
        self._lock = threading.Lock()  # a build may read the table from two threads

    @property
    def version(self) -> str:
        # Read by the build thread and the prefetch thread at once: the value is published in
        # one assignment, never as a placeholder ("unknown" leaked into provenance that way).
        if self._version is None:
            found = "unknown"
            with open_text(self.path) as handle:
                for line in handle:
                    if not line.startswith("#"):
                        break
                    key, _, value = line[1:].partition(":")
                    if key.strip() in ("version", "date"):
                        found = value.strip()
                        break
            self._version = found
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

    def _skip_rows(self) -> int:
        """How many comment and header lines open the file."""
        skip = 0
        with open_text(self.path) as handle:
            for line in handle:
                if line[:1] != "#" and line[:11] != "database_id":
                    break
                skip += 1
        return skip

    def annotations(self) -> pa.Table:
        """The valid annotation rows as a string table (read once, then kept: ~30 MB)."""
        with self._lock:
            if self._table is None:
                table = hc.read_annotations(self.path, self._skip_rows())
                if table is None:  # malformed: the line reader names the line, or skips it
                    table = hc.rows_to_table(fields for _, fields in self.rows())
                self._table = table
        return self._table

    def concepts(self) -> Iterator[Concept]:
        """One disease concept per ``database_id``, named by its first row."""
        provenance = (self.provenance,)
        table = self.annotations()
        ids = table["database_id"]
        distinct = pc.unique(ids)  # in order of first appearance
        _, first = np.unique(pc.index_in(ids, distinct).to_numpy(), return_index=True)
        names = pc.take(table["disease_name"], pa.array(first)).to_pylist()
        for database_id, name in zip(distinct.to_pylist(), names, strict=True):
            disease = normalize_curie(database_id)
            if disease is None:
                continue
            yield Concept(
                id=disease, name=name or disease, kind=ConceptKind.DISEASE, sources=provenance
            )

    def relation_batches(self) -> Iterator[tuple[pa.Table, tuple[str, ...]]]:
        """All annotations as one batch: rows of one (disease, term, type, qualifier) merged,
        their attribute values joined with ``;`` and the largest frequency as the weight."""
        table = self.annotations()
        types = self.table.map_array(table["aspect"])
        keep = pc.is_valid(types)
        table, types = table.filter(keep), pc.filter(types, keep)
        ids = table["database_id"]
        distinct = pc.unique(ids)
        normalized = pa.array([normalize_curie(v) or v for v in distinct.to_pylist()], pa.string())
        src = pc.take(normalized, pc.index_in(ids, distinct))
        negated = pc.equal(table["qualifier"], "NOT")
        weight = hc.frequency_weights(table["frequency"], FREQUENCY_TERMS)
        attributes = hc.attributes_json(table)
        key = pc.binary_join_element_wise(src, table["hpo_id"], types, table["qualifier"], "\t")
        counts = pc.value_counts(key)
        repeated = pc.filter(counts.field("values"), pc.greater(counts.field("counts"), 1))
        weight, attributes, first = self._merge_repeats(table, key, repeated, weight, attributes)
        batch = pa.Table.from_arrays(
            [src, table["hpo_id"], types, negated, weight, attributes],
            schema=ROW_SCHEMA,
        )
        yield batch.filter(first), (self.provenance,)

    @staticmethod
    def _merge_repeats(
        table: pa.Table, key: pa.Array, repeated: pa.Array, weight: pa.Array, attributes: pa.Array
    ) -> tuple[pa.Array, pa.Array, pa.Array]:
        """Fold rows that share a key into the first of them (values kept in order, deduped).

        Returns:
            The weights (1.0 where no frequency is known), the attributes, and a mask of the
            rows to keep.
        """
        if not len(repeated):
            return pc.fill_null(weight, 1.0), attributes, pa.array(np.ones(len(key), dtype=bool))
        rows = np.flatnonzero(pc.is_in(key, repeated).to_numpy(zero_copy_only=False))
        keys = pc.take(key, pa.array(rows)).to_pylist()
        values = table.select(list(hc.ATTRIBUTES)).take(pa.array(rows)).to_pylist()
        weights = pc.take(weight, pa.array(rows)).to_pylist()
        groups: dict[str, tuple[int, dict[str, list[str]], list[float]]] = {}
        for row, k, fields, w in zip(rows.tolist(), keys, values, weights, strict=True):
            if k not in groups:
                groups[k] = (row, {name: [] for name in hc.ATTRIBUTES}, [])
            merged = groups[k]
            for name, value in fields.items():
                if value and value not in merged[1][name]:
                    merged[1][name].append(value)
            if w is not None:
                merged[2].append(w)
        is_first = np.ones(len(key), dtype=bool)
        is_first[rows] = False
        firsts = sorted(first_row for first_row, _, _ in groups.values())
        by_row = {first_row: (values, weights) for first_row, values, weights in groups.values()}
        is_first[firsts] = True
        mask = np.zeros(len(key), dtype=bool)
        mask[firsts] = True
        merged_weights = [max(by_row[r][1]) if by_row[r][1] else 1.0 for r in firsts]
        merged_attributes = []
        for r in firsts:
            joined = {name: ";".join(v) for name, v in by_row[r][0].items() if v}
            merged_attributes.append(json.dumps(joined) if joined else "")
        mask_array = pa.array(mask)
        weight = pc.replace_with_mask(
            pc.fill_null(weight, 1.0), mask_array, pa.array(merged_weights, pa.float64())
        )
        attributes = pc.replace_with_mask(
            attributes, mask_array, pa.array(merged_attributes, pa.string())
        )
        return weight, attributes, pa.array(is_first)

    def relation_rows(self) -> Iterator[RelationRow]:
        for batch, _ in self.relation_batches():
            yield from table_rows(batch)
