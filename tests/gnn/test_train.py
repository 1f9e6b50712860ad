"""Training beats chance on the demo cohort; results save and load; evaluator and baseline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gnn.baseline import finding_bag, logistic_baseline
from gnn.dataset import candidate_diagnoses, patient_labels, stratified_split
from gnn.evaluate import Evaluator, expected_calibration_error
from gnn.train import TrainResult, train
from graph.errors import InputError, ModelError


def test_training_beats_chance_on_held_out_patients(trained):
    test = trained.metrics["test"]
    n_candidates = len(trained.candidate_ids)
    assert n_candidates == 10
    assert test["auroc"] > 0.7  # chance is 0.5
    assert test["top1_accuracy"] > 2 / n_candidates  # chance is 1 / 10
    assert trained.metrics["train"]["auroc"] > test["auroc"] - 0.05
    assert trained.history[-1]["train_loss"] < trained.history[0]["train_loss"]
    assert set(trained.splits["test"]).isdisjoint(trained.splits["train"])
    assert 0.05 <= trained.temperature <= 20


def test_baseline_on_the_same_split(trained, cohort_graph, cohort_patients):
    labels = patient_labels(cohort_patients, cohort_graph, trained.candidate_ids)
    position = {pid: i for i, pid in enumerate(cohort_graph.patient_ids)}
    masks = {}
    for name, members in trained.splits.items():
        masks[name] = torch.zeros(len(position), dtype=torch.bool)
        masks[name][[position[m] for m in members]] = True
    metrics = logistic_baseline(cohort_graph, labels, masks)
    assert metrics["test"]["auroc"] > 0.7
    bag = finding_bag(cohort_graph)
    # present and absent findings of a concept are different columns
    assert bag.shape[0] == 80 and bag.sum() == sum(
        cohort_graph.data[et].num_edges for et in cohort_graph.data.edge_types if et[0] == "patient"
    )


def test_result_saves_and_loads_identically(trained, cohort_graph, tmp_path):
    trained.save(tmp_path / "model")
    assert (tmp_path / "model" / "model.safetensors").is_file()
    loaded = TrainResult.load(tmp_path / "model")
    assert loaded.candidate_ids == trained.candidate_ids
    assert loaded.metrics["test"] == pytest.approx(trained.metrics["test"], nan_ok=True)
    assert torch.allclose(loaded.predict_proba(cohort_graph), trained.predict_proba(cohort_graph))
    with pytest.raises(ModelError, match="no saved model"):
        TrainResult.load(tmp_path / "nothing")


def test_damaged_saved_models_raise_model_error(trained, tmp_path):
    import json
    import shutil

    trained.save(tmp_path / "good")
    cases = {
        "bad_json": lambda d: (d / "config.json").write_text("{not json"),
        "missing_key": lambda d: (d / "config.json").write_text(json.dumps({"vocabulary": {}})),
        "truncated_weights": lambda d: (d / "model.safetensors").write_bytes(
            (d / "model.safetensors").read_bytes()[:100]
        ),
    }
    for name, damage in cases.items():
        folder = tmp_path / name
        shutil.copytree(tmp_path / "good", folder)
        damage(folder)
        with pytest.raises(ModelError, match="damaged"):
            TrainResult.load(folder)


def test_split_is_stratified_and_seeded(cohort_graph, cohort_patients):
    candidates = candidate_diagnoses(cohort_patients, cohort_graph)
    labels = patient_labels(cohort_patients, cohort_graph, candidates)
    a = stratified_split(labels, seed=3)
    b = stratified_split(labels, seed=3)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert int(sum(m.sum() for m in a.values())) == 80
    first_label = labels.y.argmax(dim=1)
    for j in range(len(candidates)):
        assert bool(((first_label == j) & a["test"]).any())
    with pytest.raises(InputError):
        stratified_split(labels, fractions=(0.5, 0.5, 0.5))


def test_train_without_labelled_training_patients_fails(cohort_graph, cohort_patients):
    empty = {k: torch.zeros(80, dtype=torch.bool) for k in ("train", "val", "test")}
    with pytest.raises(InputError, match="no labelled patients"):
        train(graph=cohort_graph, patients=cohort_patients, split=empty, epochs=1)


def test_evaluator_on_known_inputs():
    y_true = np.array([[1, 0], [0, 1], [1, 0], [0, 1]])
    perfect = Evaluator().eval({"y_true": y_true, "y_pred": y_true * 0.9 + 0.05})
    assert perfect["auroc"] == 1.0 and perfect["auprc"] == 1.0 and perfect["f1"] == 1.0
    assert perfect["top1_accuracy"] == 1.0
    assert perfect["ece"] == pytest.approx(0.05)
    flipped = Evaluator().eval({"y_true": y_true, "y_pred": 1 - (y_true * 0.9 + 0.05)})
    assert flipped["auroc"] == 0.0 and flipped["top1_accuracy"] == 0.0
    assert expected_calibration_error(np.array([1, 0]), np.array([0.5, 0.5])) == pytest.approx(0.0)
    with pytest.raises(InputError):
        Evaluator().eval({"y_true": y_true, "y_pred": y_true[:2]})
    with pytest.raises(InputError):
        Evaluator().eval({"y_true": y_true, "y_pred": y_true * 2.0})
