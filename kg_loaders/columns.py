"""Relation batches: a reader's relation rows as Arrow tables, the form the build works on.

A batch has the columns of :data:`ROW_SCHEMA` (``src, dst, type, negated, weight, attributes``,
attributes as JSON text, ``""`` for none) with ids as the source writes them; the crosswalk
rewrites them to merged ids and splits the batch by type (``Crosswalk.relation_tables``).
Readers that parse a file column-wise (``phenotype.hpoa``) build batches directly; the others
stream Python rows, which :func:`row_tables` packs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator

import pyarrow as pa

from kg_loaders.base import RelationRow

ROW_SCHEMA = pa.schema(
    [
        ("src", pa.string()),
        ("dst", pa.string()),
        ("type", pa.string()),
        ("negated", pa.bool_()),
        ("weight", pa.float64()),
        ("attributes", pa.string()),
    ]
)
BATCH_ROWS = 250_000


def rows_table(rows: list[RelationRow]) -> pa.Table:
    """Relation rows -> one batch."""
    src, dst, types, negated, weight, attributes = [], [], [], [], [], []
    dumped: dict[int, str] = {}  # one JSON text per attributes dict object (often shared)
    for s, d, t, n, w, a in rows:
        src.append(s)
        dst.append(d)
        types.append(t)
        negated.append(n)
        weight.append(w)
        if not a:
            attributes.append("")
            continue
        text = dumped.get(id(a))
        if text is None:
            text = dumped[id(a)] = json.dumps(a)
        attributes.append(text)
    columns = (src, dst, types, negated, weight, attributes)
    return pa.Table.from_arrays(
        [pa.array(values, field.type) for values, field in zip(columns, ROW_SCHEMA, strict=True)],
        schema=ROW_SCHEMA,
    )


def row_tables(rows: Iterable[RelationRow], batch_rows: int = BATCH_ROWS) -> Iterator[pa.Table]:
    """Pack a row stream into batches of at most ``batch_rows`` rows."""
    batch: list[RelationRow] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= batch_rows:
            yield rows_table(batch)
            batch = []
    if batch:
        yield rows_table(batch)


def table_rows(table: pa.Table) -> Iterator[RelationRow]:
    """A batch back as relation rows (attributes as dicts, ``None`` for none)."""
    columns = [table.column(name).to_pylist() for name in ROW_SCHEMA.names]
    for src, dst, rel_type, negated, weight, attributes in zip(*columns, strict=True):
        yield (src, dst, rel_type, negated, weight, json.loads(attributes) if attributes else None)
