"""Graph store backends by name: ``open_store("embedded")`` or ``open_store("neo4j")``."""

from __future__ import annotations

import importlib
from typing import Any

from graph.errors import ConfigError
from graph.settings import Settings, get_settings
from graph.store import GraphStore

# name -> "module:Class"; imported lazily so a missing optional driver does not break the rest.
STORES: dict[str, str] = {
    "embedded": "graph.stores.embedded:EmbeddedStore",
    "neo4j": "graph.stores.neo4j:Neo4jStore",
}


def store_class(name: str) -> type[GraphStore]:
    """The backend class registered under ``name``."""
    try:
        module_name, class_name = STORES[name].split(":")
    except KeyError:
        raise ConfigError(f"unknown store {name!r}; expected one of {sorted(STORES)}") from None
    return getattr(importlib.import_module(module_name), class_name)


def open_store(
    store: str | GraphStore | type[GraphStore] | None = None,
    *,
    settings: Settings | None = None,
    read_only: bool = False,
    **store_kwargs: Any,
) -> GraphStore:
    """Open a graph store given by name, class or instance (``None``: ``settings.store``).

    Args:
        read_only: for commands that only read: the embedded store opens a read-only handle,
            which works while another process (``kgdx serve``) holds the database for writing,
            and never creates a database that is not there.
    """
    if isinstance(store, GraphStore):
        return store
    settings = settings or get_settings()
    cls = store if isinstance(store, type) else store_class(store or settings.store)
    if read_only:
        store_kwargs["read_only"] = True
    return cls(settings=settings, **store_kwargs)
