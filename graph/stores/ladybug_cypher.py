"""All Cypher text of the embedded LadybugDB backend, built from the schema.

Labels and relation types enter queries only after :mod:`graph.schema` checks them; values are
always parameters.
"""

from __future__ import annotations

from graph.schema import NODE_PROPERTIES, check_label, check_relation_type, relation_tables

CONCEPT_FIELDS = "c.id, c.name, c.kind, c.synonyms, c.xrefs, c.sources"
RELATION_FIELDS = "r.sources, r.weight, r.negated, r.attributes"
# Keeps variable-length KG walks on Concept nodes: HAS_FINDING also links Patients to Concepts.
CONCEPT_ONLY = "(e, n | WHERE label(n) = 'Concept')"


def _columns(props: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"`{name}` {prop_type}" for name, prop_type in props)


def create_schema() -> list[str]:
    """DDL for every node and relation table of the schema (idempotent)."""
    statements = []
    for label, props in NODE_PROPERTIES.items():
        key = props[0][0]
        statements.append(
            f"CREATE NODE TABLE IF NOT EXISTS {label}({_columns(props)}, PRIMARY KEY ({key}))"
        )
    for name, (pairs, props) in relation_tables().items():
        ends = ", ".join(f"FROM {src} TO {dst}" for src, dst in pairs)
        columns = f", {_columns(props)}" if props else ""
        statements.append(f"CREATE REL TABLE IF NOT EXISTS {name}({ends}{columns})")
    return statements


def rel_union(types: list[str]) -> str:
    """``IS_A|HAS_FINDING`` after checking each type against the schema."""
    return "|".join(check_relation_type(t) for t in types)


def existing_ids(label: str) -> str:
    """Ids of an Arrow ``$rows`` table (column ``i``) that exist as ``label`` nodes."""
    return f"LOAD FROM $rows MATCH (n:{check_label(label)} {{id: i}}) RETURN n.id"


def existing_listed(label: str) -> str:
    """Ids of a list parameter ``$ids`` that exist as ``label`` nodes (for small lists)."""
    return f"UNWIND $ids AS i MATCH (n:{check_label(label)} {{id: i}}) RETURN n.id"


def copy_options(rel_type: str) -> str:
    """The ``COPY`` options a relation type needs: the endpoint tables of a relation group
    (``HAS_FINDING`` links Patients and Concepts; the KG copies Concept -> Concept)."""
    several = len(relation_tables()[check_relation_type(rel_type)][0]) > 1
    return " (from='Concept', to='Concept')" if several else ""


def copy_from(table: str, options: str = "", path: str | None = None) -> str:
    """Bulk ``COPY`` into a node or relation table from an Arrow ``$rows`` parameter or, given
    ``path``, from that Parquet file (quoted as a string literal)."""
    if table not in NODE_PROPERTIES:
        check_relation_type(table)
    source = "$rows"
    if path is not None:
        source = "'" + path.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return f"COPY {table} FROM {source}{options}"


GET_CONCEPTS = f"UNWIND $ids AS i MATCH (c:Concept {{id: i}}) RETURN {CONCEPT_FIELDS}"
PAGE_CONCEPTS = (
    f"MATCH (c:Concept) WHERE c.id > $after RETURN {CONCEPT_FIELDS} ORDER BY c.id LIMIT $n"
)
UPDATE_CONCEPTS = (
    "LOAD FROM $rows MATCH (c:Concept {id: id}) "
    "SET c.name = name, c.kind = kind, c.synonyms = synonyms, c.xrefs = xrefs, c.sources = sources"
)


def existing_relations(rel_type: str) -> str:
    """``(src, dst)`` pairs of an Arrow ``$rows`` table (``from``, ``to``) already stored."""
    return (
        f"LOAD FROM $rows MATCH (a:Concept {{id: `from`}})-[r:{check_relation_type(rel_type)}]->"
        "(b:Concept {id: `to`}) RETURN a.id, b.id"
    )


def update_relations(rel_type: str) -> str:
    return (
        f"LOAD FROM $rows MATCH (a:Concept {{id: `from`}})-[r:{check_relation_type(rel_type)}]->"
        "(b:Concept {id: `to`}) SET r.sources = sources, r.weight = weight, "
        "r.negated = negated, r.attributes = attributes"
    )


def all_relations(rel_type: str) -> str:
    return (
        f"MATCH (a:Concept)-[r:{check_relation_type(rel_type)}]->(b:Concept) "
        f"RETURN a.id, b.id, {RELATION_FIELDS}"
    )


def neighbours(types: list[str], direction: str) -> str:
    arrow = "-[r:{}]->" if direction == "out" else "<-[r:{}]-"
    return (
        f"MATCH (a:Concept {{id: $id}}){arrow.format(rel_union(types))}(c:Concept) "
        f"RETURN label(r), a.id, {RELATION_FIELDS}, {CONCEPT_FIELDS} LIMIT $limit"
    )


def shortest_paths(types: list[str], max_hops: int) -> str:
    return (
        f"MATCH p = (a:Concept {{id: $src}})-[r:{rel_union(types)}* ALL SHORTEST 1..{int(max_hops)} "
        f"{CONCEPT_ONLY}]-(b:Concept {{id: $dst}}) RETURN nodes(p), rels(p) LIMIT $limit"
    )


def k_hop_ids(types: list[str], hops: int) -> str:
    return (
        f"MATCH (a:Concept)-[r:{rel_union(types)}*1..{int(hops)} {CONCEPT_ONLY}]-(c:Concept) "
        "WHERE a.id IN $ids RETURN DISTINCT c.id"
    )


def induced_relations(rel_type: str) -> str:
    return (
        f"MATCH (a:Concept)-[r:{check_relation_type(rel_type)}]->(b:Concept) "
        f"WHERE a.id IN $ids AND b.id IN $ids RETURN a.id, b.id, {RELATION_FIELDS}"
    )


# ---------------------------------------------------------------- patients
DELETE_PATIENT_PARTS = (
    "MATCH (p:Patient {id: $pid})-[:HAS_REPORT]->(x:Report) DETACH DELETE x",
    "MATCH (p:Patient {id: $pid})-[:HAS_IMAGE]->(x:Image) DETACH DELETE x",
    "MATCH (p:Patient {id: $pid})-[e:HAS_FINDING]->(:Concept) DELETE e",
    "MATCH (p:Patient {id: $pid})-[e:DIAGNOSED_WITH]->(:Concept) DELETE e",
)
DELETE_PATIENT_PREDICTIONS = (
    "MATCH (p:Patient {id: $pid})-[:HAS_PREDICTION]->(x:Prediction) DETACH DELETE x"
)
DELETE_PATIENT = "MATCH (p:Patient {id: $pid}) DETACH DELETE p"
MERGE_PATIENT = "MERGE (p:Patient {id: $pid}) SET p.attributes = $attributes"
CREATE_REPORTS = (
    "MATCH (p:Patient {id: $pid}) UNWIND $rows AS row "
    "CREATE (p)-[:HAS_REPORT]->(:Report {id: row.id, patient_id: $pid, text: row.text, "
    "date: row.date})"
)
CREATE_IMAGES = (
    "MATCH (p:Patient {id: $pid}) UNWIND $rows AS row "
    "CREATE (p)-[:HAS_IMAGE]->(:Image {id: row.id, patient_id: $pid, modality: row.modality, "
    "path: row.path})"
)
_ASSERTION = (
    "polarity: row.polarity, certainty: row.certainty, temporality: row.temporality, "
    "experiencer: row.experiencer, confidence: row.confidence"
)
CREATE_MENTIONS = (
    "UNWIND $rows AS row MATCH (d:Report {id: row.doc}), (c:Concept {id: row.concept}) "
    f"CREATE (d)-[:MENTIONS {{{_ASSERTION}, section: row.section, sentence: row.sentence, "
    "start: row.start, `end`: row.`end`}]->(c)"
)
CREATE_SHOWS = (
    "UNWIND $rows AS row MATCH (d:Image {id: row.doc}), (c:Concept {id: row.concept}) "
    f"CREATE (d)-[:SHOWS {{{_ASSERTION}, probability: row.probability, model_id: row.model_id, "
    # the casts type a column whose values are all null (findings stored unchecked)
    "scope: row.scope, in_scope: CAST(row.in_scope AS BOOL), scope_reason: row.scope_reason, "
    "ood_score: CAST(row.ood_score AS DOUBLE)}]->(c)"
)
CREATE_PATIENT_FINDINGS = (
    "MATCH (p:Patient {id: $pid}) UNWIND $rows AS row MATCH (c:Concept {id: row.concept}) "
    f"CREATE (p)-[:HAS_FINDING {{{_ASSERTION}, sources: row.sources, sections: row.sections}}]->(c)"
)
CREATE_LABELS = (
    "MATCH (p:Patient {id: $pid}) UNWIND $ids AS i MATCH (c:Concept {id: i}) "
    "CREATE (p)-[:DIAGNOSED_WITH]->(c)"
)
GET_PATIENT = "MATCH (p:Patient {id: $pid}) RETURN p.attributes"
HAS_PATIENT = "MATCH (p:Patient {id: $pid}) RETURN p.id"
GET_REPORTS = "MATCH (p:Patient {id: $pid})-[:HAS_REPORT]->(d:Report) RETURN d.id, d.text, d.date ORDER BY d.id"
GET_IMAGES = (
    "MATCH (p:Patient {id: $pid})-[:HAS_IMAGE]->(d:Image) RETURN d.id, d.modality, d.path "
    "ORDER BY d.id"
)
_ASSERTION_FIELDS = "m.polarity, m.certainty, m.temporality, m.experiencer, m.confidence"
GET_MENTIONS = (
    "MATCH (p:Patient {id: $pid})-[:HAS_REPORT]->(d:Report)-[m:MENTIONS]->(c:Concept) "
    f"RETURN d.id, c.id, {_ASSERTION_FIELDS}, m.section, m.sentence, m.start, m.`end` "
    "ORDER BY d.id, m.start, c.id"
)
GET_SHOWS = (
    "MATCH (p:Patient {id: $pid})-[:HAS_IMAGE]->(d:Image)-[m:SHOWS]->(c:Concept) "
    f"RETURN d.id, c.id, {_ASSERTION_FIELDS}, m.probability, m.model_id, m.scope, "
    "m.scope_reason, m.ood_score ORDER BY d.id, c.id"
)
GET_LABELS = "MATCH (p:Patient {id: $pid})-[:DIAGNOSED_WITH]->(c:Concept) RETURN c.id ORDER BY c.id"
PATIENT_IDS = "MATCH (p:Patient) RETURN p.id ORDER BY p.id"

# ---------------------------------------------------------------- predictions
# A patient's predictions as the store remembers them (graph.stores.prediction_memory): what a
# save compares its new rows with, and what a read answers. A save writes only the difference:
# stale or changed rows deleted by id, unchanged ones re-stamped. ``linked`` stands for the count
# of its EXPLAINED_BY edges (an OPTIONAL MATCH of them cost 0.25 of a 0.4 ms read); a path
# concept stored since changes what a save would link.
PREDICTION_ROWS = (
    "MATCH (:Patient {id: $pid})-[:HAS_PREDICTION]->(x:Prediction)-[:PREDICTS]->(c:Concept) "
    "RETURN x.id, x.concept_id, x.probability, x.model_id, x.rank, x.paths, x.input_sections, "
    "x.kg_release, x.linked, c.name, x.created ORDER BY x.model_id, x.rank"
)
DELETE_PREDICTIONS = (
    "MATCH (p:Patient {id: $pid})-[:HAS_PREDICTION]->(x:Prediction) "
    "WHERE x.id IN $ids DETACH DELETE x"
)
RESTAMP_PREDICTIONS = (
    "MATCH (p:Patient {id: $pid})-[:HAS_PREDICTION]->(x:Prediction) "
    "WHERE x.id IN $ids SET x.created = $created"
)
CREATE_PREDICTIONS = (
    "MATCH (p:Patient {id: $pid}) UNWIND $rows AS row MATCH (c:Concept {id: row.concept_id}) "
    "CREATE (p)-[:HAS_PREDICTION]->(x:Prediction {id: row.id, patient_id: $pid, "
    "concept_id: row.concept_id, probability: row.probability, model_id: row.model_id, "
    "rank: row.rank, paths: row.paths, created: row.created, "
    "input_sections: row.input_sections, kg_release: row.kg_release, linked: row.linked})"
    "-[:PREDICTS]->(c)"
)
CREATE_EXPLAINED_BY = (
    "UNWIND $rows AS row MATCH (x:Prediction {id: row.prediction}), (c:Concept {id: row.concept}) "
    "CREATE (x)-[:EXPLAINED_BY {path: row.path, step: row.step}]->(c)"
)


def count_nodes(label: str) -> str:
    return f"MATCH (n:{check_label(label)}) RETURN count(n)"


def count_relations(rel_type: str) -> str:
    return f"MATCH ()-[r:{check_relation_type(rel_type)}]->() RETURN count(r)"


def delete_all(label: str) -> str:
    return f"MATCH (n:{check_label(label)}) DETACH DELETE n"
