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

import pyarrow.parquet as pq

from graph.kg_tables import concept_rows_of, concept_rows_table
from graph.records import Concept, ConceptKind
from kg_loaders.spool import TableSpool

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
        self.size = 0
        self._records: list[list[Concept]] = [[] for _ in range(readers)]
        self._spool: TableSpool | None = None  # past the limit: every slot's rows, on disk
        self._folder = folder
        self._pending: dict[int, list[tuple]] = {}

    def remember(self, slot: int, stream: Iterable[Concept]) -> Iterator[Concept]:
        """Pass ``stream`` through, keeping each concept for :meth:`streams`."""
        for concept in stream:
            self.size += 1
            if self._spool is None and self.size > self.limit:
                self._spill_all()
            if self._spool is None:
                self._records[slot].append(concept)
            else:
                pending = self._pending.setdefault(slot, [])
                pending.append(_row(concept))
                if len(pending) >= SPILL_ROWS:
                    self._flush(slot)
            yield concept
        self._flush(slot)

    def streams(self) -> list[Iterable[Concept | CachedConcept]]:
        """Each reader's concepts again, in order; call once every stream was read."""
        if self._spool is None:
            return list(self._records)
        for slot in list(self._pending):
            self._flush(slot)
        files = dict(self._spool.items([_key(slot) for slot in range(len(self._records))]))
        return [_read_back(files.get(_key(slot))) for slot in range(len(self._records))]

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()

    def _spill_all(self) -> None:
        """Past the limit: every reader's records so far go to its file, and so will the rest."""
        self._spool = TableSpool(self._folder, budget_mb=0)  # every table goes to Parquet
        for slot, records in enumerate(self._records):
            for start in range(0, len(records), SPILL_ROWS):
                chunk = records[start : start + SPILL_ROWS]
                self._spool.add(_key(slot), concept_rows_table([_row(c) for c in chunk]))
            self._records[slot] = []

    def _flush(self, slot: int) -> None:
        pending = self._pending.pop(slot, None)
        if pending and self._spool is not None:
            self._spool.add(_key(slot), concept_rows_table(pending))


def _key(slot: int) -> str:
    return f"concepts-{slot}"


def _row(concept: Concept) -> tuple:
    c = concept
    return (c.id, c.name, c.kind.value, c.synonyms, c.xrefs, c.sources)


def _read_back(path: Path | None) -> Iterator[CachedConcept]:
    if path is None:  # a reader that gave no concepts
        return
    kinds = {kind.value: kind for kind in ConceptKind}
    for batch in pq.ParquetFile(path).iter_batches(batch_size=SPILL_ROWS):
        for cid, name, kind, synonyms, xrefs, sources in concept_rows_of(batch):
            yield CachedConcept(cid, name, kinds[kind], synonyms, xrefs, sources)
