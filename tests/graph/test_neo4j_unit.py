"""Unit tests of the Neo4j backend's write path against a recording fake driver (no server).

What is checked: constraints up front, ``UNWIND $rows`` batches sorted by key inside managed
write transactions, replay safety under the driver's retries. The read and query paths are in
``test_neo4j_reads.py``.
"""

from __future__ import annotations

import re

import pytest

from graph.errors import StoreError
from graph.records import (
    Assertion,
    Diagnosis,
    ExplanationPath,
    Finding,
    Patient,
    Polarity,
    Relation,
    Report,
    TextSpan,
)
from graph.schema import NODE_LABELS
from graph.settings import Settings
from graph.stores import neo4j_cypher as cypher
from graph.stores.neo4j import Neo4jStore, batched_rows
from tests.graph.neo4j_fakes import FakeDriver, concepts, make_store


def test_constraints_and_indexes_created_on_connect() -> None:
    driver = FakeDriver()
    make_store(driver)
    setup = [c.statement for c in driver.statements("execute_query")]
    for label in NODE_LABELS:
        assert any(f"FOR (n:{label}) REQUIRE n.id IS UNIQUE" in s for s in setup), (
            f"no uniqueness constraint for {label}"
        )
    assert all("IF NOT EXISTS" in s for s in setup)
    assert any("ON (n.kind)" in s for s in setup)


def test_unreachable_server_raises_store_error_naming_the_setting() -> None:
    driver = FakeDriver(reachable=False)
    with pytest.raises(StoreError, match="KGDX_NEO4J_URI"):
        make_store(driver)


def test_driver_built_from_settings_with_retry_time(monkeypatch) -> None:
    import neo4j

    seen = {}

    def fake_driver(uri, **kwargs):
        seen.update(uri=uri, **kwargs)
        return FakeDriver()

    monkeypatch.setattr(neo4j.GraphDatabase, "driver", fake_driver)
    settings = Settings(neo4j_uri="neo4j://db:7687", neo4j_user="u", neo4j_password="p")
    Neo4jStore(settings, retry_time_s=12.5)
    assert seen == {
        "uri": "neo4j://db:7687",
        "auth": ("u", "p"),
        "max_transaction_retry_time": 12.5,
    }


def test_batched_rows_sorts_by_key_and_cuts_batches() -> None:
    rows = [{"id": x} for x in ["c", "a", "e", "b", "d"]]
    batches = batched_rows(rows, ("id",), 2)
    assert [[r["id"] for r in b] for b in batches] == [["a", "b"], ["c", "d"], ["e"]]
    with pytest.raises(ValueError):
        batched_rows(rows, ("id",), 0)


def test_concepts_written_in_sorted_unwind_batches_in_one_write_transaction() -> None:
    driver = FakeDriver()
    store = make_store(driver, batch_size=3)
    assert store.upsert_concepts(concepts(7)) == 7
    writes = driver.statements("execute_write")
    assert [len(c.params["rows"]) for c in writes] == [3, 3, 1]
    ids = [row["id"] for c in writes for row in c.params["rows"]]
    assert ids == sorted(ids) and len(ids) == 7
    assert all(c.statement == cypher.UPSERT_CONCEPTS for c in writes)
    assert all(c.access_mode == "WRITE" for c in writes)
    assert "UNWIND $rows" in cypher.UPSERT_CONCEPTS and "MERGE (c:Concept {id: row.id})" in (
        cypher.UPSERT_CONCEPTS
    )
    # One store batch is one transaction: a single write session for all three UNWINDs.
    assert sum(1 for s in driver.sessions if s.access_mode == "WRITE") == 1
    # Values are parameters, never text in the statement.
    assert not any("DOID:" in c.statement for c in driver.calls)


def test_relations_grouped_by_schema_type_and_sorted_by_endpoints() -> None:
    driver = FakeDriver()
    store = make_store(driver, batch_size=10)
    relations = [
        Relation(src="DOID:2", dst="HP:1", type="HAS_PHENOTYPE", weight=0.5),
        Relation(src="DOID:1", dst="DOID:0", type="IS_A"),
        Relation(
            src="DOID:1",
            dst="HP:1",
            type="HAS_PHENOTYPE",
            sources=("HPO:2025-01-16",),
            attributes={"frequency": "HP:0040283"},
        ),
    ]
    store.upsert_relations(relations)
    writes = driver.statements("execute_write")
    assert [re.search(r"MERGE \(a\)-\[r:(\w+)\]->\(b\)", c.statement).group(1) for c in writes] == [
        "HAS_PHENOTYPE",
        "IS_A",
    ]
    phenotype_rows = writes[0].params["rows"]
    assert [(r["src"], r["dst"]) for r in phenotype_rows] == [
        ("DOID:1", "HP:1"),
        ("DOID:2", "HP:1"),
    ]
    assert phenotype_rows[0]["attributes"] == '{"frequency": "HP:0040283"}'
    # sources are JSON text, as in the embedded store (graph.schema.encode_sources)
    assert [r["sources"] for r in phenotype_rows] == ['["HPO:2025-01-16"]', ""]
    # The missing-endpoint check ran first, as a read.
    assert driver.calls[len(driver.statements("execute_query"))].access_mode == "READ"


def test_missing_endpoint_stops_before_any_write() -> None:
    def responder(statement, params):
        if statement == cypher.MISSING_CONCEPTS:
            return [{"id": "DOID:404"}]
        return []

    driver = FakeDriver(responder=responder)
    store = make_store(driver)
    from graph.errors import UnknownConceptError

    with pytest.raises(UnknownConceptError, match="DOID:404"):
        store.upsert_relations([Relation(src="DOID:1", dst="DOID:404", type="IS_A")])
    assert driver.statements("execute_write") == []


def patient() -> Patient:
    text = "No pleural effusion. Cardiomegaly."
    return Patient(
        id="P1",
        reports=(Report(id="r1", text=text),),
        findings=(
            Finding(
                concept_id="UMLS:C0032227",
                assertion=Assertion(polarity=Polarity.ABSENT),
                provenance=TextSpan(doc_id="r1", start=3, end=19, text="pleural effusion"),
            ),
            Finding(
                concept_id="UMLS:C0018800",
                provenance=TextSpan(doc_id="r1", start=21, end=33, text="Cardiomegaly"),
            ),
        ),
        labels=("DOID:6000",),
    )


def test_patient_write_is_one_transaction_and_safe_to_replay() -> None:
    driver = FakeDriver(transient_failures=1)
    store = make_store(driver)
    store.upsert_patient(patient())
    attempts = {}
    for call in driver.statements("execute_write"):
        attempts.setdefault(call.attempt, []).append((call.statement, call.params))
    assert set(attempts) == {1, 2}
    assert attempts[1] == attempts[2], "a retried transaction must send the same statements"
    statements = [s for s, _ in attempts[2]]
    assert statements[0].startswith(
        "MATCH (:Patient {id: $pid})-[:HAS_REPORT]"
    )  # old parts go first
    mentions = next(p for s, p in attempts[2] if "MENTIONS" in s and "CREATE" in s)
    # Sorted by (doc, concept, start) whatever the order of the findings in the record.
    assert [r["concept"] for r in mentions["rows"]] == ["UMLS:C0018800", "UMLS:C0032227"]
    assert {r["doc"] for r in mentions["rows"]} == {"P1/r1"}
    findings = next(p for s, p in attempts[2] if "HAS_FINDING {" in s)
    assert {(r["concept"], r["polarity"]) for r in findings["rows"]} == {
        ("UMLS:C0018800", "present"),
        ("UMLS:C0032227", "absent"),
    }


def test_predictions_replace_per_model_and_link_path_concepts() -> None:
    driver = FakeDriver()
    store = make_store(driver)

    def responder(statement, params):
        if "RETURN p.attributes" in statement:
            return [{"attributes": "{}"}]
        return []

    driver.responder = responder
    path = ExplanationPath(
        nodes=("P1", "UMLS:C0018800", "DOID:6000"),
        relations=("HAS_FINDING", "FINDING_OF"),
        score=0.7,
    )
    store.save_predictions(
        "P1",
        [
            Diagnosis(
                concept_id="DOID:6000",
                name="heart failure",
                probability=0.8,
                paths=(path,),
                model_id="hgt",
            )
        ],
    )
    writes = driver.statements("execute_write")
    assert "DETACH DELETE" in writes[0].statement and writes[0].params["models"] == ["hgt"]
    steps = writes[-1].params["rows"]
    assert [(s["concept"], s["step"]) for s in steps] == [("UMLS:C0018800", 1), ("DOID:6000", 2)]
    assert writes[1].params["rows"][0]["id"] == "P1/hgt/DOID:6000"


def test_a_read_only_store_creates_no_schema_and_refuses_writes() -> None:
    driver = FakeDriver()
    settings = Settings(neo4j_uri="bolt://fake:7687", neo4j_database="kgdx")
    store = Neo4jStore(settings, driver=driver, read_only=True)
    assert driver.statements("execute_query") == []  # constraints need a write
    with pytest.raises(StoreError, match="read-only"):
        store.upsert_concepts(concepts(2))
    assert driver.statements("execute_write") == []
