"""Contract tests every GraphStore backend passes (the ``kg`` fixture, parametrised over the
registered backends, and its data: ``tests/graph/store_contract.py``); the prediction contract is
in ``test_store_contract_predictions.py``."""

from __future__ import annotations

import pytest

from graph.errors import InputError, QueryError, UnknownConceptError
from graph.records import Finding, Relation, TextSpan
from tests.graph.store_contract import (
    CARDIO,
    CHF,
    CONCEPTS,
    EDEMA,
    EFFUSION,
    HF,
    LUNG,
    RELATIONS,
    contract_patient,
)

WRITES = [
    "CREATE (:Patient {id: 'evil'})",
    "MATCH (n) DETACH DELETE n",
    "MATCH (c:Concept) DELETE c",
    "MATCH (c:Concept) SET c.name = 'x'",
    "MERGE (c:Concept {id: 'UMLS:C9999999'})",
    "MATCH (c:Concept) REMOVE c.name",
    "DROP TABLE Concept",
    "COPY Concept FROM '/tmp/x.csv'",
    "LOAD FROM '/tmp/x.csv' RETURN *",
    "CALL db.create.setNodeVectorProperty() RETURN 1",
    "// harmless\nMATCH (n) DETACH DELETE n",
    "/* read */ MATCH (n:Patient) /* really */ DELETE n",
    "MATCH (c:Concept) CALL { WITH c SET c.name = 'x' } RETURN c",
    "MATCH (n) RETURN n; MATCH (m) DETACH DELETE m",
    "match (c:Concept) set c.kind = 'other'",
]


def test_concepts_round_trip_and_update(kg):
    assert kg.get_concept(CARDIO) == CONCEPTS[2]
    assert set(kg.get_concepts([CARDIO, EFFUSION, "UMLS:C0000000"])) == {CARDIO, EFFUSION}
    kg.upsert_concepts([CONCEPTS[2].model_copy(update={"synonyms": ("big heart",)})])
    assert kg.get_concept(CARDIO).synonyms == ("big heart",)
    assert kg.counts().nodes["Concept"] == len(CONCEPTS)
    assert [c.id for c in kg.iter_concepts(batch_size=2)] == sorted(c.id for c in CONCEPTS)


def test_unknown_concept_and_bad_types(kg):
    with pytest.raises(UnknownConceptError, match="UMLS:C0000001"):
        kg.get_concept("UMLS:C0000001")
    with pytest.raises(InputError):
        kg.get_concepts(["not a curie"])
    with pytest.raises(InputError):
        kg.upsert_concepts([{"id": "UMLS:C1", "name": "x"}])
    with pytest.raises(InputError):
        kg.neighbours(CHF, types=["HAS_REPORT"])


def test_relations_are_upserted_by_key(kg):
    before = kg.counts()
    assert kg.upsert_relations(RELATIONS) == len(RELATIONS)
    assert kg.counts() == before
    kg.upsert_relations([RELATIONS[3].model_copy(update={"weight": 0.9})])
    (site,) = kg.neighbours(EDEMA, types=["FINDING_SITE"], direction="out")
    assert site.relation.weight == 0.9 and site.concept.id == LUNG
    assert (
        sorted(kg.iter_relations(), key=lambda r: (r.type, r.src, r.dst))[0].type == "FINDING_SITE"
    )


def test_relation_to_unknown_concept_writes_nothing(kg):
    before = kg.counts()
    bad = [
        Relation(src=CHF, dst=EDEMA, type="HAS_FINDING"),
        Relation(src=CHF, dst="UMLS:C0000002", type="HAS_FINDING"),
    ]
    with pytest.raises(UnknownConceptError, match="UMLS:C0000002"):
        kg.upsert_relations(bad)
    assert kg.counts() == before


def test_neighbours_by_direction(kg):
    out = {(n.relation.type, n.concept.id) for n in kg.neighbours(CHF, direction="out")}
    assert out == {("HAS_FINDING", CARDIO), ("HAS_FINDING", EFFUSION), ("IS_A", HF)}
    (back,) = kg.neighbours(CARDIO, direction="in")
    assert back.concept.id == CHF and back.direction == "in"
    assert back.relation.src == CHF and back.relation.dst == CARDIO
    effusion = [n for n in kg.neighbours(CHF, types=["HAS_FINDING"]) if n.concept.id == EFFUSION]
    assert effusion[0].relation.attributes == {"freq": "HP:0040282"}


def test_paths_walk_kg_edges_only(kg):
    kg.upsert_patient(
        contract_patient()
    )  # the patient links CARDIO and EDEMA; paths must not use it
    (path,) = kg.paths(CARDIO, EFFUSION, max_hops=3)
    assert [(s.relation.type, s.direction, s.concept.id) for s in path] == [
        ("HAS_FINDING", "in", CHF),
        ("HAS_FINDING", "out", EFFUSION),
    ]
    assert kg.paths(CARDIO, LUNG, max_hops=4) == []


def test_subgraph_k_hops(kg):
    one = kg.subgraph([CARDIO], hops=1)
    assert {c.id for c in one.concepts} == {CARDIO, CHF}
    two = kg.subgraph([CARDIO], hops=2)
    assert {c.id for c in two.concepts} == {CARDIO, CHF, EFFUSION, HF}
    assert {(r.src, r.dst) for r in two.relations} == {(CHF, CARDIO), (CHF, EFFUSION), (CHF, HF)}
    assert kg.subgraph([CARDIO], hops=0).relations == ()


def test_patient_round_trip_and_idempotent_ingest(kg):
    patient = contract_patient()
    kg.upsert_patient(patient)
    first = kg.counts()
    kg.upsert_patient(patient)
    assert kg.counts() == first
    assert first.nodes["Patient"] == 1 and first.relations["MENTIONS"] == 2
    assert first.relations["SHOWS"] == 1 and first.relations["DIAGNOSED_WITH"] == 1
    stored = kg.get_patient("P001")
    assert stored == patient
    assert stored.findings[0].provenance.text == "heart is enlarged"
    rows = kg.query(
        "MATCH (p:Patient)-[f:HAS_FINDING]->(c:Concept) RETURN c.id, f.polarity ORDER BY c.id"
    ).rows
    assert rows == ((CARDIO, "present"), (EFFUSION, "absent"), (EDEMA, "present"))


def test_reingest_replaces_findings(kg):
    kg.upsert_patient(contract_patient())
    fewer = contract_patient().model_copy(update={"findings": contract_patient().findings[:1]})
    kg.upsert_patient(fewer)
    assert kg.get_patient("P001").findings == fewer.findings
    assert kg.counts().relations["MENTIONS"] == 1


def test_bad_patient_writes_nothing(kg):
    kg.upsert_patient(contract_patient())
    before = kg.counts()
    unknown = contract_patient().model_copy(update={"labels": ("UMLS:C0000003",)})
    with pytest.raises(UnknownConceptError):
        kg.upsert_patient(unknown)
    orphan = Finding(concept_id=CARDIO, provenance=TextSpan(doc_id="r9", start=0, end=1, text="x"))
    with pytest.raises(InputError, match="r9"):
        kg.upsert_patient(contract_patient().model_copy(update={"findings": (orphan,)}))
    assert kg.counts() == before
    assert kg.get_patient("P001") == contract_patient()
    with pytest.raises(InputError):
        kg.upsert_patient({"id": "P002"})


def test_delete_patient(kg):
    kg.upsert_patient(contract_patient())
    kg.delete_patient("P001")
    counts = kg.counts()
    assert counts.nodes["Patient"] == counts.nodes["Report"] == counts.nodes["Image"] == 0
    assert counts.relations["MENTIONS"] == 0 and counts.nodes["Concept"] == len(CONCEPTS)
    with pytest.raises(InputError):
        kg.get_patient("P001")


def test_query_parameters_and_row_limit(kg):
    result = kg.query(
        "MATCH (c:Concept) WHERE c.kind = $kind RETURN c.id ORDER BY c.id", {"kind": "disease"}
    )
    assert result.rows == ((HF,), (CHF,)) and not result.truncated
    limited = kg.query("MATCH (c:Concept) RETURN c.id", row_limit=2)
    assert len(limited.rows) == 2 and limited.truncated
    assert result.records()[0] == {"c.id": HF}
    injected = kg.query(
        "MATCH (c:Concept) WHERE c.name = $name RETURN count(c)", {"name": "x' OR 1=1 //"}
    )
    assert injected.rows == ((0,),)


def test_a_parameter_without_a_value_is_an_error_not_an_empty_answer(kg):
    """The database reads an unbound ``$kind`` as null: a misspelt parameter name answered
    zero rows, as if nothing matched."""
    cypher = "MATCH (c:Concept) WHERE c.kind = $kind AND c.id <> $skip RETURN c.id"
    with pytest.raises(QueryError, match=r"no value given for parameter\(s\) \$kind, \$skip"):
        kg.query(cypher, {"knd": "disease"})
    with pytest.raises(QueryError, match=r"\$skip"):
        kg.query(cypher, {"kind": "disease"})
    assert len(kg.query(cypher, {"kind": "disease", "skip": HF}).rows) == 1
    with pytest.raises(QueryError, match=r"positional parameters \(\$1\) are not supported"):
        kg.query("MATCH (c:Concept) WHERE c.kind = $1 RETURN c.id")
    # a name in a string or a comment is no parameter
    assert kg.query("RETURN '$kind' AS text // $kind").rows == (("$kind",),)


@pytest.mark.parametrize("cypher", WRITES)
def test_read_only_path_rejects_writes(kg, cypher):
    kg.upsert_patient(contract_patient())
    before = kg.counts()
    with pytest.raises(QueryError):
        kg.query(cypher)
    assert kg.counts() == before
    assert kg.get_concept(CARDIO).name == "cardiomegaly"


@pytest.mark.parametrize("cypher", ["", "   ", "MATCH (n RETURN n", "MATCH (n) RETURN n.nope("])
def test_bad_queries_raise_query_error(kg, cypher):
    with pytest.raises(QueryError):
        kg.query(cypher)


def test_query_rejects_bad_types(kg):
    with pytest.raises(QueryError):
        kg.query(b"MATCH (n) RETURN n")  # type: ignore[arg-type]
    with pytest.raises(QueryError):
        kg.query("MATCH (n) RETURN n", {"bad key": 1})
