"""Shared dependencies of the routers (``Annotated[..., Depends()]`` aliases)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request

from graph.errors import ModelError
from graph.settings import Settings
from graph.store import GraphStore

if TYPE_CHECKING:
    from api.engine import Engine

# gnn.train.CONFIG_FILE, named here so that a missing model is reported without importing torch
MODEL_CONFIG_FILE = "config.json"


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


@contextmanager
def _store_held(request: Request) -> Iterator[None]:
    lock = request.app.state.store_lock
    if lock is None:
        yield
        return
    with lock:
        yield


def get_store(request: Request) -> Iterator[GraphStore]:
    """The app's store, held exclusively for the request when the backend needs it."""
    with _store_held(request):
        yield request.app.state.store


class ModelSlot:
    """The app's :class:`~api.engine.Engine` and the saved model it serves.

    The model is read from ``directory`` (where ``Engine.train(save_to=...)`` wrote it) on first
    use and read again whenever ``config.json`` there changes, so a retrained model is served
    without a restart.
    """

    def __init__(self, engine: Engine, directory: Path) -> None:
        self.engine = engine
        self.directory = directory
        self.lock = threading.Lock()  # the Engine caches its patient graph: one user at a time
        self._loaded_stamp: int | None = None

    def require_model(self) -> Engine:
        """The engine with the current saved model loaded.

        Raises:
            ModelError: no model was saved in ``directory`` (or it cannot be loaded).
        """
        config = self.directory / MODEL_CONFIG_FILE
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
        return self.engine

    def patients_changed(self) -> None:
        """Drop the engine's cached patient graph after patients were written or deleted.

        The GNN passes messages between patients through shared concepts, so every stored patient
        is part of each diagnosis; an empty ``ingest`` is the Engine's public way to forget it.
        """
        self.engine.ingest((), extract=False)


def get_model_slot(request: Request) -> Iterator[ModelSlot]:
    """The app's engine slot, held for the request (engine first, then the store)."""
    slot: ModelSlot = request.app.state.model_slot
    with slot.lock, _store_held(request):
        yield slot


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[GraphStore, Depends(get_store)]
# A route takes either StoreDep or ModelSlotDep (whose engine.store is the same store), never both:
# the store lock is not re-entrant.
ModelSlotDep = Annotated[ModelSlot, Depends(get_model_slot)]
