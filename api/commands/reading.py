"""The store of a command that only reads (``kgdx query``, ``kgdx kg stats``, the exports).

Such a command opens a read-only handle: it works while ``kgdx serve`` (or another process)
holds the embedded database for writing, sees what that process committed when it opens, and
never creates an empty database where none is (a mistyped path or a store not built yet is an
error that says which database to read, not an answer of 0 rows).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from graph.store import GraphStore

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Embedded database to read (default: KGDX_DB_PATH, else <home>/kg.lbug); "
        "`kgdx demo` writes <home>/demo.lbug",
    ),
]


def open_reading_store(store: str | None = None, db: Path | None = None) -> GraphStore:
    """Open the configured store (or the embedded database ``db``) read-only.

    Raises:
        StoreError: the database is not there (naming the demo's store when that one is), or
            cannot be opened.
        ConfigError: ``db`` given for a store that is not the embedded one.
    """
    from graph.errors import ConfigError, StoreError
    from graph.settings import get_settings
    from graph.stores import open_store

    settings = get_settings(**({"db_path": db} if db is not None else {}))
    backend = store or settings.store
    if db is not None and backend != "embedded":
        raise ConfigError(f"--db names an embedded database, but the store is {backend!r}")
    try:
        return open_store(backend, settings=settings, read_only=True)
    except StoreError as exc:
        path = settings.resolved_db_path
        demo = settings.home / "demo.lbug"
        if backend == "embedded" and not path.exists() and demo.exists():
            raise StoreError(
                f"{exc}. `kgdx demo` keeps its patients in {demo}: read it with --db {demo} "
                f'(e.g. kgdx query --db {demo} "MATCH (p:Patient) RETURN count(p)")'
            ) from None
        raise
