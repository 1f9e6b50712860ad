"""Embedded graph store on LadybugDB (``ladybug`` on PyPI, the maintained Kuzu fork).

On-disk, zero setup. Bulk KG loads go through ``COPY FROM`` an Arrow table; patients are written
in one transaction; researchers' Cypher runs in a sandboxed worker process that opens the
database read-only, with a timeout, a row limit, a byte cap and a memory cap
(:mod:`graph.query_runner`).
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute  # noqa: F401  (pa.compute)

from graph.errors import StoreError, UnknownConceptError
from graph.kg_tables import concept_table, relation_table
from graph.query_runner import QueryJob, QueryPool
from graph.records import (
    Concept,
    Relation,
)
from graph.schema import NODE_LABELS, relation_tables
from graph.settings import Settings
from graph.store import GraphStore, QueryResult, StoreCounts
from graph.stores import ladybug_cypher as cy
from graph.stores.ladybug_kg import KnowledgeReads
from graph.stores.ladybug_layout import (
    add_missing_columns,
    check_readable,
    missing_columns,
    upgrade_layout,
)
from graph.stores.ladybug_patients import PatientHooks
from graph.stores.ladybug_transactions import Transactions
from graph.stores.lock import claim_writer, release_writer
from graph.stores.prediction_memory import PredictionMemory

# Up to this many ids an existence check sends a list parameter; beyond it an Arrow table
# (measured on the demo store: 0.07 ms vs 1.6 ms for 8 ids; Arrow wins on bulk loads).
SMALL_ID_LIST = 2_000


class EmbeddedStore(Transactions, KnowledgeReads, PatientHooks, GraphStore):
    """LadybugDB-backed :class:`GraphStore`.

    Args:
        settings: ``settings.resolved_db_path`` is the database folder (created when missing).
        path: overrides the database folder.
        bulk: opened for a bulk build (``kgdx kg build`` stages into a fresh database): no
            checkpoint after every ``COPY``, one when the store closes (a fifth faster on the
            default KG); a ``COPY`` of a million rows or more still checkpoints, so the
            write-ahead log stays bounded.
        read_only: open a read-only handle, for commands that only read (``kgdx query``,
            ``kgdx kg stats``, the exports). LadybugDB lets any number of read-only handles
            open a database that another process (``kgdx serve``) holds read-write; they see
            what it committed when they open. The database must exist; writes raise
            :class:`StoreError`.

    Raises:
        StoreError: the database cannot be opened (held by another writer, of another
            process or of this one, missing for a read-only open, or laid out by an older kgdx
            in a way that cannot be upgraded).
    """

    name = "embedded"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        path: str | Path | None = None,
        bulk: bool = False,
        read_only: bool = False,
    ) -> None:
        super().__init__(settings)
        import ladybug

        self._ladybug = ladybug
        self.path = Path(path) if path is not None else self.settings.resolved_db_path
        self.read_only = read_only
        if read_only:
            check_readable(self.path)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._query_pool = QueryPool(
            workers=self.settings.query_workers, warm=self.settings.query_warm_workers
        )
        self._query_lock = threading.local()  # see queries_take()
        self._dirty = not read_only  # a read-only handle has nothing to checkpoint
        self._commits = 0  # write transactions since this store last checkpointed
        self._group = None  # the open commit group (Transactions.commit_group), if any
        self._checkpoint_later = None  # Transactions.defer_checkpoints: who runs them, if not us
        # what it last read or wrote of its patients (forgotten at any other write); a
        # read-only handle keeps nothing: another process writes what it reads
        self._memory = PredictionMemory()
        if read_only:
            self._memory.disable()
        self._bulk = bulk
        self._writer_key: str | None = None
        try:
            if not read_only:  # refused before anything is opened
                self._writer_key = claim_writer(self.path, self)
            self._open(bulk)
        except StoreError:
            self._release_writer()
            self._query_pool.close()  # _open closes it too: closing twice is harmless
            raise
        if read_only and missing_columns(self._rows):
            # written by an older kgdx: upgrade it through a short read-write open (refused
            # while another process writes to it), then read it as it is now
            self._close_handles()
            upgrade_layout(self.path, self.settings)
            self._open(bulk)
        elif not read_only:
            for statement in cy.create_schema():
                self.connection.execute(statement)
            add_missing_columns(self._rows, self.connection)
        self._check_layout()

    def _open(self, bulk: bool) -> None:
        try:
            pool = self.settings.buffer_pool_mb
            self._db = self._ladybug.Database(
                str(self.path),
                buffer_pool_size=pool * 1024 * 1024 if pool else 0,
                auto_checkpoint=not bulk and not self.read_only,
                read_only=self.read_only,
            )
            self.connection = self._ladybug.Connection(self._db)
        except RuntimeError as exc:
            self._query_pool.close()
            raise StoreError(f"cannot open the embedded store at {self.path}: {exc}") from None

    def _check_layout(self) -> None:
        """Refuse a database whose tables an older kgdx laid out differently (``IF NOT EXISTS``
        keeps an old table as it was), instead of failing on the first write or read."""
        want = {name: kind for name, kind in relation_tables()["IS_A"][1]}
        rows = self._rows("CALL table_info('IS_A') RETURN *")
        found = {row[1]: {"BOOL": "BOOLEAN"}.get(row[2], row[2]) for row in rows}
        stale = {n: k for n, k in found.items() if n in want and want[n] != k}
        if stale:
            self.close()
            raise StoreError(
                f"{self.path} was built by an older kgdx (IS_A {stale}, now "
                f"{ {n: want[n] for n in stale} }); move it away, run `kgdx kg build`, and "
                "ingest its patients again"
            )

    # ------------------------------------------------------------------ plumbing
    def close(self) -> None:
        try:
            if self._bulk:  # a bulk store checkpoints once, here (see ``bulk``)
                self._bulk = False
                self.connection.execute("CHECKPOINT")
        finally:
            self._query_pool.close()
            self._close_handles()
            self._release_writer()

    def _release_writer(self) -> None:
        if self._writer_key is not None:
            release_writer(self._writer_key, self)
            self._writer_key = None

    def _close_handles(self) -> None:
        for handle in (self.connection, self._db):
            handle.close()

    def _refuse_read_only(self, what: str) -> None:
        if self.read_only:
            raise StoreError(
                f"{what}: {self.path} is open read-only here (a reading command); "
                "write through a command that opens it for writing"
            )

    def set_query_threads(self, threads: int) -> None:
        """Threads each in-process query may use from now on (0: all cores). A point read or
        write of one patient ran ~2x faster on one thread (0.10 vs 0.27 ms for a patient's
        reports; ``Engine.diagnose`` 8.3 vs 10.9 ms on the demo model): scheduling a tiny query's
        tasks across threads costs more than it saves. Bulk loads keep the default."""
        self.connection.set_max_threads_for_exec(threads or os.cpu_count() or 1)

    def _rows(self, cypher: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        try:
            result = self.connection.execute(cypher, params or {})
        except RuntimeError as exc:
            self._statement_failed()
            raise StoreError(f"embedded store query failed: {exc}") from None
        rows = []
        while result.has_next():
            rows.append(result.get_next())
        return rows

    def _write(self, statements: list[tuple[str, dict[str, Any]]]) -> None:
        """Run statements in one transaction; roll back on any error."""
        with self._transaction("write"):
            for cypher, params in statements:
                self.connection.execute(cypher, params)

    def _copy(self, table: str, rows: pa.Table | Path, options: str = "") -> None:
        """Bulk ``COPY`` from an Arrow table or a Parquet file (one statement: atomic).

        Raises:
            UnknownConceptError: a relation endpoint is not a stored concept.
            StoreError: anything else LadybugDB refused (a duplicate id, a full disk).
        """
        self._refuse_read_only(f"bulk load into {table}")
        self._memory.forget_all()
        try:
            if isinstance(rows, pa.Table):
                self.connection.execute(cy.copy_from(table, options), {"rows": rows})
            else:
                self.connection.execute(cy.copy_from(table, options, path=str(rows)))
        except RuntimeError as exc:
            self._statement_failed()
            if "Unable to find primary key" in str(exc) and table != "Concept":
                raise UnknownConceptError(
                    f"bulk load into {table}: a relation endpoint is not a stored concept "
                    f"({exc}); load the concepts first"
                ) from None
            raise StoreError(f"bulk load into {table} failed: {exc}") from None

    def _arrow(self, cypher: str, rows: pa.Table) -> pa.Table:
        try:
            return self.connection.execute(cypher, {"rows": rows}).get_as_arrow()
        except RuntimeError as exc:
            self._statement_failed()
            raise StoreError(f"embedded store query failed: {exc}") from None

    # ------------------------------------------------------------------ KG hooks
    def _existing(self, label: str, ids: list[str]) -> set[str]:
        if not ids:
            return set()
        if len(ids) <= SMALL_ID_LIST:  # a list parameter: ~20x faster than an Arrow scan here
            return {row[0] for row in self._rows(cy.existing_listed(label), {"ids": ids})}
        found = self._arrow(cy.existing_ids(label), pa.table({"i": pa.array(ids, pa.string())}))
        return set(found.column(0).to_pylist())

    def _upsert_concepts(self, concepts: list[Concept]) -> None:
        existing = self._existing("Concept", [c.id for c in concepts])
        fresh = [c for c in concepts if c.id not in existing]
        # New rows by COPY, known ones by UPDATE: one transaction, so a batch lands whole or not.
        with self._transaction("concept upsert"):
            if fresh:
                self._copy("Concept", concept_table(fresh))
            if existing:
                known = concept_table([c for c in concepts if c.id in existing])
                self.connection.execute(cy.UPDATE_CONCEPTS, {"rows": known})

    # A bulk load is one auto-committed COPY statement: atomic on its own, and a third faster
    # than the same COPY inside BEGIN ... COMMIT (measured on the default KG).
    def _copy_concepts(self, table: pa.Table | Path) -> int:
        return self._copy_counted("Concept", table, cy.count_nodes("Concept"))

    def _copy_relations(self, rel_type: str, table: pa.Table | Path) -> int:
        options = cy.copy_options(rel_type)
        return self._copy_counted(rel_type, table, cy.count_relations(rel_type), options)

    def _copy_counted(
        self, name: str, table: pa.Table | Path, count: str, options: str = ""
    ) -> int:
        """COPY, then check the table grew by exactly the rows given: a bulk load that stored
        more or fewer rows fails loudly (a staged build then keeps the previous KG).

        Raises:
            StoreError: the row count does not match.
        """
        self._dirty = True
        rows = _num_rows(table)
        before = self._rows(count)[0][0]
        self._copy(name, table, options)
        stored = self._rows(count)[0][0] - before
        if stored != rows:
            raise StoreError(f"bulk load into {name}: {rows} rows given, {stored} stored")
        if self._bulk and rows >= 1_000_000:
            self.connection.execute("CHECKPOINT")
        return rows

    def _missing_concepts(self, concept_ids: set[str]) -> set[str]:
        unknown = self._memory.unknown_concepts(set(concept_ids))
        if not unknown:
            return set()
        found = self._existing("Concept", sorted(unknown))
        self._memory.concepts_found(found)
        return unknown - found

    def _upsert_relations(self, relations: list[Relation]) -> None:
        by_type: dict[str, list[Relation]] = defaultdict(list)
        for relation in relations:
            by_type[relation.type].append(relation)
        plan: list[tuple[str, pa.Table, pa.Table | None]] = []  # type, new rows, known rows
        for rel_type, rows in by_type.items():
            table = relation_table(rel_type, rows)
            existing: set[tuple[str, str]] = set()
            if self._rows(cy.count_relations(rel_type))[0][0]:
                found = self._arrow(cy.existing_relations(rel_type), table.select(["from", "to"]))
                existing = set(
                    zip(found.column(0).to_pylist(), found.column(1).to_pylist(), strict=True)
                )
            known = None
            if existing:
                keep = pa.array([(r.src, r.dst) not in existing for r in rows])
                known = table.filter(pa.compute.invert(keep))
                table = table.filter(keep)
            plan.append((rel_type, table, known))
        # Every type of the batch in one transaction: a failure leaves none of it written.
        with self._transaction("relation upsert"):
            for rel_type, table, known in plan:
                if known is not None:
                    self.connection.execute(cy.update_relations(rel_type), {"rows": known})
                if table.num_rows:
                    self._copy(rel_type, table, cy.copy_options(rel_type))

    # ------------------------------------------------------------------ queries
    @contextmanager
    def queries_take(self, lock: AbstractContextManager[Any]) -> Iterator[None]:
        """Queries this thread runs in the block take ``lock`` only while their worker starts.

        Like every store method, a query otherwise expects its caller to hold whatever lock
        guards the store (a REST route holds the app's store lock for its request). The
        ``/query`` route does not, so that ``/health`` and writes never wait behind a running
        query: it passes the app's lock here, taken around the checkpoint and the worker's open.
        """
        self._query_lock.held = lock
        try:
            yield
        finally:
            self._query_lock.held = None

    @contextmanager
    def _query_start(self) -> Iterator[None]:
        """Held while a query's worker opens the database: the lock given to
        :meth:`queries_take` (no write lands between the checkpoint and the open), and a
        checkpoint when no other query is reading, so a worker seldom replays a WAL (a
        read-only open replays it in memory)."""
        with getattr(self._query_lock, "held", None) or nullcontext():
            if self._dirty and not self._query_pool.running:
                try:
                    self.connection.execute("CHECKPOINT")
                except RuntimeError as exc:
                    raise StoreError(f"cannot checkpoint before a query: {exc}") from None
                self._dirty = False
                self._commits = 0
            yield

    def _query(
        self, cypher: str, params: dict[str, Any], timeout_s: float, row_limit: int
    ) -> QueryResult:
        """Run the query in a sandboxed worker process (:mod:`graph.query_runner`)."""
        job = QueryJob(
            db=self.path.resolve(),
            cypher=cypher,
            params=params,
            timeout_s=timeout_s,
            row_limit=row_limit,
            max_bytes=self.settings.query_max_bytes,
            memory_mb=self.settings.query_memory_mb,
        )
        return self._query_pool.run(job, self._query_start)

    def _counts(self) -> StoreCounts:
        nodes = {label: self._rows(cy.count_nodes(label))[0][0] for label in NODE_LABELS}
        relations = {name: self._rows(cy.count_relations(name))[0][0] for name in relation_tables()}
        return StoreCounts(nodes=nodes, relations=relations)

    def _clear(self) -> None:
        self._write([(cy.delete_all(label), {}) for label in NODE_LABELS])


def _num_rows(table: pa.Table | Path) -> int:
    if isinstance(table, pa.Table):
        return table.num_rows
    import pyarrow.parquet as pq

    return pq.ParquetFile(table).metadata.num_rows
