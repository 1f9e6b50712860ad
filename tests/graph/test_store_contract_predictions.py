"""Store contract: predictions are saved, replaced and linked the same on every backend (the
``kg`` fixture: ``tests/graph/store_contract.py``)."""

from __future__ import annotations

import time

import pytest

from graph.errors import UnknownConceptError
from graph.records import Concept, Diagnosis, ExplanationPath
from tests.graph.store_contract import CARDIO, CHF, EDEMA, HF, contract_patient


def test_predictions_are_stored_and_replaced(kg):
    kg.upsert_patient(contract_patient())
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
    kg.upsert_patient(contract_patient())
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
    kg.upsert_patient(contract_patient())
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
