"""Shared dependencies of the routers (``Annotated[..., Depends()]`` aliases) and the two locks.

* **The store lock** (``app.state.store_lock``, embedded store only): the embedded database is
  used by one thread at a time. Routes hold it only around their store calls (a read route's
  ``StoreDep`` holds it per call: :class:`LockedStore`), never around
  extraction or model inference, so a read (``GET /v1/patients/{id}``, a few ms) waits at most
  for one short store call, not for a diagnosis. Researcher Cypher runs in worker processes and
  takes the lock only while a worker opens the database (``api/routers/query.py``).
* **The model lock** (``ModelSlot.lock``): the engine's model and its cached graph are used by one
  diagnosis at a time. It is always taken before the store lock, never after, so the two cannot
  deadlock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

from api.long_lived import freeze_long_lived
from graph.errors import ModelError
from graph.settings import Settings
from graph.store import GraphStore

if TYPE_CHECKING:
    from api.engine import Engine

# gnn.reasoning.patients.ENGINE_FILE (written last in a run folder), named here so that a missing
# model is reported without importing torch
MODEL_CONFIG_FILE = "config.json"
# a run saved by `kgdx train` has a card and no config.json (Engine.load_model reads both)
MODEL_CARD_FILE = "card.json"


async def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


@contextmanager
def store_held(request: Request, *, timeout: float | None = None) -> Iterator[GraphStore]:
    """The app's store, held exclusively while the block runs when the backend needs it.

    Raises:
        TimeoutError: ``timeout`` seconds passed without getting the lock.
    """
    lock: threading.Lock | None = request.app.state.store_lock
    if lock is None:
        yield request.app.state.store
        return
    if not lock.acquire(timeout=-1 if timeout is None else timeout):
        raise TimeoutError("the store stayed busy")
    try:
        yield request.app.state.store
    finally:
        lock.release()


class LockedStore:
    """The app's store for a route that only reads it: every method call holds the store lock
    for that call alone (an iterator is read to its end inside it).

    Held per call, not per request: a request's dependencies and its route run in separate
    threadpool hand-offs, each waiting for the event loop, and a lock held across them kept
    the store for tens of ms per read under load, so reads queued behind each other (the load
    bench measured 1-2 s at p50 with 20 readers) and a diagnosis's store calls behind them."""

    def __init__(self, store: GraphStore, lock: threading.Lock) -> None:
        self._store, self._lock = store, lock

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                result = value(*args, **kwargs)
                return iter(list(result)) if isinstance(result, Iterator) else result

        return locked


async def get_store(request: Request) -> GraphStore:
    """The app's store for routes that only read it; with the embedded store, a
    :class:`LockedStore` (each call holds the store lock)."""
    lock: threading.Lock | None = request.app.state.store_lock
    store = request.app.state.store
    return store if lock is None else LockedStore(store, lock)  # type: ignore[return-value]


class ModelSlot:
    """The app's :class:`~api.engine.Engine` and the saved model it serves.

    The model is read from ``directory`` (where ``Engine.train(save_to=...)`` wrote it) on first
    use and read again whenever ``config.json`` there changes, so a retrained model is served
    without a restart.
    """

    def __init__(self, engine: Engine, directory: Path) -> None:
        self.engine = engine
        self.directory = directory
        self.lock = threading.Lock()  # the Engine caches its model and graph: one user at a time
        self._loaded_stamp: int | None = None
        self.on_load: list[Callable[[], None]] = []  # called after each model (re)load

    def current_stamp(self) -> int | None:
        """The saved model's stamp (``config.json`` / ``card.json`` mtime), ``None`` without
        one: a diagnosis remembered under another stamp is stale."""
        for name in (MODEL_CONFIG_FILE, MODEL_CARD_FILE):
            try:
                return (self.directory / name).stat().st_mtime_ns
            except OSError:
                continue
        return None

    def is_loaded(self) -> bool:
        """Whether the current saved model is loaded (a diagnosis then loads nothing)."""
        stamp = self.current_stamp()
        return stamp is not None and stamp == self._loaded_stamp

    def require_model(self) -> Engine:
        """The engine with the current saved model loaded (call with :attr:`lock` held).

        Raises:
            ModelError: no model was saved in ``directory`` (or it cannot be loaded).
        """
        config = self.directory / MODEL_CONFIG_FILE
        if not config.is_file():
            config = self.directory / MODEL_CARD_FILE
        if not config.is_file():  # answered without importing torch
            self._loaded_stamp = None
            raise ModelError(
                f"{self.directory} holds no saved model; train one first "
                "(Engine.train(save_to=...) on this store)"
            )
        stamp = config.stat().st_mtime_ns
        if stamp != self._loaded_stamp:
            self._loaded_stamp = None
            self.engine.load_model(self.directory)
            self._loaded_stamp = stamp
            for listener in self.on_load:
                listener()
            # the model and its KG (many objects) out of the collector's reach, as the
            # app's startup objects are: full collections scanning them stalled every request
            # in flight by tens of ms (the load bench's p99). Unfrozen first, so the cycles of
            # a model replaced by this one can be collected (once per load).
            freeze_long_lived(reclaim=True)
        return self.engine

    def patients_changed(self) -> None:
        """Drop the engine's cached patient graph after patients were written or deleted.

        An empty ``ingest`` is the Engine's public way to forget it (it stores nothing).
        """
        self.engine.ingest((), extract=False)


@contextmanager
def model_held(request: Request, *, timeout: float | None = None) -> Iterator[Engine]:
    """The engine with the current model loaded, its model lock held while the block runs (the
    store lock only while a model is loaded: loading reads the KG).

    Raises:
        ModelError: no usable model saved. TimeoutError: the model stayed busy ``timeout`` s.
    """
    slot: ModelSlot = request.app.state.model_slot
    if not slot.lock.acquire(timeout=-1 if timeout is None else timeout):
        raise TimeoutError("the model stayed busy")
    try:
        with store_held(request, timeout=timeout):
            engine = slot.require_model()
        yield engine
    finally:
        slot.lock.release()


async def get_model_slot(request: Request) -> ModelSlot:
    """The app's engine slot (not held: routes take ``slot.lock`` and the store lock as they
    need them, model first)."""
    return request.app.state.model_slot


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[GraphStore, Depends(get_store)]
# A route takes StoreDep (each call holds the store lock) or calls store_held() itself, never
# both inside each other: the store lock is not re-entrant.
ModelSlotDep = Annotated[ModelSlot, Depends(get_model_slot)]
