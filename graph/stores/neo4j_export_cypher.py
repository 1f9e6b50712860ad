"""Read-only Cypher that streams a whole store out, for the Neo4j exports.

Portable between LadybugDB and Neo4j (no ``label()``/``type()``), built from :mod:`graph.schema`
only. Nodes page by id (keyset: ``id > $after``); relations are read for one page of source ids
at a time, as an id range (a page of sorted ids is exactly the ids between its first and last):
no page relies on ``SKIP`` over ties, and a range filter is several times faster than
``a.id IN $ids`` on LadybugDB.
"""

from __future__ import annotations

from graph.schema import (
    KG_RELATION_PROPERTIES,
    KG_RELATIONS,
    NODE_PROPERTIES,
    PATIENT_RELATIONS,
    check_label,
    check_relation_type,
)

Properties = tuple[tuple[str, str], ...]


def relation_files() -> list[tuple[str, str, str, Properties]]:
    """``(type, src_label, dst_label, properties)`` for every endpoint pair of every relation.

    ``HAS_FINDING`` appears twice: between concepts (KG) and from patients (findings), each with
    its own properties, because ``neo4j-admin`` reads one id space per file column.
    """
    files = [(name, "Concept", "Concept", KG_RELATION_PROPERTIES) for name in KG_RELATIONS]
    files += [(r.name, r.src, r.dst, r.properties) for r in PATIENT_RELATIONS.values()]
    return files


def node_page(label: str) -> str:
    """One page of ``label`` nodes with every schema property, ordered by id."""
    props = NODE_PROPERTIES[check_label(label)]
    fields = ", ".join(f"n.`{name}` AS `{name}`" for name, _ in props)
    return f"MATCH (n:{label}) WHERE n.id > $after RETURN {fields} ORDER BY n.id LIMIT $n"


def relations_from(rel_type: str, src: str, dst: str, props: Properties) -> str:
    """Relations of one type and endpoint pair whose source id is in ``[$first, $last]``."""
    check_relation_type(rel_type)
    fields = "".join(f", r.`{name}` AS `{name}`" for name, _ in props)
    return (
        f"MATCH (a:{check_label(src)})-[r:{rel_type}]->(b:{check_label(dst)}) "
        f"WHERE a.id >= $first AND a.id <= $last "
        f"RETURN a.id AS src, b.id AS dst{fields} ORDER BY src, dst"
    )


def source_ids(label: str) -> str:
    """One page of ids of ``label`` (the sources a relation page is read for)."""
    return (
        f"MATCH (n:{check_label(label)}) WHERE n.id > $after RETURN n.id AS id ORDER BY id LIMIT $n"
    )


PATIENT_PREDICTIONS = (
    "MATCH (:Patient {id: $pid})-[:HAS_PREDICTION]->(x:Prediction)-[:PREDICTS]->(c:Concept) "
    "RETURN x.concept_id AS concept_id, c.name AS name, x.probability AS probability, "
    "x.model_id AS model_id, x.paths AS paths, x.rank AS rank, "
    "x.input_sections AS input_sections, x.kg_release AS kg_release ORDER BY model_id, rank"
)
