"""Shared dependencies of the routers (``Annotated[..., Depends()]`` aliases)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request

from graph.settings import Settings
from graph.store import GraphStore


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> Iterator[GraphStore]:
    """The app's store, held exclusively for the request when the backend needs it."""
    lock = request.app.state.store_lock
    if lock is None:
        yield request.app.state.store
        return
    with lock:
        yield request.app.state.store


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[GraphStore, Depends(get_store)]
