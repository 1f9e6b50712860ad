"""The tables of a compaction (:mod:`kg_loaders.compact`): the database's layout checked against
kgdx's schema, every table dumped to Parquet, copied into the fresh database, and the copy
compared with the dump row by row.

Every node table is one part; a relation table is one part per endpoint pair (``HAS_FINDING``
links Concepts and Patients to Concepts, which LadybugDB's own ``EXPORT DATABASE`` refuses).
Each part is read whole into memory (Arrow), one at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.errors import StoreError
from graph.schema import NODE_PROPERTIES, relation_tables

_TYPES = {"BOOL": "BOOLEAN"}  # table_info's spelling -> the schema's


@dataclass(frozen=True)
class TablePart:
    """One node table, or one endpoint pair of a relation table, and its rows' Parquet file."""

    table: str  # the node label or relation table it is copied into
    options: str  # the COPY options (a relation table's endpoint pair)
    cypher: str  # reads its rows, in the table's column order
    file: Path | None = None  # None: no rows


def parts() -> list[TablePart]:
    """Every part of kgdx's schema, without files."""
    out = []
    for label, props in NODE_PROPERTIES.items():
        columns = ", ".join(f"n.`{name}`" for name, _ in props)
        out.append(TablePart(label, "", f"MATCH (n:{label}) RETURN {columns}"))
    for name, (pairs, props) in relation_tables().items():
        columns = "".join(f", r.`{prop}`" for prop, _ in props)
        for src, dst in pairs:
            options = f" (from='{src}', to='{dst}')" if len(pairs) > 1 else ""
            cypher = f"MATCH (a:{src})-[r:{name}]->(b:{dst}) RETURN a.id, b.id{columns}"
            out.append(TablePart(name, options, cypher))
    return out


def check_layout(connection: Any, path: Path) -> None:
    """Refuse a database with tables, columns or endpoint pairs kgdx's schema does not know (a
    newer kgdx wrote it, or someone else): the copy would leave them out.

    Raises:
        StoreError: naming what the schema lacks.
    """
    tables = {
        name: kind for name, kind in _rows(connection, "CALL show_tables() RETURN name, type")
    }
    relations = relation_tables()
    known = {**NODE_PROPERTIES, **{name: props for name, (_, props) in relations.items()}}
    extra = [f"table {name}" for name in sorted(tables) if name not in known]
    for name in sorted(set(tables) & set(known)):
        columns = _rows(connection, f"CALL table_info('{name}') RETURN name, type")
        want = dict(known[name])
        extra += [
            f"{name}.{column} ({kind})"
            for column, kind in columns
            if want.get(column) != _TYPES.get(kind, kind)
        ]
        if tables[name] == "REL":
            pairs = set(relations[name][0])
            found = _rows(connection, f"CALL show_connection('{name}') RETURN *")
            extra += [f"{name} {a}->{b}" for a, b, *_ in found if (a, b) not in pairs]
    if extra:
        raise StoreError(
            f"{path} holds tables or columns that this kgdx's schema does not know or types "
            f"differently ({', '.join(extra[:8])}); a compaction would drop or change them, so "
            "none was done: compact it with the kgdx that wrote it"
        )


def dump(connection: Any, part: TablePart, folder: Path, number: int) -> TablePart:
    """``part`` with its rows written to a Parquet file in ``folder`` (none when it has none)."""
    import pyarrow.parquet as pq

    table = _arrow(connection, part.cypher)
    if not table.num_rows:
        return part
    path = folder / f"{number:03d}-{part.table}.parquet"
    pq.write_table(table, path)
    return TablePart(part.table, part.options, part.cypher, path)


def load(connection: Any, part: TablePart) -> None:
    """Copy the rows of ``part``'s file into its table."""
    from graph.stores import ladybug_cypher as cy

    assert part.file is not None
    try:
        connection.execute(cy.copy_from(part.table, part.options, str(part.file)))
    except RuntimeError as exc:
        raise StoreError(f"cannot copy {part.table} into the compacted copy: {exc}") from None


def differing(connection: Any, dumped: list[TablePart]) -> str | None:
    """The first part whose rows in the copy differ from its file (as a multiset of rows, every
    column, types included), or ``None`` when all are equal."""
    import pyarrow.parquet as pq

    for part in dumped:
        assert part.file is not None
        original, copy = pq.read_table(part.file), _arrow(connection, part.cypher)
        if original.schema.types != copy.schema.types or _rows_of(original) != _rows_of(copy):
            pairs = part.options.strip(" ()").replace("'", "") if part.options else ""
            return part.table + (f" ({pairs})" if pairs else "")
    return None


def _rows_of(table) -> list[str]:
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return sorted(repr(row) for row in zip(*columns, strict=True))


def _arrow(connection: Any, cypher: str):
    try:
        return connection.execute(cypher).get_as_arrow()
    except RuntimeError as exc:
        raise StoreError(f"cannot read a table to compact it: {exc}") from None


def _rows(connection: Any, cypher: str) -> list[list[Any]]:
    result = connection.execute(cypher)
    rows = []
    while result.has_next():
        rows.append(result.get_next())
    return rows
