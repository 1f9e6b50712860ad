"""The embedded store's memory of its patients' predictions (graph/stores/prediction_memory.py):
a refresh of unchanged predictions reads nothing back, and what it answers is always what the
database holds, after rollbacks and other writes too."""

from __future__ import annotations

import pytest

from graph.errors import StoreError
from graph.records import Concept, Diagnosis, ExplanationPath, Patient, Relation
from graph.stores import ladybug_cypher as cy
from tests.graph.save_clock import frozen_saves


@pytest.fixture
def clock(monkeypatch):
    """The saves' clock: every save is stamped ``clock.stamp``."""
    return frozen_saves(monkeypatch, "2026-12-07T00:00:00+00:00")


@pytest.fixture
def seeded(store, clock):
    store.upsert_concepts(
        Concept(id=f"HP:{i:07d}", name=f"term {i}", kind="finding") for i in range(3)
    )
    store.upsert_relations(
        [Relation(src="HP:0000002", dst="HP:0000001", type="IS_A", sources=("test",))]
    )
    for pid in ("P1", "P2"):
        store.upsert_patient(Patient(id=pid))
    return store


def _made(patient: str, probability: float = 0.7, model: str = "m") -> list[Diagnosis]:
    path = ExplanationPath(
        nodes=(patient, "HP:0000001", "HP:0000002"), relations=("HAS_FINDING", "IS_A"), score=0.5
    )
    return [
        Diagnosis(concept_id="HP:0000002", name="t", probability=probability, paths=(path,),
                  model_id=model),
        Diagnosis(concept_id="HP:0000001", name="t", probability=0.2, model_id=model),
    ]  # fmt: skip


@pytest.fixture
def statements(seeded, monkeypatch):
    """Every statement the store sends to the database (the real one) from now on."""
    seen: list[str] = []
    real = seeded.connection.execute

    def execute(cypher, params=None):
        seen.append(cypher)
        return real(cypher, params or {})

    monkeypatch.setattr(seeded.connection, "execute", execute)
    return seen


def _in_database(store, patient: str) -> list:
    """The patient's predictions as the database holds them, read past the memory."""
    store._memory.forget_all()
    return store.get_predictions(patient)


def test_a_refresh_of_unchanged_predictions_reads_nothing_back(seeded, statements, clock):
    store = seeded
    store.save_predictions("P1", _made("P1"))
    first = store.get_predictions("P1")
    statements.clear()
    store.save_predictions("P1", _made("P1"))  # the same second: the rows are as stored
    assert store.has_patient("P1") and store.get_predictions("P1") == first
    assert statements == []
    clock.stamp = "2026-12-07T00:00:05+00:00"
    store.save_predictions("P1", _made("P1"))  # a later second: the stamps alone are written
    assert [s for s in statements if s not in ("BEGIN TRANSACTION", "COMMIT")] == [
        cy.RESTAMP_PREDICTIONS
    ]
    remembered = store.get_predictions("P1")
    assert {s.created for s in remembered} == {clock.stamp}
    assert remembered == _in_database(store, "P1")
    assert [(s.diagnosis.concept_id, s.diagnosis.name, s.rank) for s in remembered] == [
        ("HP:0000002", "term 2", 1),  # the stored concept's name, as the read-back gave it
        ("HP:0000001", "term 1", 2),
    ]


def test_changed_rows_are_read_back_from_the_database(seeded, statements):
    store = seeded
    store.save_predictions("P1", _made("P1"))
    store.save_predictions("P1", _made("P1", model="other"))  # another model's rows beside
    store.get_predictions("P1")
    statements.clear()
    store.save_predictions("P1", _made("P1", probability=0.6))
    assert cy.DELETE_PREDICTIONS in statements and cy.CREATE_PREDICTIONS in statements
    now = store.get_predictions("P1")
    assert cy.PREDICTION_ROWS in statements  # the new rows were read back, not assumed
    assert [(s.diagnosis.model_id, s.diagnosis.probability) for s in now] == [
        ("m", 0.6),
        ("m", 0.2),
        ("other", 0.7),
        ("other", 0.2),
    ]
    assert now == _in_database(store, "P1")


@pytest.mark.parametrize("failure", ["exception", "failed read"])
def test_a_rolled_back_commit_group_leaves_no_memory_of_its_writes(seeded, failure, clock):
    store = seeded
    store.save_predictions("P1", _made("P1"))
    before = store.get_predictions("P1")
    clock.stamp = "2026-12-07T00:01:00+00:00"
    with pytest.raises((ValueError, StoreError)), store.commit_group() as group:
        store.save_predictions("P1", _made("P1"))  # re-stamped, remembered so in the group
        assert {s.created for s in store.get_predictions("P1")} == {clock.stamp}
        if failure == "exception":  # the caller failed: the group rolls back
            raise ValueError("the caller failed")
        store._rows("MATCH (x:Nowhere) RETURN x")  # LadybugDB ends the transaction
    assert group.broken
    assert store.get_predictions("P1") == before == _in_database(store, "P1")


def test_other_writes_make_the_store_read_again(seeded, statements):
    store = seeded
    store.save_predictions("P1", _made("P1"))
    assert store.has_patient("P1") and store.get_predictions("P1")
    store.delete_patient("P1")
    assert not store.has_patient("P1") and store.get_predictions("P1") == []
    store.upsert_patient(Patient(id="P1"))
    assert store.has_patient("P1") and store.get_predictions("P1") == []
    # a path concept stored since the last save changes what its rows link: rewritten
    store.save_predictions("P2", [_made("P2")[0].model_copy(update={"paths": (
        ExplanationPath(nodes=("P2", "HP:0000009"), relations=("HAS_FINDING",), score=0.1),
    )})])  # fmt: skip
    store.upsert_concepts([Concept(id="HP:0000009", name="late", kind="finding")])
    statements.clear()
    store.save_predictions("P2", [_made("P2")[0].model_copy(update={"paths": (
        ExplanationPath(nodes=("P2", "HP:0000009"), relations=("HAS_FINDING",), score=0.1),
    )})])  # fmt: skip
    assert cy.CREATE_EXPLAINED_BY in statements
    linked = store.connection.execute(
        "MATCH (x:Prediction)-[:EXPLAINED_BY]->(c:Concept) RETURN x.id, c.id"
    ).get_all()
    assert linked == [["P2/m/HP:0000002", "HP:0000009"]]


def test_the_memory_keeps_a_bounded_number_of_patients():
    from graph.stores.prediction_memory import PredictionMemory

    memory = PredictionMemory(patients=2, ids=3)
    for pid in ("A", "B", "C"):
        memory.remember(pid, ())
    assert memory.predictions("A") is None and memory.predictions("C") == ()
    for pid in ("A", "B", "C", "D"):
        memory.patient_found(pid)
    assert memory.has_patient("D") and not memory.has_patient("A")  # cleared at its bound
    memory.concepts_found({"X:1", "X:2"})
    assert memory.unknown_concepts({"X:1", "X:3"}) == {"X:3"}


def test_a_second_writer_in_the_process_is_refused(seeded, settings):
    """LadybugDB lets one process open a file read-write twice, and the two handles do not see
    each other's writes (nor could the memory of either): the second open is refused."""
    from graph.stores.embedded import EmbeddedStore

    store = seeded
    store.save_predictions("P1", _made("P1"))
    with pytest.raises(StoreError, match="already open for writing in this process"):
        EmbeddedStore(settings)
    assert store.get_predictions("P1") == _in_database(store, "P1")  # the first is intact
    with EmbeddedStore(settings, read_only=True) as reader:  # readers are not refused
        assert reader.has_patient("P1")
    store.close()
    with EmbeddedStore(settings) as again:  # once closed, it opens again
        assert again.has_patient("P1") and again.get_predictions("P1")


def test_a_read_only_store_keeps_nothing_and_refuses_even_an_empty_save(seeded, settings):
    from graph.stores.embedded import EmbeddedStore

    seeded.save_predictions("P1", _made("P1"))
    with EmbeddedStore(settings, read_only=True) as reader:
        assert reader._memory.disabled and reader.get_predictions("P1")
        with pytest.raises(StoreError, match="read-only"):
            reader.save_predictions("P1", _made("P1"))  # equal rows, this second: no write
