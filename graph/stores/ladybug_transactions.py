"""The embedded store's write transactions: one ``BEGIN ... COMMIT`` each, or several sharing one
(:meth:`Transactions.commit_group`), and the store's own checkpoints.

Every ``COMMIT`` syncs LadybugDB's write-ahead log to disk (an ``fdatasync``), and on a loaded
machine the wait for that sync, and for the core after it, is a good part of a small write: in
the load bench's rows-change phase ``COMMIT`` took 15% of the event loop. The server runs the
diagnoses' saves in batches on its loop (:mod:`api.loop_share`), 4-6 of them back to back; in a
commit group they share one transaction and one sync. The group's writes are committed together
when it ends, or none of them: a write that fails in a group rolls back every write made in it,
and the caller (:meth:`api.loop_share.LoopShare._batch`) runs the others again one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graph.errors import StoreError

if TYPE_CHECKING:
    from graph.query_runner import QueryPool
    from graph.stores.prediction_memory import PredictionMemory

# write transactions between the store's own checkpoints (Transactions._checkpoint_now)
CHECKPOINT_EVERY_COMMITS = 2_000


@dataclass
class CommitGroup:
    """The state of one :meth:`Transactions.commit_group`."""

    joined: int = 0  # write transactions that ran in it
    open: bool = False  # its transaction has begun and not ended
    broken: bool = False  # a write in it, or its commit, failed: all of it was rolled back
    committed: bool = False  # it ended with everything in it committed (or nothing to commit)


class Transactions:
    """Mixin of :class:`~graph.stores.embedded.EmbeddedStore`: :meth:`_transaction`,
    :meth:`commit_group` and the checkpoints every :data:`CHECKPOINT_EVERY_COMMITS` writes
    (run by the commit that makes one due, or handed off: :meth:`defer_checkpoints`)."""

    connection: Any
    _bulk: bool
    _dirty: bool
    _commits: int
    _group: CommitGroup | None
    _checkpoint_later: Callable[[], None] | None
    _query_pool: QueryPool
    _memory: PredictionMemory

    if TYPE_CHECKING:

        def _refuse_read_only(self, what: str) -> None: ...

    @contextmanager
    def commit_group(self) -> Iterator[CommitGroup]:
        """Write transactions begun in the block (on this thread, the store held) share one:
        the first begins it, and the block's end commits all of them with one sync of the log.
        When a write in it fails, everything written in the group is rolled back at once and the
        group is ``broken`` (the caller runs the other writes again, alone); a later write in a
        broken group, or an exception out of the block, rolls back too. Reads in the block see
        the group's writes; other connections (researchers' query workers) see them only once
        it ends.

        Raises:
            StoreError: a group is already open.
        """
        if self._group is not None:
            raise StoreError("a commit group is already open on this store")
        group = CommitGroup()
        self._group = group
        try:
            yield group
        except BaseException:
            if group.open:
                self._rollback()
                group.open, group.broken = False, True
            raise
        finally:
            self._group = None
        if group.open:
            group.open = False
            try:
                self.connection.execute("COMMIT")
            except RuntimeError:
                self._rollback()
                group.broken = True
                return
        group.committed = not group.broken
        if group.committed and group.joined:
            self._commits += group.joined  # counted once they are committed
            self._after_commit()

    @contextmanager
    def _transaction(self, what: str, *, keeps_memory: bool = False) -> Iterator[None]:
        """One transaction: committed when the block ends, rolled back on any exception
        (interrupts included), so the connection is never left inside an open transaction.
        Inside :meth:`commit_group` it joins the group's transaction instead: begun by the
        first write, committed by the group, and on a failure rolled back with the group.

        The store's memory of its patients (:mod:`graph.stores.prediction_memory`) is
        forgotten, unless the caller ``keeps_memory`` right itself (a save of predictions)."""
        self._refuse_read_only(what)
        if not keeps_memory:
            self._memory.forget_all()
        self._dirty = True
        group = self._group
        if group is not None and group.broken:
            raise StoreError(f"{what}: an earlier write of this commit group failed")
        if group is None or not group.open:
            self._begin(what)
            if group is not None:
                group.open = True
        try:
            yield
            if group is None:
                self.connection.execute("COMMIT")
        except BaseException as exc:
            self._rollback()  # a failed statement or COMMIT has already ended the transaction
            if group is not None:
                group.open, group.broken = False, True
            if isinstance(exc, RuntimeError):
                grouped = ", with the writes grouped with it" if group is not None else ""
                raise StoreError(f"{what} failed and was rolled back{grouped}: {exc}") from None
            raise
        if group is not None:
            group.joined += 1
            return
        self._commits += 1
        self._after_commit()

    def _statement_failed(self) -> None:
        """After a statement failed: LadybugDB has rolled back the transaction it ran in (a
        read's failure included) and gone back to committing each statement, so an open commit
        group is broken: its writes are gone, and later ones must not run unprotected."""
        self._memory.forget_all()
        group = self._group
        if group is not None and group.open:
            group.open, group.broken = False, True

    def _begin(self, what: str) -> None:
        try:
            self.connection.execute("BEGIN TRANSACTION")
        except RuntimeError as exc:
            raise StoreError(f"{what}: cannot start a transaction: {exc}") from None

    def _rollback(self) -> None:
        self._memory.forget_all()  # it may hold what was rolled back
        try:
            self.connection.execute("ROLLBACK")
        except RuntimeError:
            pass  # already ended (a failed statement or COMMIT ends it)

    def defer_checkpoints(self, request: Callable[[], None] | None) -> None:
        """Leave the store's own checkpoints (:meth:`_checkpoint_now`) to someone else, or take
        them back (``None``). When one is due, the commit that finds it due calls ``request``
        instead of checkpointing: it must return at once (set an event), on any thread, and
        may be called again by later commits until :meth:`checkpoint_if_due` has run. The REST
        service hands them to a thread of its own, off its event loop (``api/checkpoints.py``
        says why)."""
        self._checkpoint_later = request

    def take_back_checkpoints(self, request: Callable[[], None]) -> None:
        """Take the checkpoints back from ``request`` (:meth:`defer_checkpoints`), unless they
        were handed to someone else since: a runner that stops hands back only its own."""
        if self._checkpoint_later == request:  # ==: a bound method is a new object each time
            self._checkpoint_later = None

    def checkpoint_if_due(self) -> bool | None:
        """The checkpoint a commit asked for (:meth:`defer_checkpoints`), if it is still due
        (no researcher's query reading, none run since); call it with the store held.
        ``None`` when none was due, else whether it succeeded (after a failed one, the next
        comes due as usual)."""
        return self._checkpoint_now() if self._checkpoint_due() else None

    def _checkpoint_due(self) -> bool:
        # like the one before a query: only while none is reading
        return (
            self._commits >= CHECKPOINT_EVERY_COMMITS
            and not self._bulk
            and not self._query_pool.running
        )

    def _after_commit(self) -> None:
        if not self._checkpoint_due():
            return
        request = self._checkpoint_later
        if request is not None:
            request()
        else:
            self._checkpoint_now()

    def _checkpoint_now(self) -> bool:
        """Fold the write-ahead log into the database. LadybugDB does it by itself once the log
        reaches 16 MB (inside the commit that crosses it), but small updates of the same rows
        reach that only after tens of thousands of commits, and every read of those rows slows
        meanwhile: re-stamping 80 patients' predictions 10,000 times took a save and its
        read-back from 1.9 to 5.3 ms. Every :data:`CHECKPOINT_EVERY_COMMITS` write transactions
        (those of a commit group counted one by one) the store checkpoints itself (~14 ms after
        such updates), at the first such commit while no researcher's query is reading (queries
        that overlap without a break put it off: then only LadybugDB's own, at 16 MB, comes), or
        soon after it in the thread it is handed to (:meth:`defer_checkpoints`); a failure only
        waits for the next one (the commit is already durable in the log).
        Read-only handles of other processes (a CLI query beside ``kgdx serve``) see these
        checkpoints as they see LadybugDB's. Whether it succeeded."""
        self._commits = 0
        try:
            self.connection.execute("CHECKPOINT")
        except Exception:  # noqa: BLE001 - never fail a write that is already committed
            return False
        self._dirty = False
        return True


__all__ = ["CHECKPOINT_EVERY_COMMITS", "CommitGroup", "Transactions"]
