"""Pages of a store's nodes and relations as Arrow tables, written as ``neo4j-admin`` CSV files.

Pages come from the read-only statements of :mod:`graph.stores.neo4j_export_cypher`. LadybugDB
hands a result over as an Arrow table directly (no Python object per value), which is what makes
the export of a UMLS-scale graph fast; any other store's rows are converted to the same Arrow
schema. One Arrow CSV writer then writes every file, so both paths give identical files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from graph.errors import InputError, StoreError
from graph.store import GraphStore
from graph.stores import neo4j_export_cypher as export_cypher

Properties = tuple[tuple[str, str], ...]

# Schema type -> (Arrow type, neo4j-admin header type; None: plain string column).
TYPES: dict[str, tuple[pa.DataType, str | None]] = {
    "STRING": (pa.string(), None),
    "STRING[]": (pa.list_(pa.string()), "string[]"),
    "DOUBLE": (pa.float64(), "double"),
    "INT64": (pa.int64(), "long"),
    "BOOLEAN": (pa.bool_(), "boolean"),
}
EXPORT_ROW_LIMIT = 10_000_000
PAGE_TIMEOUT_S = 3600.0


def header(name: str, kind: str) -> str:
    """``weight:double``, ``synonyms:string[]``, ``name`` (strings carry no type)."""
    admin = TYPES[kind][1]
    return f"{name}:{admin}" if admin else name


def arrow_schema(columns: Properties) -> pa.Schema:
    return pa.schema([pa.field(name, TYPES[kind][0]) for name, kind in columns])


def query_page(store: GraphStore, statement: str, params: dict[str, Any], schema: pa.Schema):
    """One page of results as an Arrow table with ``schema``.

    Raises:
        StoreError: the page was cut by the row limit (it never should: pages are bounded).
    """
    connection = getattr(store, "connection", None) if store.name == "embedded" else None
    if connection is not None:
        # Trusted, schema-built read statements on LadybugDB's own Arrow path.
        table = connection.execute(statement, params).get_as_arrow(chunk_size=100_000)
        return table.select(schema.names).cast(schema)
    result = store.query(statement, params, row_limit=EXPORT_ROW_LIMIT, timeout_s=PAGE_TIMEOUT_S)
    if result.truncated:
        raise StoreError("an export page exceeded the row limit; lower the page size")
    return pa.Table.from_pylist(result.records(), schema=schema)


def node_pages(store: GraphStore, label: str, page_size: int) -> Iterator[pa.Table]:
    """Every ``label`` node with its schema properties, page by page in id order."""
    from graph.schema import NODE_PROPERTIES

    schema = arrow_schema(NODE_PROPERTIES[label])
    statement = export_cypher.node_page(label)
    after = ""
    while True:
        page = query_page(store, statement, {"after": after, "n": page_size}, schema)
        if page.num_rows:
            yield page
        if page.num_rows < page_size:
            return
        after = page["id"][-1].as_py()


def relation_pages(
    store: GraphStore, rel_type: str, src: str, dst: str, props: Properties, page_size: int
) -> Iterator[pa.Table]:
    """Every relation of one type and endpoint pair, per page of source ids."""
    id_schema = arrow_schema((("id", "STRING"),))
    schema = arrow_schema((("src", "STRING"), ("dst", "STRING"), *props))
    ids_statement = export_cypher.source_ids(src)
    statement = export_cypher.relations_from(rel_type, src, dst, props)
    after = ""
    while True:
        ids = query_page(store, ids_statement, {"after": after, "n": page_size}, id_schema)["id"]
        if len(ids):
            first, last = ids[0].as_py(), ids[-1].as_py()
            page = query_page(store, statement, {"first": first, "last": last}, schema)
            if page.num_rows:
                yield page
        if len(ids) < page_size:
            return
        after = ids[-1].as_py()


def _joined(column: pa.ChunkedArray, delimiter: str, where: str) -> pa.ChunkedArray:
    """A list column as ``a|b|c`` text, refusing values that contain the delimiter."""
    values = pc.list_flatten(column)
    if len(values) and pc.any(pc.match_substring(values, delimiter)).as_py():
        bad = values.filter(pc.match_substring(values, delimiter))[0].as_py()
        raise InputError(
            f"{where}: value {bad!r} contains the array delimiter {delimiter!r}; "
            "choose another with --array-delimiter"
        )
    return pc.binary_join(column, delimiter)


def csv_page(
    page: pa.Table, columns: Properties, names: list[str], tag: str, delimiter: str, where: str
) -> pa.Table:
    """The page's columns under their import headers, lists joined, plus the label/type column."""
    arrays = [
        _joined(page[name], delimiter, where) if kind == "STRING[]" else page[name]
        for name, kind in columns
    ]
    arrays.append(pa.array([tag] * page.num_rows, pa.string()))
    return pa.Table.from_arrays(arrays, names=names)


def write_csv(
    path: Path, pages: Iterable[pa.Table], columns: Properties, names: list[str], tag: str,
    delimiter: str, where: str,
) -> int:  # fmt: skip
    """Write ``pages`` to ``path`` under the header ``names``; returns the row count."""
    out_schema = pa.schema(
        [pa.field(n, pa.string() if k == "STRING[]" else TYPES[k][0]) for n, (_, k) in
         zip(names, columns, strict=False)] + [pa.field(names[-1], pa.string())]
    )  # fmt: skip
    rows = 0
    # The header line is written as is: Arrow would quote every name, and the header names
    # (``id:ID(Concept)``) never need quotes. Data fields are quoted only where needed; a null
    # is an empty field and an empty string is "".
    options = pa_csv.WriteOptions(include_header=False, quoting_style="needed")
    with path.open("wb") as handle:
        handle.write((",".join(names) + "\n").encode("utf-8"))
        with pa_csv.CSVWriter(handle, out_schema, write_options=options) as writer:
            for page in pages:
                writer.write_table(csv_page(page, columns, names, tag, delimiter, where))
                rows += page.num_rows
    return rows
