"""The Arrow layout of bulk knowledge-graph tables, shared by every backend.

``GraphStore.copy_concepts`` and ``GraphStore.copy_relations`` take tables (or Parquet files) in
this layout; the embedded store hands them to LadybugDB's ``COPY FROM`` as they are.

- Concept table: ``id, name, kind, synonyms, xrefs, sources`` (the last three lists of strings).
- Relation table, one per relation type: ``from, to, sources, weight, negated, attributes``
  (``sources`` and ``attributes`` are JSON text, ``""`` for none; ``graph.schema``), then the
  type's other properties as nulls
  (``HAS_FINDING`` shares its table with the patient graph, see ``graph.schema``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from graph.errors import InputError
from graph.field_checks import CURIE_RE
from graph.records import Concept, ConceptKind, Relation
from graph.schema import KG_RELATIONS, decode_sources, encode_sources, relation_tables

STR_LIST = pa.list_(pa.string())
ARROW_TYPES = {
    "STRING": pa.string(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "INT64": pa.int64(),
    "STRING[]": STR_LIST,
}
CONCEPT_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("synonyms", STR_LIST),
        ("xrefs", STR_LIST),
        ("sources", STR_LIST),
    ]
)
# The columns every KG relation table starts with; a type's other properties follow as nulls.
RELATION_FIELDS = [
    ("from", pa.string()),
    ("to", pa.string()),
    ("sources", pa.string()),
    ("weight", pa.float64()),
    ("negated", pa.bool_()),
    ("attributes", pa.string()),
]
_CURIE = CURIE_RE.pattern


def relation_schema(rel_type: str) -> pa.Schema:
    """The full column layout of ``rel_type``'s table (KG columns, then null-filled extras)."""
    if rel_type not in KG_RELATIONS:
        raise InputError(
            f"{rel_type!r} is not a KG relation type; expected one of {list(KG_RELATIONS)}"
        )
    props = relation_tables()[rel_type][1]
    extra = [(name, ARROW_TYPES[kind]) for name, kind in props[len(RELATION_FIELDS) - 2 :]]
    return pa.schema(RELATION_FIELDS + extra)


def concept_table(concepts: list[Concept]) -> pa.Table:
    """Concept records -> a concept table."""
    return concept_rows_table(
        [(c.id, c.name, c.kind.value, c.synonyms, c.xrefs, c.sources) for c in concepts]
    )


def concept_rows_table(rows: Sequence[Sequence[Any]]) -> pa.Table:
    """Rows of values in :data:`CONCEPT_SCHEMA` order (kinds as strings) -> a concept table."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(CONCEPT_SCHEMA)
    return pa.Table.from_arrays(
        [
            pa.array(values, field.type)
            for values, field in zip(columns, CONCEPT_SCHEMA, strict=True)
        ],
        schema=CONCEPT_SCHEMA,
    )


def relation_table(rel_type: str, relations: list[Relation]) -> pa.Table:
    """Relation records of one type -> that type's relation table."""
    columns: dict[str, pa.Array] = {
        "from": pa.array([r.src for r in relations], pa.string()),
        "to": pa.array([r.dst for r in relations], pa.string()),
        "sources": pa.array([encode_sources(r.sources) for r in relations], pa.string()),
        "weight": pa.array([r.weight for r in relations], pa.float64()),
        "negated": pa.array([r.negated for r in relations], pa.bool_()),
        "attributes": pa.array(
            [json.dumps(r.attributes) if r.attributes else "" for r in relations], pa.string()
        ),
    }
    return pad_relation_table(rel_type, pa.table(columns))


def pad_relation_table(rel_type: str, table: pa.Table) -> pa.Table:
    """Add ``rel_type``'s extra properties as null columns to a table of the KG columns."""
    schema = relation_schema(rel_type)
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table


# ---------------------------------------------------------------- validation
def check_concept_table(table: pa.Table | Path) -> None:
    """Raise :class:`InputError` unless ``table`` (or a Parquet file) is a valid concept table:
    the exact layout, CURIE ids and known kinds."""
    for batch in _batches(table, CONCEPT_SCHEMA, ("id", "kind")):
        _check_curies(batch.column(0), "concept id")
        kinds = pa.array([kind.value for kind in ConceptKind])  # here: pa.array imports pandas
        bad = pc.filter(batch.column(1), pc.invert(pc.is_in(batch.column(1), kinds)))
        if len(bad):
            raise InputError(f"unknown concept kind {bad[0].as_py()!r} in a concept table")


def check_relation_table(rel_type: str, table: pa.Table | Path) -> None:
    """Raise :class:`InputError` unless ``table`` (or a Parquet file) is a valid table of
    ``rel_type``: the exact layout and CURIE endpoints."""
    for batch in _batches(table, relation_schema(rel_type), ("from", "to")):
        _check_curies(batch.column(0), "relation endpoint")
        _check_curies(batch.column(1), "relation endpoint")


def _batches(
    table: pa.Table | Path, schema: pa.Schema, columns: tuple[str, ...]
) -> Iterator[pa.RecordBatch]:
    if isinstance(table, pa.Table):
        _check_schema(table.schema, schema, "table")
        yield from table.select(list(columns)).to_batches()
        return
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(table)
    except (OSError, pa.ArrowException) as exc:
        raise InputError(f"{table}: not a readable Parquet file ({exc})") from None
    _check_schema(parquet.schema_arrow, schema, str(table))
    yield from parquet.iter_batches(columns=list(columns), batch_size=1_000_000)


def _check_schema(found: pa.Schema, expected: pa.Schema, what: str) -> None:
    if [(f.name, f.type) for f in found] != [(f.name, f.type) for f in expected]:
        raise InputError(
            f"{what}: columns {[f'{f.name}: {f.type}' for f in found]} do not match the bulk "
            f"layout {[f'{f.name}: {f.type}' for f in expected]}"
        )


def _check_curies(values: pa.Array, what: str) -> None:
    ok = pc.and_(
        pc.match_substring_regex(values, _CURIE), pc.less_equal(pc.utf8_length(values), 200)
    )
    bad = pc.filter(values, pc.invert(pc.fill_null(ok, False)))
    if len(bad) or values.null_count:
        shown = bad[0].as_py() if len(bad) else None
        raise InputError(f"{what} is not a CURIE (PREFIX:id): {shown!r}")


# ---------------------------------------------------------------- back to records
def row_concept(row: Sequence[Any]) -> Concept:
    """A concept from its column values in :data:`CONCEPT_SCHEMA` order."""
    cid, name, kind, synonyms, xrefs, sources = row
    return Concept(
        id=cid,
        name=name,
        kind=kind,
        synonyms=tuple(synonyms or ()),
        xrefs=tuple(xrefs or ()),
        sources=tuple(sources or ()),
    )


def row_relation(rel_type: str, src: str, dst: str, props: list[Any]) -> Relation:
    """A relation from its endpoints and ``sources, weight, negated, attributes`` values."""
    sources, weight, negated, attributes = props
    return Relation(
        src=src,
        dst=dst,
        type=rel_type,
        sources=decode_sources(sources),
        weight=1.0 if weight is None else weight,
        negated=bool(negated),
        attributes=json.loads(attributes) if attributes else {},
    )


def table_concepts(table: pa.Table) -> Iterator[Concept]:
    """The concepts of a concept table, as records."""
    for batch in table.to_batches():
        yield from (row_concept(row) for row in concept_rows_of(batch))


def concept_rows_of(batch: pa.RecordBatch) -> Iterator[tuple]:
    """A concept batch's rows in :data:`CONCEPT_SCHEMA` order, lists as tuples (read from flat
    values and offsets: several times faster than ``to_pylist`` on the nested columns)."""
    scalars = [batch.column(i).to_pylist() for i in range(3)]
    lists = [_tuples(batch.column(i)) for i in range(3, 6)]
    return zip(*scalars, *lists, strict=True)


def _tuples(column: pa.ListArray) -> list[tuple[str, ...]]:
    values = column.flatten().to_pylist()
    offsets = (column.offsets.to_numpy() - column.offsets[0].as_py()).tolist()
    return [tuple(values[a:b]) for a, b in zip(offsets, offsets[1:], strict=False)]


def table_relations(rel_type: str, table: pa.Table) -> Iterator[Relation]:
    """The relations of ``rel_type``'s table, as records."""
    columns = [table.column(name).to_pylist() for name, _ in RELATION_FIELDS]
    for src, dst, *props in zip(*columns, strict=True):
        yield row_relation(rel_type, src, dst, props)


def read_tables(source: pa.Table | Path, batch_size: int = 100_000) -> Iterable[pa.Table]:
    """A table, or a Parquet file's row groups, as tables of at most ``batch_size`` rows."""
    if isinstance(source, pa.Table):
        yield from (pa.Table.from_batches([b]) for b in source.to_batches(max_chunksize=batch_size))
        return
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(source).iter_batches(batch_size=batch_size):
        yield pa.Table.from_batches([batch])
