"""Every Cypher statement the Neo4j backend sends, in one module so it can be read and tested.

Values always travel as parameters (``$rows``, ``$ids``). Labels and relationship types cannot be
parameters in Neo4j 5, so the few builders that take one check it against :mod:`graph.schema`
first; the only other interpolated values are hop counts, checked to be small integers.
"""

from __future__ import annotations

from graph.errors import InputError
from graph.schema import KG_RELATIONS, NODE_PROPERTIES, check_label, check_relation_type

# ---------------------------------------------------------------- schema set-up
INDEXED_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("Concept", "kind"),
    ("Concept", "name"),
    ("Report", "patient_id"),
    ("Image", "patient_id"),
    ("Prediction", "patient_id"),
    ("Prediction", "model_id"),
)


def schema_statements() -> list[str]:
    """Uniqueness constraints on every label's ``id`` and indexes on the filtered properties.

    ``IF NOT EXISTS`` makes them safe to run on every connect.
    """
    statements = [
        f"CREATE CONSTRAINT kgdx_{label.lower()}_id IF NOT EXISTS "
        f"FOR (n:{check_label(label)}) REQUIRE n.id IS UNIQUE"
        for label in NODE_PROPERTIES
    ]
    statements += [
        f"CREATE INDEX kgdx_{label.lower()}_{prop} IF NOT EXISTS "
        f"FOR (n:{check_label(label)}) ON (n.{prop})"
        for label, prop in INDEXED_PROPERTIES
    ]
    # Cohort queries filter patient findings by polarity.
    statements.append(
        "CREATE INDEX kgdx_has_finding_polarity IF NOT EXISTS "
        "FOR ()-[r:HAS_FINDING]-() ON (r.polarity)"
    )
    return statements


# ---------------------------------------------------------------- knowledge graph writes
UPSERT_CONCEPTS = """
UNWIND $rows AS row
MERGE (c:Concept {id: row.id})
SET c.name = row.name, c.kind = row.kind, c.synonyms = row.synonyms,
    c.xrefs = row.xrefs, c.sources = row.sources
"""


def upsert_relations(rel_type: str) -> str:
    """``MERGE`` KG relations of one type between existing concepts, keyed by (src, type, dst)."""
    if check_relation_type(rel_type) not in KG_RELATIONS:
        raise InputError(f"{rel_type!r} is not a KG relation type")
    return f"""
UNWIND $rows AS row
MATCH (a:Concept {{id: row.src}})
MATCH (b:Concept {{id: row.dst}})
MERGE (a)-[r:{rel_type}]->(b)
SET r.sources = row.sources, r.weight = row.weight, r.negated = row.negated,
    r.attributes = row.attributes
"""


# ---------------------------------------------------------------- knowledge graph reads
CONCEPT_FIELDS = (
    "c.id AS id, c.name AS name, c.kind AS kind, c.synonyms AS synonyms, "
    "c.xrefs AS xrefs, c.sources AS sources"
)

MISSING_CONCEPTS = """
UNWIND $ids AS wanted
OPTIONAL MATCH (c:Concept {id: wanted})
WITH wanted, c WHERE c IS NULL
RETURN wanted AS id
"""

GET_CONCEPTS = f"""
MATCH (c:Concept) WHERE c.id IN $ids
RETURN {CONCEPT_FIELDS}
ORDER BY c.id
"""

# Keyset pagination: each page starts after the last id of the previous one.
CONCEPT_PAGE = f"""
MATCH (c:Concept) WHERE c.id > $after
RETURN {CONCEPT_FIELDS}
ORDER BY c.id
LIMIT $batch
"""

RELATION_FIELDS = (
    "a.id AS src, b.id AS dst, type(r) AS type, r.sources AS sources, "
    "r.weight AS weight, r.negated AS negated, r.attributes AS attributes"
)


def relation_page(rel_type: str) -> str:
    """One page of KG relations of ``rel_type``, ordered by (src, dst), after a cursor."""
    if check_relation_type(rel_type) not in KG_RELATIONS:
        raise InputError(f"{rel_type!r} is not a KG relation type")
    return f"""
MATCH (a:Concept)-[r:{rel_type}]->(b:Concept)
WHERE a.id > $after_src OR (a.id = $after_src AND b.id > $after_dst)
RETURN {RELATION_FIELDS}
ORDER BY a.id, b.id
LIMIT $batch
"""


def neighbours(direction: str) -> str:
    """KG neighbours of ``$id`` over ``$types`` walking edges ``out``, ``in`` or ``both`` ways.

    The ``Concept`` label on both ends keeps patient ``HAS_FINDING`` edges out.
    """
    arrows = {"out": ("-", "->"), "in": ("<-", "-"), "both": ("-", "-")}
    if direction not in arrows:
        raise InputError(f"direction must be 'out', 'in' or 'both', not {direction!r}")
    left, right = arrows[direction]
    return f"""
MATCH (c:Concept {{id: $id}}){left}[r]{right}(n:Concept)
WHERE type(r) IN $types
WITH r, n, startNode(r) AS a, endNode(r) AS b,
     CASE WHEN startNode(r) = c THEN 'out' ELSE 'in' END AS direction
RETURN {RELATION_FIELDS}, direction,
       n.id AS n_id, n.name AS n_name, n.kind AS n_kind, n.synonyms AS n_synonyms,
       n.xrefs AS n_xrefs, n.sources AS n_sources
ORDER BY type, n_id, direction DESC
LIMIT $max_rows
"""


def shortest_paths(max_hops: int) -> str:
    """All shortest KG walks (either direction) between two concepts, up to ``max_hops``."""
    if not isinstance(max_hops, int) or not 1 <= max_hops <= 6:
        raise InputError("max_hops must be an integer between 1 and 6")
    return f"""
MATCH (s:Concept {{id: $src}}), (t:Concept {{id: $dst}})
MATCH p = allShortestPaths((s)-[*1..{max_hops}]-(t))
WHERE all(r IN relationships(p) WHERE type(r) IN $types)
  AND all(n IN nodes(p) WHERE n:Concept)
RETURN [n IN nodes(p) | {{id: n.id, name: n.name, kind: n.kind, synonyms: n.synonyms,
                          xrefs: n.xrefs, sources: n.sources}}] AS nodes,
       [r IN relationships(p) | {{src: startNode(r).id, dst: endNode(r).id, type: type(r),
                                  sources: r.sources, weight: r.weight, negated: r.negated,
                                  attributes: r.attributes}}] AS rels
LIMIT $max_rows
"""


# One breadth-first step of a subgraph walk; the walk itself is driven from Python so the
# frontier never re-expands nodes already seen (var-length patterns would enumerate every path).
EXPAND_FRONTIER = """
MATCH (a:Concept)-[r]-(b:Concept)
WHERE a.id IN $frontier AND type(r) IN $types
RETURN DISTINCT b.id AS id
"""

INDUCED_RELATIONS = f"""
MATCH (a:Concept)-[r]->(b:Concept)
WHERE a.id IN $ids AND b.id IN $ids AND type(r) IN $types
RETURN {RELATION_FIELDS}
ORDER BY a.id, type(r), b.id
"""


# ---------------------------------------------------------------- clearing
def delete_batch(label: str) -> str:
    """Detach-delete up to ``$batch`` nodes of ``label``; returns how many went.

    Deleting in bounded batches keeps each transaction's memory small on a large graph.
    """
    return (
        f"MATCH (n:{check_label(label)}) WITH n LIMIT $batch "
        "DETACH DELETE n RETURN count(*) AS deleted"
    )


# ---------------------------------------------------------------- counts
_COUNT_LABEL = "MATCH (n:{label}) RETURN count(n) AS n"
_COUNT_TYPE = "MATCH ()-[r:{rel_type}]->() RETURN count(r) AS n"


def count_label(label: str) -> str:
    return _COUNT_LABEL.format(label=check_label(label))


def count_type(rel_type: str) -> str:
    return _COUNT_TYPE.format(rel_type=check_relation_type(rel_type))
