"""Arrow tables and records for the embedded store: what ``COPY FROM $rows`` takes and what its
queries return, converted in one place."""

from __future__ import annotations

import json
from typing import Any

from graph.kg_tables import concept_table, relation_table
from graph.records import Concept, Relation

__all__ = ["concept_table", "relation_table", "row_concept", "row_relation"]


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
