"""``load_sources``: the column-wise load a build runs, from readers to a graph store.

Concepts pass through the crosswalk twice (index, then merge into rows and tables), kept between
the passes by ``kg_loaders.concept_cache`` (records, or Parquet past 250k); relations travel as
Arrow batches (``kg_loaders.columns``), rewritten column-wise (``kg_loaders.rewrite``).
Some sources are read ahead, on a thread or in a forked child (``kg_loaders.ahead``). A fresh
store is bulk-loaded on a background thread (``kg_loaders.bulk``) from tables kept in memory or
spooled to Parquet (``kg_loaders.spool``); a store that already holds a KG gets upserts.
"""

from __future__ import annotations

import gc
import shutil
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from graph.log import logger, track
from graph.store import GraphStore, batched
from kg_loaders.ahead import ReadAhead
from kg_loaders.base import SourceReader
from kg_loaders.concept_cache import ConceptCache
from kg_loaders.crosswalk import Crosswalk, CrosswalkReport

if TYPE_CHECKING:
    import pyarrow as pa

    from kg_loaders.build import BuildResult


class _Counts:
    """Concepts and relations per kind, type and source, as a build streams them."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self.concept_sources: Counter[str] = Counter()
        self.types: Counter[str] = Counter()
        self.relation_sources: Counter[str] = Counter()

    def concept_table(self, table: pa.Table) -> None:
        import pyarrow.compute as pc

        for column, counter in (
            (table["kind"], self.kinds),
            (pc.list_flatten(table["sources"]), self.concept_sources),
        ):
            counts = pc.value_counts(column)
            values, numbers = counts.field("values").to_pylist(), counts.field("counts")
            counter.update(dict(zip(values, numbers.to_pylist(), strict=True)))

    def relations(self, rel_type: str, rows: int, sources: tuple[str, ...]) -> None:
        self.types[rel_type] += rows
        for source in sources:
            self.relation_sources[source] += rows

    def fill(self, result: BuildResult) -> None:
        result.concepts_by_kind = dict(self.kinds.most_common())
        result.concepts_by_source = dict(self.concept_sources.most_common())
        result.concepts = sum(self.kinds.values())
        result.relations_by_type = dict(self.types.most_common())
        result.relations_by_source = dict(self.relation_sources.most_common())
        result.relations = sum(self.types.values())


# Concepts of all sources kept as records from the crosswalk's first pass for its second, up to
# this many (the default KG has 45k); beyond it they go to Parquet (``kg_loaders.concept_cache``).
CONCEPT_CACHE = 250_000
CONCEPT_BATCH = 100_000
RELATION_BATCH = 250_000
# A relation type's first table of at least this many rows, from a reader whose relations fit one
# rewrite batch, is copied at once, in the background, into its still-empty table (the default
# KG's 250k HPO annotations); the rest is collected and copied once at the end, since every COPY
# into a filled table costs more (a 10M-relation release copied early took longer, and 0.6 GB
# more memory, than one COPY per type at the end).
EARLY_COPY_ROWS = 100_000
REWRITE_ROWS = 1_000_000  # relation rows rewritten together (see ``_coalesced``)
GC_YOUNG = 10_000  # allocations between young GC passes during a load (Python's default: 700)


def load_sources(
    store: GraphStore,
    readers: Sequence[SourceReader],
    *,
    result: BuildResult,
    spool_dir: Path | None = None,
    concept_batch: int = CONCEPT_BATCH,
    relation_batch: int = RELATION_BATCH,
    memory_mb: int = 512,
) -> CrosswalkReport:
    """Crosswalk the readers' records and load them into ``store``.

    An empty store gets the bulk path: tables are collected per target table (in memory, or as
    Parquet in ``spool_dir`` past ``memory_mb``) and copied with ``GraphStore.copy_concepts``
    / ``copy_relations`` on a background thread (:mod:`kg_loaders.bulk`) while the readers go
    on. A store that already holds a KG gets upserts of ``concept_batch`` /
    ``relation_batch`` records.
    """
    from graph.kg_tables import concept_rows_table, row_concept, table_relations
    from kg_loaders.bulk import BulkWriter
    from kg_loaders.spool import TableSpool

    held = store.counts()
    bulk = held.total_relations == 0 and held.nodes.get("Concept", 0) == 0
    folder = spool_dir or Path(tempfile.mkdtemp(prefix="kgdx-spool-"))
    spool = TableSpool(folder, budget_mb=memory_mb)
    ahead = ReadAhead(readers)  # may fork: before this build starts threads of its own
    writer = BulkWriter(store) if bulk else None
    counts = _Counts()
    crosswalk = Crosswalk()
    # The prefetch and bulk-writer threads need the GIL only between Arrow and LadybugDB calls;
    # a 1 ms switch interval (default 5 ms) keeps them from waiting on this thread's parsing.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, 0.001))
    # A build allocates hundreds of thousands of long-lived objects (concepts, id maps): with
    # the default threshold (a young collection every 700 allocations, a full one every 100)
    # the cyclic GC keeps walking that growing heap, a quarter of the concept pass on the
    # default KG. Young collections every GC_YOUNG allocations still free any cycles.
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], GC_YOUNG), *thresholds[1:])
    # Sources read ahead come last: a column-wise one (its file is being parsed on the prefetch
    # thread), then one parsed in a child process, while this thread reads the others.
    order = sorted(
        range(len(readers)), key=lambda i: (ahead.forked(readers[i]), readers[i].columnar)
    )
    cache = ConceptCache(len(readers), limit=CONCEPT_CACHE, folder=folder / "concepts")
    try:
        crosswalk.index(
            track(cache.remember(i, ahead.concepts(readers[i])), f"indexing {readers[i].name}")
            for i in order
        )
        again = cache.streams()
        merged = crosswalk.concept_rows(again)
        merged = track(merged, "merging concepts", crosswalk.report.concepts_in)
        for batch in batched(merged, concept_batch):
            table = concept_rows_table(batch)
            counts.concept_table(table)
            if writer is not None:
                spool.add("Concept", table)
            else:
                concepts = [row_concept(row) for row in batch]
                store.upsert_concepts(concepts, batch_size=len(concepts))
        del again
        if writer is not None:  # one COPY: each COPY statement costs ~0.07 s on its own
            for key, data in spool.items(["Concept"]):
                writer.submit(key, data)
        for batch, sources, whole in track(_coalesced(ahead, readers), "rewriting relations"):
            for rel_type, table in crosswalk.relation_tables([(batch, sources)]):
                first = rel_type not in counts.types
                counts.relations(rel_type, table.num_rows, sources)
                if writer is None:
                    relations = table_relations(rel_type, table)
                    store.upsert_relations(relations, batch_size=relation_batch)
                elif first and whole and table.num_rows >= EARLY_COPY_ROWS:
                    writer.submit(rel_type, table)  # copy it into the empty table now
                else:
                    spool.add(rel_type, table)
        crosswalk.release()
        if writer is not None:
            for key, data in spool.items():
                writer.submit(key, data)
            logger.info("waiting for the store to finish its bulk loads")
            writer.finish()
    finally:
        sys.setswitchinterval(interval)
        gc.set_threshold(*thresholds)
        ahead.close()
        cache.close()
        if writer is not None:
            writer.close()
        spool.close()
        if spool_dir is None:
            shutil.rmtree(folder, ignore_errors=True)
    counts.fill(result)
    for reader in readers:
        reader.stats.concepts = result.concepts_by_source.get(reader.provenance, 0)
        reader.stats.relations = result.relations_by_source.get(reader.provenance, 0)
    return crosswalk.report


def _coalesced(
    ahead: ReadAhead, readers: Sequence[SourceReader]
) -> Iterator[tuple[pa.Table, tuple[str, ...], bool]]:
    """Each reader's relation batches joined up to REWRITE_ROWS rows (a rewrite hashes every
    known id once, 0.55 s for 2M ids, whatever the batch size), with their provenance and
    whether the batch is the reader's whole output (only then is an early copy worth it)."""
    import pyarrow as pa

    for reader in readers:
        pending: list[pa.Table] = []
        pending_sources: tuple[str, ...] = ()
        rows, whole = 0, True
        for batch, sources in ahead.relation_batches(reader):
            if pending and sources != pending_sources:
                yield pa.concat_tables(pending), pending_sources, False
                pending, rows, whole = [], 0, False
            pending.append(batch)
            pending_sources = sources
            rows += batch.num_rows
            if rows >= REWRITE_ROWS:
                yield pa.concat_tables(pending), pending_sources, False
                pending, rows, whole = [], 0, False
        if pending:
            yield pa.concat_tables(pending), pending_sources, whole
