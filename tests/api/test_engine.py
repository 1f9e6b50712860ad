"""``Engine`` end to end on the embedded store: seed KG, ingest, train the inductive reasoner,
diagnose stored and unstored patients, explain one disease, predictions stored; a patient's
scores do not depend on which other patients are stored."""

from __future__ import annotations

import pytest

from api.engine import Engine
from data.cohort import load_cohort
from gnn.reasoning.patients import chest_config
from graph.errors import ConfigError, InputError, ModelError
from graph.records import Patient, Report
from graph.settings import Settings
from graph.subgraph import patient_from_terms
from kg_loaders.seed import read_seed_concepts, read_seed_relations

PNEUMONIA = "UMLS:C0032285"


def _quick(engine: Engine):
    return chest_config(engine.knowledge("chest").num_diseases, epochs=8, joint_epochs=2)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An engine over a store with the seed KG and the 80 cohort patients (gold findings; two
    through the real extractor), trained and saved."""
    import torch

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("engine")
    settings = Settings(home=folder / "home", db_path=folder / "kg.lbug")
    engine = Engine(store="embedded", settings=settings)
    engine.build_seed_kg()
    cases = load_cohort()
    engine.ingest(patients=[c.patient for c in cases[:2]])
    engine.ingest(
        [c.patient.model_copy(update={"findings": c.gold_findings}) for c in cases[2:]],
        extract=False,
    )
    result = engine.train(config=_quick(engine), seed=0, save_to=folder / "run")
    yield engine, result, folder
    engine.close()


def test_seed_kg_ingest_and_no_model_yet(store):
    engine = Engine(store=store)
    counts = engine.build_seed_kg()
    seed = (len(read_seed_concepts()), len(read_seed_relations()))
    assert (counts.nodes["Concept"], counts.total_relations) == seed
    with pytest.raises(ModelError, match="no model"):
        engine.diagnose("P001")
    with pytest.raises(InputError, match="no stored patients"):
        engine.train()
    cases = load_cohort()
    extracted = engine.ingest(patients=[c.patient for c in cases[:2]])
    for case, patient in zip(cases[:2], extracted, strict=True):
        gold = {(f.concept_id, f.assertion.polarity) for f in case.gold_findings}
        found = {(f.concept_id, f.assertion.polarity) for f in patient.findings}
        assert len(gold & found) >= len(gold) // 2
    with pytest.raises(ConfigError, match="unknown KG domain"):
        engine.train(domain="cardiology")


def test_train_diagnose_and_store_predictions(trained):
    engine, result, folder = trained
    assert result.domain == "chest" and result.model_id == "kgdx-chest-sage-0"
    assert {"test", "phenomizer_test"} <= set(result.metrics)
    assert (folder / "run" / "config.json").is_file() and (folder / "run" / "card.json").is_file()
    patient_id = result.splits["test"][0]
    diagnoses = engine.diagnose(patient_id, top_k=3)
    assert len(diagnoses) == 3 and all(d.model_id == result.model_id for d in diagnoses)
    assert any(d.paths for d in diagnoses)
    stored = engine.store.query(
        "MATCH (p:Patient {id: $p})-[:HAS_PREDICTION]->(x:Prediction) "
        "RETURN x.concept_id, x.probability ORDER BY x.probability DESC",
        {"p": patient_id},
    )
    assert [row[0] for row in stored.rows] == [d.concept_id for d in diagnoses]
    assert stored.rows[0][1] == pytest.approx(diagnoses[0].probability)
    assert engine.kg_release.startswith("kgdx-chest-seed:") and "sha256:" in engine.kg_release

    # a saved run gives the same diagnoses in a fresh engine on the same store
    other = Engine(store=engine.store)
    other.load_model(folder / "run")
    again = other.diagnose(patient_id, top_k=3)
    assert [d.concept_id for d in again] == [d.concept_id for d in diagnoses]
    assert [d.probability for d in again] == [d.probability for d in diagnoses]
    assert [d.paths for d in again] == [d.paths for d in diagnoses]
    with pytest.raises(InputError, match="unknown patient"):
        engine.diagnose("NOBODY")


def test_scores_do_not_depend_on_the_other_stored_patients(trained, tmp_path):
    """The inductive property: a patient alone in a store gets exactly the diagnoses it gets
    among all 80, and storing or deleting another patient changes nothing."""
    engine, result, folder = trained
    patient_id = result.splits["test"][1]
    among_all = engine.diagnose(patient_id, top_k=5, paths_per_diagnosis=2)

    alone_settings = Settings(home=tmp_path / "home", db_path=tmp_path / "alone.lbug")
    with Engine(store="embedded", settings=alone_settings) as alone:
        alone.build_seed_kg()
        alone.ingest([engine.store.get_patient(patient_id)], extract=False)
        assert alone.store.patient_ids() == [patient_id]
        alone.load_model(folder / "run")
        by_itself = alone.diagnose(patient_id, top_k=5, paths_per_diagnosis=2)
    assert [d.concept_id for d in by_itself] == [d.concept_id for d in among_all]
    assert [d.probability for d in by_itself] == [d.probability for d in among_all]
    assert [d.paths for d in by_itself] == [d.paths for d in among_all]

    twin = engine.store.get_patient(result.splits["test"][2]).model_copy(update={"id": "NEW1"})
    engine.ingest([twin], extract=False)
    try:
        after = engine.diagnose(patient_id, top_k=5, paths_per_diagnosis=2)
        assert [d.probability for d in after] == [d.probability for d in among_all]
        # a patient stored after training is diagnosed like its twin, without retraining
        assert engine.diagnose("NEW1", top_k=1)[0].concept_id == (
            engine.diagnose(result.splits["test"][2], top_k=1)[0].concept_id
        )
    finally:
        engine.store.delete_patient("NEW1")


def test_diagnose_a_record_that_is_not_stored(trained):
    engine, result, _ = trained
    before = engine.store.patient_ids()
    stored = engine.store.get_patient(result.splits["test"][0])
    record = stored.model_copy(update={"id": "UNSTORED"})
    from_record = engine.diagnose_record(record, extract=False, top_k=3)
    from_store = engine.diagnose(stored.id, top_k=3)
    assert [d.probability for d in from_record] == [d.probability for d in from_store]
    assert {p.nodes[0] for d in from_record for p in d.paths} <= {"UNSTORED"}
    # report text goes through the extractor; nothing is written
    report = Patient(
        id="TEXT",
        reports=(
            Report(id="T1", text="FINDINGS: Right lower lobe consolidation with air bronchograms."),
        ),
    )
    by_text = engine.diagnose_record(report, top_k=3)
    assert by_text and by_text[0].paths and by_text[0].paths[0].nodes[0] == "TEXT"
    assert engine.store.patient_ids() == before
    with pytest.raises(InputError, match="no present or absent finding"):
        engine.diagnose_record(patient_from_terms(["UMLS:C9999999"]))
    # an id that is only an xref of a KG node (HPO's cardiomegaly, node UMLS:C0018800) counts,
    # and the path names the KG node, its evidence the term as given
    by_xref = engine.diagnose_record(patient_from_terms(["HP:0001640"]), top_k=1)
    by_node = engine.diagnose_record(patient_from_terms(["UMLS:C0018800"]), top_k=1)
    assert by_xref[0].probability == by_node[0].probability
    (path,) = [p for p in by_xref[0].paths if p.nodes[1] == "UMLS:C0018800"]
    assert "term HP:0001640" in path.evidence[0] and path.node_names[1] == "cardiomegaly"


def test_explain_one_named_disease(trained):
    engine, result, _ = trained
    patient_id = result.splits["test"][0]
    diagnosis = engine.explain(patient_id, PNEUMONIA, k=2)
    assert diagnosis.concept_id == PNEUMONIA and len(diagnosis.paths) <= 2
    ranked = engine.diagnose(patient_id, top_k=21, paths_per_diagnosis=0)
    assert diagnosis.probability == next(d.probability for d in ranked if d.concept_id == PNEUMONIA)
    terms = patient_from_terms(["HP:0033662", "UMLS:C0521530"])  # air bronchogram, consolidation
    assert engine.explain(terms, PNEUMONIA).paths
    with pytest.raises(InputError, match="not a candidate disease"):
        engine.explain(patient_id, "UMLS:C0018800")  # cardiomegaly is a finding
