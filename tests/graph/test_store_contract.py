"""Contract tests every GraphStore backend passes (parametrised over the registered backends).

The embedded LadybugDB store always runs. The Neo4j store runs when ``KGDX_TEST_NEO4J_URI``
points at a live Neo4j 5 (user/password from ``KGDX_TEST_NEO4J_USER`` / ``_PASSWORD``); its
database is cleared first, so never point it at a database you care about.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest

from graph.errors import InputError, QueryError, UnknownConceptError
from graph.records import (
    Assertion,
    Concept,
    Diagnosis,
    ExplanationPath,
    Finding,
    ImageEvidence,
    Patient,
    Relation,
    Report,
    TextSpan,
)
from graph.records import Image as ImageRecord
from graph.settings import Settings
from graph.stores import open_store

CHF, CARDIO, EFFUSION, HF, EDEMA, LUNG = (
    "UMLS:C0018802",
    "UMLS:C0018800",
    "UMLS:C0032227",
    "UMLS:C0018801",
    "UMLS:C0034063",
    "UMLS:C0024109",
)
CONCEPTS = [
    Concept(id=CHF, name="congestive heart failure", kind="disease", xrefs=("DOID:6000",)),
    Concept(id=HF, name="heart failure", kind="disease"),
    Concept(id=CARDIO, name="cardiomegaly", kind="finding", synonyms=("enlarged heart",)),
    Concept(id=EFFUSION, name="pleural effusion", kind="finding", synonyms=("effusion",)),
    Concept(id=EDEMA, name="pulmonary edema", kind="finding"),
    Concept(id=LUNG, name="lung", kind="anatomy"),
]
RELATIONS = [
    Relation(src=CHF, dst=CARDIO, type="HAS_FINDING", sources=("seed",)),
    Relation(
        src=CHF,
        dst=EFFUSION,
        type="HAS_FINDING",
        sources=("seed",),
        attributes={"freq": "HP:0040282"},
    ),
    Relation(src=CHF, dst=HF, type="IS_A", sources=("seed",)),
    Relation(src=EDEMA, dst=LUNG, type="FINDING_SITE", sources=("seed",), weight=0.5),
]
REPORT = "FINDINGS: The heart is enlarged. No pleural effusion.\nIMPRESSION: Cardiomegaly."
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


def _patient(pid: str = "P001") -> Patient:
    cardio = REPORT.index("heart is enlarged")
    effusion = REPORT.index("pleural effusion")
    return Patient(
        id=pid,
        reports=(Report(id="r1", text=REPORT, date="2026-01-02"),),
        images=(ImageRecord(id="i1", modality="CR"),),
        findings=(
            Finding(
                concept_id=CARDIO,
                provenance=TextSpan(
                    doc_id="r1",
                    section="findings",
                    sentence="The heart is enlarged.",
                    start=cardio,
                    end=cardio + 17,
                    text="heart is enlarged",
                ),
            ),
            Finding(
                concept_id=EFFUSION,
                assertion=Assertion(polarity="absent"),
                provenance=TextSpan(
                    doc_id="r1",
                    section="findings",
                    sentence="No pleural effusion.",
                    start=effusion,
                    end=effusion + 16,
                    text="pleural effusion",
                ),
            ),
            Finding(
                concept_id=EDEMA,
                confidence=0.83,
                provenance=ImageEvidence(image_id="i1", model_id="cnn-test", probability=0.83),
            ),
        ),
        labels=(CHF,),
        attributes={"age": 71, "sex": "F"},
    )


def _backends() -> list:
    params = [pytest.param("embedded", id="embedded")]
    reason = "set KGDX_TEST_NEO4J_URI to run the contract tests against a live Neo4j 5"
    params.append(
        pytest.param(
            "neo4j",
            id="neo4j",
            marks=[
                pytest.mark.neo4j,
                pytest.mark.skipif(not os.environ.get("KGDX_TEST_NEO4J_URI"), reason=reason),
            ],
        )
    )
    return params


@pytest.fixture(params=_backends())
def kg(request, tmp_path) -> Iterator:
    settings = Settings(
        home=tmp_path,
        db_path=tmp_path / "contract.lbug",
        neo4j_uri=os.environ.get("KGDX_TEST_NEO4J_URI", "bolt://localhost:7687"),
        neo4j_user=os.environ.get("KGDX_TEST_NEO4J_USER", "neo4j"),
        neo4j_password=os.environ.get("KGDX_TEST_NEO4J_PASSWORD", ""),
    )
    with open_store(request.param, settings=settings) as store:
        store.clear()
        store.upsert_concepts(CONCEPTS)
        store.upsert_relations(RELATIONS)
        yield store


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
    kg.upsert_patient(_patient())  # the patient links CARDIO and EDEMA; paths must not use it
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
    patient = _patient()
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
    kg.upsert_patient(_patient())
    fewer = _patient().model_copy(update={"findings": _patient().findings[:1]})
    kg.upsert_patient(fewer)
    assert kg.get_patient("P001").findings == fewer.findings
    assert kg.counts().relations["MENTIONS"] == 1


def test_bad_patient_writes_nothing(kg):
    kg.upsert_patient(_patient())
    before = kg.counts()
    unknown = _patient().model_copy(update={"labels": ("UMLS:C0000003",)})
    with pytest.raises(UnknownConceptError):
        kg.upsert_patient(unknown)
    orphan = Finding(concept_id=CARDIO, provenance=TextSpan(doc_id="r9", start=0, end=1, text="x"))
    with pytest.raises(InputError, match="r9"):
        kg.upsert_patient(_patient().model_copy(update={"findings": (orphan,)}))
    assert kg.counts() == before
    assert kg.get_patient("P001") == _patient()
    with pytest.raises(InputError):
        kg.upsert_patient({"id": "P002"})


def test_predictions_are_stored_and_replaced(kg):
    kg.upsert_patient(_patient())
    path = ExplanationPath(
        nodes=("P001", CARDIO, CHF), relations=("HAS_FINDING", "FINDING_OF"), score=0.7
    )
    diagnosis = Diagnosis(
        concept_id=CHF,
        name="congestive heart failure",
        probability=0.81,
        paths=(path,),
        model_id="hgt-test",
    )
    kg.save_predictions("P001", [diagnosis])
    kg.save_predictions("P001", [diagnosis])
    rows = kg.query(
        "MATCH (p:Patient {id: $pid})-[:HAS_PREDICTION]->(x:Prediction)-[e:EXPLAINED_BY]->(c:Concept) "
        "RETURN x.probability, c.id, e.step ORDER BY e.step",
        {"pid": "P001"},
    ).rows
    assert rows == ((0.81, CARDIO, 1), (0.81, CHF, 2))
    with pytest.raises(UnknownConceptError):
        kg.save_predictions("P001", [diagnosis.model_copy(update={"concept_id": "UMLS:C0000004"})])
    assert kg.counts().nodes["Prediction"] == 1


def _explained(kg, model: str = "hgt-test") -> tuple:
    return kg.query(
        "MATCH (:Patient {id: 'P001'})-[:HAS_PREDICTION]->(x:Prediction) "
        "WHERE x.model_id = $model OPTIONAL MATCH (x)-[e:EXPLAINED_BY]->(c:Concept) "
        "RETURN x.concept_id, x.probability, x.rank, c.id, e.step ORDER BY x.rank, e.step",
        {"model": model},
    ).rows


def _linked_counts_its_edges(kg) -> None:
    """Every prediction's ``linked`` is the number of its ``EXPLAINED_BY`` edges."""
    rows = kg.query(
        "MATCH (x:Prediction) OPTIONAL MATCH (x)-[e:EXPLAINED_BY]->(:Concept) "
        "RETURN x.id, x.linked, count(e) ORDER BY x.id"
    ).rows
    assert rows and all(linked == edges for _, linked, edges in rows), rows


def _of_model(kg, model: str) -> list:
    return [s for s in kg.get_predictions("P001") if s.diagnosis.model_id == model]


def test_a_save_replaces_changed_and_stale_predictions_and_keeps_equal_ones(kg):
    """The embedded store writes only what changed; every backend ends in the same state."""
    kg.upsert_patient(_patient())
    to_hf = ExplanationPath(
        nodes=("P001", CARDIO, HF), relations=("HAS_FINDING", "FINDING_OF"), score=0.4
    )
    to_chf = ExplanationPath(
        nodes=("P001", CARDIO, EDEMA, CHF), relations=("HAS_FINDING",) * 3, score=0.7
    )
    chf = Diagnosis(
        concept_id=CHF, name="chf", probability=0.8, paths=(to_chf,), model_id="hgt-test"
    )
    hf = Diagnosis(concept_id=HF, name="hf", probability=0.3, paths=(to_hf,), model_id="hgt-test")
    other = Diagnosis(concept_id=HF, name="hf", probability=0.6, paths=(), model_id="other")
    kg.save_predictions("P001", [chf, hf])
    kg.save_predictions("P001", [other])
    first = _explained(kg)
    assert [row[0] for row in first] == [CHF, CHF, CHF, HF, HF]
    stamped = {s.diagnosis.concept_id: s.created for s in _of_model(kg, "hgt-test")}
    time.sleep(1.1)  # ``created`` is kept to the second
    kg.save_predictions("P001", [chf, hf])  # the same again
    assert _explained(kg) == first
    again = {s.diagnosis.concept_id: s.created for s in _of_model(kg, "hgt-test")}
    assert again.keys() == stamped.keys() == {CHF, HF}
    assert all(again[c] > stamped[c] for c in again)  # equal rows kept, with the new stamp
    moved = hf.model_copy(update={"probability": 0.9})  # now ranked first
    kg.save_predictions("P001", [chf, moved])
    assert _explained(kg) == (
        (HF, 0.9, 1, CARDIO, 1),
        (HF, 0.9, 1, HF, 2),
        (CHF, 0.8, 2, CARDIO, 1),
        (CHF, 0.8, 2, EDEMA, 2),
        (CHF, 0.8, 2, CHF, 3),
    )
    kg.save_predictions("P001", [chf])  # HF is no longer predicted
    assert [row[:3] for row in _explained(kg)] == [(CHF, 0.8, 1)] * 3
    assert {s.diagnosis.model_id for s in kg.get_predictions("P001")} == {"hgt-test", "other"}
    assert kg.counts().nodes["Prediction"] == 2
    _linked_counts_its_edges(kg)


def test_an_unchanged_prediction_links_a_path_concept_stored_since(kg):
    kg.upsert_patient(_patient())
    late = "UMLS:C0000005"
    path = ExplanationPath(
        nodes=("P001", CARDIO, late, CHF), relations=("HAS_FINDING",) * 3, score=0.5
    )
    chf = Diagnosis(concept_id=CHF, name="chf", probability=0.8, paths=(path,), model_id="m")
    kg.save_predictions("P001", [chf])
    assert [row[3] for row in _explained(kg, "m")] == [CARDIO, CHF]
    kg.upsert_concepts([Concept(id=late, name="late finding", kind="finding")])
    kg.save_predictions("P001", [chf])
    assert [row[3] for row in _explained(kg, "m")] == [CARDIO, late, CHF]
    _linked_counts_its_edges(kg)


def test_delete_patient(kg):
    kg.upsert_patient(_patient())
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
    kg.upsert_patient(_patient())
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
