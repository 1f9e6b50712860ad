"""``Engine`` end to end on the embedded store: seed KG, ingest, train, diagnose, predictions."""

from __future__ import annotations

import pytest

from api.engine import Engine
from data.cohort import load_cohort
from graph.errors import InputError, ModelError
from kg_loaders.seed import read_seed_concepts, read_seed_relations


@pytest.fixture(autouse=True)
def _one_torch_thread():
    from gnn.train import cpu_threads

    with cpu_threads(1):
        yield


def test_engine_end_to_end(store, tmp_path):
    engine = Engine(store=store)
    counts = engine.build_seed_kg()
    seed = (len(read_seed_concepts()), len(read_seed_relations()))
    assert (counts.nodes["Concept"], counts.total_relations) == seed
    with pytest.raises(ModelError, match="no model"):
        engine.diagnose("P001")

    cases = load_cohort()
    # two patients through the real text extractor, the rest with the generator's gold findings
    extracted = engine.ingest(patients=[c.patient for c in cases[:2]])
    for case, patient in zip(cases[:2], extracted, strict=True):
        assert patient.findings
        gold = {(f.concept_id, f.assertion.polarity) for f in case.gold_findings}
        found = {(f.concept_id, f.assertion.polarity) for f in patient.findings}
        assert len(gold & found) >= len(gold) // 2
    seen = []
    engine.ingest(
        patients=[c.patient.model_copy(update={"findings": c.gold_findings}) for c in cases[2:]],
        extract=False,
        progress=seen.append,
    )
    assert len(seen) == 78 and len(store.patient_ids()) == 80

    result = engine.train(model="rgcn", epochs=80, seed=0, save_to=tmp_path / "model")
    assert {"test", "baseline_test"} <= set(result.metrics)
    assert result.metrics["test"]["auroc"] > 0.6
    assert (tmp_path / "model" / "config.json").is_file()

    patient_id = result.splits["test"][0]
    diagnoses = engine.diagnose(patient_id, top_k=3)
    assert len(diagnoses) == 3
    assert all(d.model_id == result.model_id for d in diagnoses)
    stored = store.query(
        "MATCH (p:Patient {id: $p})-[:HAS_PREDICTION]->(x:Prediction) "
        "RETURN x.concept_id, x.probability ORDER BY x.probability DESC",
        {"p": patient_id},
    )
    assert [row[0] for row in stored.rows] == [d.concept_id for d in diagnoses]
    assert stored.rows[0][1] == pytest.approx(diagnoses[0].probability)

    # a saved model gives the same diagnoses in a fresh engine on the same store
    other = Engine(store=store)
    other.load_model(tmp_path / "model")
    again = other.diagnose(patient_id, top_k=3)
    assert [d.concept_id for d in again] == [d.concept_id for d in diagnoses]
    assert [d.probability for d in again] == pytest.approx([d.probability for d in diagnoses])
    with pytest.raises(InputError, match="unknown patient"):
        engine.diagnose("NOBODY")

    # a patient stored after training is diagnosed too (the graph is rebuilt to include it)
    twin = store.get_patient(patient_id).model_copy(update={"id": "NEW1", "labels": ()})
    engine.ingest([twin], extract=False)
    twin_diagnoses = engine.diagnose("NEW1", top_k=3)
    assert [d.concept_id for d in twin_diagnoses][0] == diagnoses[0].concept_id


def test_training_needs_patients(store):
    engine = Engine(store=store)
    engine.build_seed_kg()
    with pytest.raises(InputError, match="no stored patients"):
        engine.train()
