"""The diagnosis input says which report sections it read (issue 12, item 5): ``Engine.train``
leaves out the impression by default, saves the selection with the run, diagnoses with it and
names it on every diagnosis, stored ones included."""

from __future__ import annotations

import json

import pytest

from api.engine import Engine
from data.cohort import load_cohort
from gnn.reasoning.patients import chest_config
from graph.errors import InputError
from graph.neo4j_export import stored_predictions
from graph.records import SectionSelection, TextSpan
from graph.sections import ALL_SECTIONS, FEATURE_SECTIONS
from graph.subgraph import patient_subgraph


@pytest.fixture()
def engine(store):
    import torch

    torch.set_num_threads(1)
    engine = Engine(store=store)
    engine.build_seed_kg()
    cases = load_cohort()
    engine.ingest(
        [c.patient.model_copy(update={"findings": c.gold_findings}) for c in cases], extract=False
    )
    return engine


def _tiny(engine):
    return chest_config(
        engine.knowledge("chest").num_diseases, epochs=2, joint_epochs=1, no_kg_epochs=2
    )


def _impression_concepts(patient) -> set[str]:
    return {
        f.concept_id
        for f in patient.findings
        if isinstance(f.provenance, TextSpan) and f.provenance.section == "impression"
    }


def test_training_leaves_out_the_impression_and_diagnoses_say_so(engine, tmp_path):
    result = engine.train(config=_tiny(engine), save_to=tmp_path / "model")
    assert result.sections == FEATURE_SECTIONS
    saved = json.loads((tmp_path / "model" / "config.json").read_text())
    assert saved["sections"]["exclude"] == ["impression"]

    # a concept read only in a patient's impression links it to nothing in the model's input
    for patient_id in engine.store.patient_ids():
        patient = engine.store.get_patient(patient_id)
        elsewhere = {
            f.concept_id
            for f in patient.findings
            if not (isinstance(f.provenance, TextSpan) and f.provenance.section == "impression")
        }
        linked = {
            c for ids in patient_subgraph(engine.store, patient_id).edges.values() for c in ids
        }
        assert not (_impression_concepts(patient) - elsewhere) & linked

    patient_id = result.splits["test"][0]
    diagnoses = engine.diagnose(patient_id, top_k=2)
    assert {d.input_sections for d in diagnoses} == {FEATURE_SECTIONS}
    assert {d.input_sections for d in stored_predictions(engine.store, patient_id)} == {
        FEATURE_SECTIONS
    }
    engine.load_model(tmp_path / "model")
    assert engine.result.sections == FEATURE_SECTIONS


def test_a_chosen_selection_is_kept_and_a_misspelt_one_refused(engine, tmp_path):
    with pytest.raises(InputError, match="impresion"):
        engine.train(config=_tiny(engine), sections="-impresion")
    result = engine.train(config=_tiny(engine), sections="all", save_to=tmp_path / "all")
    assert result.sections == ALL_SECTIONS
    patient_id = result.splits["test"][0]
    assert {d.input_sections for d in engine.diagnose(patient_id, top_k=1)} == {ALL_SECTIONS}
    assert engine.load_model(tmp_path / "all").sections == ALL_SECTIONS
    only = engine.train(config=_tiny(engine), sections="findings,indication")
    assert only.sections == SectionSelection(include=("findings", "indication"), unknown=False)
