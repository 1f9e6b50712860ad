"""The concepts of the crosswalk's first pass, kept for its second: records in memory up to a
limit, then rows in Parquet files, so a big release is parsed once and memory stays bounded.

The second pass needs each concept's id, name, kind, synonyms, xrefs and sources, in the order
the reader gave them. Up to ``limit`` concepts (the default KG has 45k) are kept as records;
past it every reader's concepts go to a Parquet file of its own in ``folder`` and come back as
:class:`CachedConcept` tuples, which the crosswalk reads like records (a 2M-concept UMLS
release: about 5 s to write and read back, where parsing MRCONSO again took 30 s).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.parquet as pq

from graph.kg_tables import CONCEPT_SCHEMA, concept_rows_table
from graph.records import Concept, ConceptKind

SPILL_ROWS = 100_000  # concepts per Parquet row group


class CachedConcept(NamedTuple):
    """A concept read back from the cache: the fields of :class:`Concept`, already validated."""

    id: str
    name: str
    kind: ConceptKind
    synonyms: tuple[str, ...]
    xrefs: tuple[str, ...]
    sources: tuple[str, ...]


class ConceptCache:
    """Per reader, the concepts of pass one, in order (see module doc).

    Args:
        readers: how many readers (slots) there are.
        limit: concepts kept as records over all readers before they go to disk.
        folder: where the Parquet files go (created when needed).
    """

    def __init__(self, readers: int, *, limit: int, folder: Path) -> None:
        self.limit = limit
        self.folder = folder
        self.size = 0
        self._records: list[list[Concept]] = [[] for _ in range(readers)]
        self._files: list[Path | None] = [None] * readers
        self._writers: dict[int, pq.ParquetWriter] = {}
        self._pending: dict[int, list[tuple]] = {}

    def remember(self, slot: int, stream: Iterable[Concept]) -> Iterator[Concept]:
        """Pass ``stream`` through, keeping each concept for :meth:`streams`."""
        for concept in stream:
            self.size += 1
            if self._files[slot] is None and self.size > self.limit:
                self._spill_all()
            if self._files[slot] is None:
                self._records[slot].append(concept)
            else:
                self._add_row(slot, concept)
            yield concept
        self._flush(slot)

    def streams(self) -> list[Iterable[Concept | CachedConcept]]:
        """Each reader's concepts again, in order; call once every stream was read."""
        for slot in list(self._writers):
            self._flush(slot)
            self._writers.pop(slot).close()
        return [
            self._records[slot] if path is None else _read_back(path)
            for slot, path in enumerate(self._files)
        ]

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()

    def _spill_all(self) -> None:
        """Past the limit: every reader's records so far go to its file, and so will the rest."""
        self.folder.mkdir(parents=True, exist_ok=True)
        for slot, records in enumerate(self._records):
            self._files[slot] = self.folder / f"concepts-{slot}.parquet"
            self._writers[slot] = pq.ParquetWriter(self._files[slot], CONCEPT_SCHEMA)
            for start in range(0, len(records), SPILL_ROWS):
                chunk = records[start : start + SPILL_ROWS]
                self._writers[slot].write_table(concept_rows_table([_row(c) for c in chunk]))
            self._records[slot] = []

    def _add_row(self, slot: int, concept: Concept) -> None:
        pending = self._pending.setdefault(slot, [])
        pending.append(_row(concept))
        if len(pending) >= SPILL_ROWS:
            self._flush(slot)

    def _flush(self, slot: int) -> None:
        pending = self._pending.pop(slot, None)
        if pending:
            self._writers[slot].write_table(concept_rows_table(pending))


def _row(concept: Concept) -> tuple:
    c = concept
    return (c.id, c.name, c.kind.value, c.synonyms, c.xrefs, c.sources)


def _read_back(path: Path) -> Iterator[CachedConcept]:
    kinds = {kind.value: kind for kind in ConceptKind}
    for batch in pq.ParquetFile(path).iter_batches(batch_size=SPILL_ROWS):
        ids, names, kind_values = (batch.column(i).to_pylist() for i in range(3))
        synonyms, xrefs, sources = (_tuples(batch.column(i)) for i in range(3, 6))
        for row in zip(ids, names, kind_values, synonyms, xrefs, sources, strict=True):
            yield CachedConcept(row[0], row[1], kinds[row[2]], row[3], row[4], row[5])


def _tuples(column: pa.ListArray) -> list[tuple[str, ...]]:
    """A list<string> column as tuples: flat values and offsets, several times faster than
    ``to_pylist`` on the nested column."""
    values = column.flatten().to_pylist()
    offsets = (column.offsets.to_numpy() - column.offsets[0].as_py()).tolist()
    return [tuple(values[a:b]) for a, b in zip(offsets, offsets[1:], strict=False)]
