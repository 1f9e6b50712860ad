"""The diagnosis input says which report sections it read (issue 12, item 5): ``Engine.train``
leaves out the impression by default, saves the selection with the model, diagnoses with it and
names it on every diagnosis, stored ones included; an older model reads every section."""

from __future__ import annotations

import json

import pytest

from api.engine import Engine
from data.cohort import load_cohort
from graph.errors import InputError
from graph.neo4j_export import stored_predictions
from graph.records import SectionSelection, TextSpan
from graph.sections import ALL_SECTIONS, FEATURE_SECTIONS


@pytest.fixture(autouse=True)
def _one_torch_thread():
    from gnn.train import cpu_threads

    with cpu_threads(1):
        yield


@pytest.fixture()
def engine(store):
    engine = Engine(store=store)
    engine.build_seed_kg()
    cases = load_cohort()
    engine.ingest(
        [c.patient.model_copy(update={"findings": c.gold_findings}) for c in cases], extract=False
    )
    return engine


def _impression_concepts(patient) -> set[str]:
    return {
        f.concept_id
        for f in patient.findings
        if isinstance(f.provenance, TextSpan) and f.provenance.section == "impression"
    }


def test_training_leaves_out_the_impression_and_diagnoses_say_so(engine, tmp_path):
    result = engine.train(epochs=3, hidden=8, baseline=False, save_to=tmp_path / "model")
    assert result.sections == FEATURE_SECTIONS
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["input_sections"]["exclude"] == ["impression"]
    assert saved["input_sections"]["description"] == FEATURE_SECTIONS.describe()

    graph = engine.patient_graph()
    assert graph.sections == FEATURE_SECTIONS
    # a concept read only in a patient's impression links it to nothing in the model's input
    for patient_id in engine.store.patient_ids():
        patient = engine.store.get_patient(patient_id)
        elsewhere = {
            f.concept_id
            for f in patient.findings
            if not (isinstance(f.provenance, TextSpan) and f.provenance.section == "impression")
        }
        for concept_id in _impression_concepts(patient) - elsewhere:
            assert concept_id not in graph.findings[patient_id]

    patient_id = result.splits["test"][0]
    diagnoses = engine.diagnose(patient_id, top_k=2)
    assert {d.input_sections for d in diagnoses} == {FEATURE_SECTIONS}
    assert {d.input_sections for d in stored_predictions(engine.store, patient_id)} == {
        FEATURE_SECTIONS
    }


def test_a_chosen_selection_is_kept_and_a_misspelt_one_refused(engine, tmp_path):
    with pytest.raises(InputError, match="impresion"):
        engine.train(epochs=1, baseline=False, sections="-impresion")
    result = engine.train(epochs=2, hidden=8, baseline=False, sections="all")
    assert result.sections == ALL_SECTIONS
    assert engine.patient_graph().sections == ALL_SECTIONS
    only = engine.train(epochs=2, hidden=8, baseline=False, sections="findings,indication")
    assert only.sections == SectionSelection(include=("findings", "indication"), unknown=False)


def test_a_model_saved_before_sections_were_kept_reads_every_section(engine, tmp_path):
    from gnn.train import TrainResult

    engine.train(epochs=2, hidden=8, baseline=False, save_to=tmp_path / "model")
    config = tmp_path / "model" / "config.json"
    payload = json.loads(config.read_text())
    del payload["input_sections"]
    config.write_text(json.dumps(payload))
    old = TrainResult.load(tmp_path / "model")
    assert old.sections == ALL_SECTIONS
    engine.load_model(tmp_path / "model")
    patient_id = engine.store.patient_ids()[0]
    assert {d.input_sections for d in engine.diagnose(patient_id, top_k=1)} == {ALL_SECTIONS}


def test_a_graph_of_other_sections_is_refused_by_the_model(engine):
    from graph.errors import ModelError
    from graph.subgraph import patient_graph_from_store

    result = engine.train(epochs=2, hidden=8, baseline=False)
    other = patient_graph_from_store(
        engine.store, vocabulary=result.vocabulary, sections=ALL_SECTIONS
    )
    with pytest.raises(ModelError, match="trained on"):
        result.predict_proba(other)
