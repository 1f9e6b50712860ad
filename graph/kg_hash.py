"""The knowledge graph's content hash: a SHA-256 over its concept table.

What is derived from a KG's concepts (the report extractor's vocabulary, matcher and linker) is
cached under this hash (:mod:`extractors.text.cache`), so it changes whenever a concept's id,
name, kind, synonyms, cross-references or sources change: a new release of a source (the release
is in ``sources``), another set of sources, a concept upserted by hand. Patients stored in the
same database do not change it.

The embedded store reads its concept table as one Arrow table (about 0.15 s for the default KG's
42k concepts, where ``iter_concepts`` takes 1.8 s); another backend is read through
``iter_concepts``. Both hash the same canonical form: rows sorted by id, each column as value
lengths then UTF-8 bytes, list columns as list lengths then their values. Neither path calls
``pa.array`` or ``pa.scalar`` on Python values, which import pandas (0.4 s of a CLI start).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graph.kg_tables import CONCEPT_SCHEMA, concept_table
from graph.records import Concept

if TYPE_CHECKING:
    from graph.store import GraphStore

HASH_VERSION = "kg-concepts-1"  # bump when the canonical form changes
# The concept table of the embedded store, in CONCEPT_SCHEMA column order.
CONCEPT_TABLE_CYPHER = (
    "MATCH (c:Concept) RETURN c.id AS id, c.name AS name, c.kind AS kind, "
    "c.synonyms AS synonyms, c.xrefs AS xrefs, c.sources AS sources ORDER BY id"
)


def read_concept_table(store: GraphStore) -> pa.Table:
    """All concepts of ``store`` as a table in :data:`~graph.kg_tables.CONCEPT_SCHEMA` layout.

    Raises:
        StoreError: the store cannot be read.
    """
    if store.name == "embedded":
        from graph.errors import StoreError

        try:
            table = store.connection.execute(CONCEPT_TABLE_CYPHER).get_as_arrow()  # type: ignore[attr-defined]
        except RuntimeError as exc:
            raise StoreError(f"cannot read the concept table: {exc}") from None
        return table.rename_columns(CONCEPT_SCHEMA.names)
    return concept_table(sorted(store.iter_concepts(), key=lambda concept: concept.id))


def concept_table_hash(table: pa.Table) -> str:
    """The content hash of a concept table (row order and Arrow chunking do not matter)."""
    if any(table.column(name).null_count for name in CONCEPT_SCHEMA.names):
        return concepts_hash(_rows_without_nulls(table))
    digest = _start(table.num_rows)
    if table.num_rows:
        table = table.take(pc.sort_indices(table, sort_keys=[("id", "ascending")]))
    for name in CONCEPT_SCHEMA.names:
        column = table.column(name).combine_chunks()
        digest.update(name.encode())
        if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
            digest.update(_int64(pc.list_value_length(column)))
            column = column.flatten()
        column = pc.cast(column, pa.large_string())
        digest.update(_int64(pc.binary_length(column)))
        offsets, data = column.buffers()[1:3]
        if data is not None and len(column):
            bounds = np.frombuffer(offsets, np.int64)[
                column.offset : column.offset + len(column) + 1
            ]
            digest.update(memoryview(data)[int(bounds[0]) : int(bounds[-1])])
    return digest.hexdigest()


def concepts_hash(concepts: Iterable[Concept | Sequence[Any]]) -> str:
    """The content hash of concept records (or rows in ``CONCEPT_SCHEMA`` order): the same as
    :func:`concept_table_hash` of their table, computed without Arrow (nor pandas)."""
    rows = sorted(
        (
            (c.id, c.name, str(c.kind), c.synonyms, c.xrefs, c.sources)
            if isinstance(c, Concept)
            else tuple(c)
            for c in concepts
        ),
        key=lambda row: row[0].encode(),
    )
    digest = _start(len(rows))
    for position, name in enumerate(CONCEPT_SCHEMA.names):
        values = [row[position] for row in rows]
        digest.update(name.encode())
        if position >= 3:  # the list columns
            digest.update(np.array([len(v) for v in values], np.int64).tobytes())
            values = [item for value in values for item in value]
        encoded = [value.encode() for value in values]
        digest.update(np.array([len(e) for e in encoded], np.int64).tobytes())
        digest.update(b"".join(encoded))
    return digest.hexdigest()


def kg_content_hash(store: GraphStore) -> str:
    """The content hash of the KG in ``store`` (see the module docstring)."""
    return concept_table_hash(read_concept_table(store))


def _start(rows: int) -> hashlib._Hash:
    digest = hashlib.sha256(HASH_VERSION.encode())
    digest.update(np.int64(rows).tobytes())
    return digest


def _int64(values: pa.Array) -> bytes:
    # the values buffer itself: to_numpy(zero_copy_only=False) imports pandas
    if not len(values):
        return b""
    width = values.type.bit_width // 8
    raw = np.frombuffer(values.buffers()[1], np.dtype(f"int{width * 8}"))
    return raw[values.offset : values.offset + len(values)].astype(np.int64).tobytes()


def _rows_without_nulls(table: pa.Table) -> list[tuple]:
    columns = [table.column(name).to_pylist() for name in CONCEPT_SCHEMA.names]
    return [
        tuple(
            (value or "") if position < 3 else tuple(v or "" for v in value or ())
            for position, value in enumerate(row)
        )
        for row in zip(*columns, strict=True)
    ]
