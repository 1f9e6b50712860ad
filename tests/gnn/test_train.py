"""The reasoner on stored patients: the chest KG view, training with baselines on one split,
and a run folder that saves and loads itself (the engine's config.json written last)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gnn.reasoning.knowledge import PhenotypeKG
from gnn.reasoning.patients import (
    ENGINE_FILE,
    ReasoningRun,
    chest_config,
    fit_config,
    infer_domain,
    resolved_patients,
)
from gnn.reasoning.pipeline import TrainConfig
from graph.errors import ConfigError, InputError, ModelError, StoreError

PNEUMONIA, CONSOLIDATION, COUGH = "UMLS:C0032285", "UMLS:C0521530", "UMLS:C0010200"
BACTERIAL_PNEUMONIA = "UMLS:C0004626"


def test_the_chest_kg_is_the_seed_diseases_and_their_findings(chest_kg, seed_kg):
    concepts, relations = seed_kg
    diseases = {c.id for c in concepts if c.kind == "disease"}
    annotated = {r.src for r in relations if r.type in ("HAS_FINDING", "HAS_SYMPTOM")}
    assert set(chest_kg.disease_ids) == diseases & annotated
    assert chest_kg.domain == "chest" and chest_kg.num_diseases == len(diseases & annotated)
    d = chest_kg.resolve_disease(PNEUMONIA)
    terms = set(np.asarray(chest_kg.term_ids)[chest_kg.annotations.getrow(d).indices])
    assert {CONSOLIDATION, COUGH} <= terms
    assert not set(chest_kg.disease_ids) & set(chest_kg.term_ids)
    # IS_A among the seed's findings and symptoms is the DAG
    seed_is_a = {
        (r.src, r.dst)
        for r in relations
        if r.type == "IS_A" and r.src in chest_kg.term_ids and r.dst in chest_kg.term_ids
    }
    assert chest_kg.parents.nnz == len(seed_is_a) > 0
    assert chest_kg.content_hash and chest_kg.sources


def test_a_kg_domain_must_exist_in_the_store(store):
    with pytest.raises(StoreError, match="chest seed"):
        PhenotypeKG.from_store(store, domain="chest")
    with pytest.raises(ConfigError, match="unknown KG domain"):
        PhenotypeKG.from_store(store, domain="cardiology")


def test_settings_fit_a_small_candidate_set():
    config = fit_config(TrainConfig(), 21)
    assert config.hard_negatives + config.random_negatives <= 20
    assert chest_config(21).hard_negatives + chest_config(21).random_negatives <= 20
    assert infer_domain(["OMIM:143100"]) == "rare" and infer_domain([PNEUMONIA]) == "chest"


def test_training_evaluates_every_method_on_the_held_out_part(chest_run):
    splits = chest_run.splits
    assert set(splits) == {"train", "val", "test"}
    assert not set(splits["train"]) & set(splits["test"])
    assert len(splits["test"]) >= 10
    test = chest_run.evaluation["test"]
    assert set(test) == {"kgdx", "phenomizer", "no_kg", "knn"}
    assert {"test", "phenomizer_test", "knn_test", "no_kg_test"} <= set(chest_run.metrics)
    # 21 candidates: chance top-1 is about 0.05; the KG-scored model is far above it
    assert chest_run.metrics["test"]["top1"] > 0.4
    assert chest_run.metrics["test"]["n"] == len(splits["test"])
    assert chest_run.model_id == "kgdx-chest-sage-0"
    assert chest_run.config["encoder"] == "sage"


def test_a_run_saves_and_loads_itself(chest_run, chest_store, tmp_path):
    chest_run.save(tmp_path / "run")
    files = {p.name for p in (tmp_path / "run").iterdir()}
    assert {"card.json", ENGINE_FILE, "kgdx.safetensors", "memory.json"} <= files
    engine = json.loads((tmp_path / "run" / ENGINE_FILE).read_text())
    assert engine["domain"] == "chest" and engine["sections"]["exclude"] == ["impression"]
    # written last: a watcher of config.json never sees it older than the weights
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "run").iterdir()}
    assert stamps[ENGINE_FILE] >= max(stamps.values())
    loaded = ReasoningRun.load(tmp_path / "run", chest_store)
    assert (loaded.domain, loaded.model_id, loaded.sections) == (
        "chest",
        chest_run.model_id,
        chest_run.sections,
    )
    assert loaded.splits == chest_run.splits
    assert loaded.metrics["test"] == pytest.approx(chest_run.metrics["test"])
    patient = resolved_patients(chest_run, [_subgraph(chest_store, chest_run.splits["test"][0])])[0]
    assert np.array_equal(
        loaded.reasoner.scores("kgdx", patient), chest_run.reasoner.scores("kgdx", patient)
    )


def test_a_damaged_or_missing_run_is_refused(chest_store, chest_run, tmp_path):
    with pytest.raises(ModelError, match="holds no trained run"):
        ReasoningRun.load(tmp_path / "nothing", chest_store)
    chest_run.save(tmp_path / "run")
    (tmp_path / "run" / ENGINE_FILE).write_text("{not json")
    with pytest.raises(ModelError, match="damaged"):
        ReasoningRun.load(tmp_path / "run", chest_store)


def test_training_needs_labelled_patients_of_the_kg(chest_kg, chest_store):
    from gnn.reasoning.patients import train_on_subgraphs
    from graph.subgraph import PatientSubgraph

    unlabelled = [
        PatientSubgraph.from_patient(chest_store.get_patient(pid)).__class__(
            patient_id=pid, edges={}, findings={}, concepts={}
        )
        for pid in chest_store.patient_ids()[:3]
    ]
    with pytest.raises(InputError, match="known diagnosis"):
        train_on_subgraphs(unlabelled, kg=chest_kg)


def _subgraph(store, patient_id):
    from graph.subgraph import patient_subgraph

    return patient_subgraph(store, patient_id)
