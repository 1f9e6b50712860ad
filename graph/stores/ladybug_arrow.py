"""Arrow tables and records for the embedded store: what ``COPY FROM $rows`` takes and what its
queries return, converted in one place."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa

from graph.records import Concept, Relation
from graph.schema import relation_tables

_STR_LIST = pa.list_(pa.string())
_ARROW_TYPES = {
    "STRING": pa.string(),
    "DOUBLE": pa.float64(),
    "BOOLEAN": pa.bool_(),
    "INT64": pa.int64(),
    "STRING[]": _STR_LIST,
}


def row_concept(row: list[Any]) -> Concept:
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
    sources, weight, negated, attributes = props
    return Relation(
        src=src,
        dst=dst,
        type=rel_type,
        sources=tuple(sources or ()),
        weight=1.0 if weight is None else weight,
        negated=bool(negated),
        attributes=json.loads(attributes) if attributes else {},
    )


def concept_table(concepts: list[Concept]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([c.id for c in concepts], pa.string()),
            "name": pa.array([c.name for c in concepts], pa.string()),
            "kind": pa.array([c.kind.value for c in concepts], pa.string()),
            "synonyms": pa.array([list(c.synonyms) for c in concepts], _STR_LIST),
            "xrefs": pa.array([list(c.xrefs) for c in concepts], _STR_LIST),
            "sources": pa.array([list(c.sources) for c in concepts], _STR_LIST),
        }
    )


def relation_table(rel_type: str, relations: list[Relation]) -> pa.Table:
    props = relation_tables()[rel_type][1]
    columns: dict[str, pa.Array] = {
        "from": pa.array([r.src for r in relations], pa.string()),
        "to": pa.array([r.dst for r in relations], pa.string()),
        "sources": pa.array([list(r.sources) for r in relations], _STR_LIST),
        "weight": pa.array([r.weight for r in relations], pa.float64()),
        "negated": pa.array([r.negated for r in relations], pa.bool_()),
        "attributes": pa.array(
            [json.dumps(r.attributes) if r.attributes else "" for r in relations], pa.string()
        ),
    }
    # Properties of the table's other endpoint pairs (patient findings) stay null.
    for prop, prop_type in props[len(columns) - 2 :]:
        columns[prop] = pa.nulls(len(relations), _ARROW_TYPES[prop_type])
    return pa.table(columns)
