"""The embedded database's table layout against the schema: what an older kgdx left out, and
the upgrade that adds it.

``CREATE ... IF NOT EXISTS`` keeps an existing table as it was, so a property the schema gained
later (``HAS_FINDING.sections``, ``Prediction.input_sections``) is missing from a database an
older kgdx wrote. A read-write open adds such columns (``ALTER TABLE ... ADD``, null in the old
rows, which read back as "not recorded"); a read-only open cannot, so it upgrades the database
through a short read-write open first, or says why it cannot.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from graph.errors import StoreError
from graph.schema import NODE_PROPERTIES, relation_tables
from graph.settings import Settings
from graph.stores import ladybug_cypher as cy

Rows = Callable[[str], list[list[Any]]]


def schema_columns() -> dict[str, tuple[tuple[str, str], ...]]:
    """Every table of the schema with its properties (node labels and relation tables)."""
    tables = dict(NODE_PROPERTIES)
    tables.update({name: props for name, (_, props) in relation_tables().items()})
    return tables


def missing_columns(rows: Rows) -> list[tuple[str, str | None]]:
    """``(table, column)`` for each schema property the open database lacks; ``(table, None)``
    for a missing table."""
    present = {row[1] for row in rows("CALL show_tables() RETURN *")}
    missing: list[tuple[str, str | None]] = []
    for table, props in schema_columns().items():
        if table not in present:
            missing.append((table, None))
            continue
        have = {row[1] for row in rows(f"CALL table_info('{table}') RETURN *")}
        missing += [(table, name) for name, _ in props if name not in have]
    return missing


def add_missing_columns(rows: Rows, connection: Any) -> list[tuple[str, str]]:
    """Add the schema properties a read-write database lacks (tables exist: the caller ran
    :func:`graph.stores.ladybug_cypher.create_schema`); returns what was added."""
    types = {table: dict(props) for table, props in schema_columns().items()}
    added = []
    for table, column in missing_columns(rows):
        if column is None:
            continue
        try:
            connection.execute(
                f"ALTER TABLE {table} ADD IF NOT EXISTS `{column}` {types[table][column]}"
            )
        except RuntimeError as exc:
            raise StoreError(f"cannot add {table}.{column} to an older database: {exc}") from None
        added.append((table, column))
    return added


def check_readable(path: Path) -> None:
    """Raise unless ``path`` holds a database a read-only handle can open.

    Raises:
        StoreError: nothing there (a read-only open cannot create a database).
    """
    if not path.exists():
        raise StoreError(
            f"no database at {path}: build one with `kgdx kg build`, or point KGDX_DB_PATH "
            "(or --db) at an existing one"
        )


def upgrade_layout(path: Path, settings: Settings) -> None:
    """Add what an older kgdx's database lacks through a short read-write open.

    Raises:
        StoreError: another process holds the database for writing (an older ``kgdx serve``:
            a current one has already upgraded it when it opened).
    """
    import ladybug

    pool = settings.buffer_pool_mb
    try:
        db = ladybug.Database(str(path), buffer_pool_size=pool * 1024 * 1024 if pool else 0)
    except RuntimeError as exc:
        raise StoreError(
            f"{path} was written by an older kgdx and must be upgraded (new columns) before it "
            f"can be read, but another process holds it ({exc}); stop that process, or open the "
            "database once with a current kgdx that writes to it"
        ) from None
    connection = ladybug.Connection(db)
    try:

        def rows(cypher: str) -> list[list[Any]]:
            result = connection.execute(cypher)
            found = []
            while result.has_next():
                found.append(result.get_next())
            return found

        for statement in cy.create_schema():
            connection.execute(statement)
        add_missing_columns(rows, connection)
        connection.execute("CHECKPOINT")
    finally:
        connection.close()
        db.close()
