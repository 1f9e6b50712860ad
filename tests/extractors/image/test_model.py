"""The CNN, its calibration, label map, safetensors round trip, and the shipped model's quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from extractors.image.calibration import (
    binary_metrics,
    expected_calibration_error,
    fit_temperature,
    sigmoid,
)
from extractors.image.labels import load_label_map
from extractors.image.model import CompactCNN, ModelConfig, load_model, save_model
from extractors.image.predict import DEFAULT_WEIGHTS, labels_path_for, to_findings
from graph.errors import ConfigError, ModelError
from graph.records import ImageEvidence, Polarity

PNEUMONIA = "UMLS:C0032285"


def test_shipped_label_map_maps_the_output_to_pneumonia():
    label_map = load_label_map(labels_path_for(DEFAULT_WEIGHTS))
    assert label_map.labels == ("pneumonia",)
    assert label_map.concept_ids == (PNEUMONIA,)


def test_label_map_rejects_non_curie_ids(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("index\tlabel\tconcept_id\n0\tpneumonia\tpneumonia\n")
    with pytest.raises(ConfigError, match="not a CURIE"):
        load_label_map(path)


def test_temperature_scaling_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 2, size=(20_000, 1))
    targets = (rng.random(true_logits.shape) < sigmoid(true_logits)).astype(float)
    overconfident = true_logits * 2.5  # a model 2.5x too sure of itself
    temperature = fit_temperature(overconfident, targets)
    assert temperature == pytest.approx(2.5, rel=0.05)
    before = expected_calibration_error(sigmoid(overconfident), targets)
    after = expected_calibration_error(sigmoid(overconfident, temperature), targets)
    assert after < 0.02 < before


def test_ece_of_known_cases():
    assert expected_calibration_error(np.array([0.0, 1.0]), np.array([0.0, 1.0])) == 0.0
    # Always 0.8 while right half the time: ECE = |0.8 - 0.5|.
    assert expected_calibration_error(np.full(10, 0.8), np.arange(10) % 2) == pytest.approx(0.3)


def test_safetensors_round_trip(tmp_path):
    config = ModelConfig(model_id="t", labels=("a", "b"), temperature=1.7)
    model = CompactCNN(config).eval()
    save_model(model, config, tmp_path / "m.safetensors")
    loaded, loaded_config = load_model(tmp_path / "m.safetensors")
    assert loaded_config == config
    batch = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded(batch), model(batch))


def test_load_model_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "none.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ModelError, match="cannot read"):
        load_model(tmp_path / "junk.safetensors")


def test_findings_carry_concepts_polarity_and_evidence():
    label_map = load_label_map(labels_path_for(DEFAULT_WEIGHTS))
    (high,) = to_findings("img", "m", [0.93], label_map)
    (low,) = to_findings("img", "m", [0.3], label_map)
    assert high.concept_id == PNEUMONIA and high.assertion.polarity is Polarity.PRESENT
    assert high.assertion.certainty.value == "definite" and high.confidence == pytest.approx(0.93)
    assert low.assertion.polarity is Polarity.ABSENT and low.confidence == pytest.approx(0.7)
    assert low.assertion.certainty.value == "possible"
    assert low.provenance == ImageEvidence(image_id="img", model_id="m", probability=0.3)


def test_shipped_weights_are_small_and_carry_a_model_card():
    assert DEFAULT_WEIGHTS.stat().st_size < 20 * 2**20
    card = DEFAULT_WEIGHTS.with_name("pneumonia_cnn.md").read_text()
    for needed in ("seed", "pneumoniamnist_dev.npz", "AUROC", "ECE", "kgdx image train"):
        assert needed in card


@pytest.mark.shared_data
def test_shipped_model_on_the_val_split(shared_data):
    from extractors.image.evaluate import evaluate

    metrics = evaluate(npz=shared_data / "images" / "pneumoniamnist_dev.npz", split="val")
    assert metrics["n"] == 270
    assert metrics["auroc"] >= 0.95 and metrics["accuracy"] >= 0.88
    assert metrics["ece"] < 0.08


@pytest.mark.shared_data
def test_predict_real_dicom_and_png(chest_cr, shared_data):
    from extractors.image.predict import ImageExtractor

    extractor = ImageExtractor()
    png = next((shared_data / "cohorts" / "covid_cxr" / "images").glob("*.png"))
    predictions = extractor.predict_files([chest_cr, png])
    assert [p.modality for p in predictions] == ["CR", ""]
    for prediction in predictions:
        (finding,) = prediction.findings
        assert finding.concept_id == PNEUMONIA
        assert finding.provenance.image_id == prediction.image_id
        assert finding.provenance.model_id == extractor.model_id == "kgdx-pneumonia-cnn-v1"
        assert 0.0 < finding.provenance.probability < 1.0
    record = predictions[0].image_record()
    assert record.id == predictions[0].image_id and record.modality == "CR"
    # The original PatientID is only in the mapping the caller stores, never in the output.
    assert extractor.deidentifier.patient_ids == {"9RG1": predictions[0].patient_id}


def test_binary_metrics_on_a_known_case():
    metrics = binary_metrics(np.array([0.9, 0.2, 0.6, 0.4]), np.array([1, 0, 0, 1]))
    assert metrics["accuracy"] == 0.5 and metrics["auroc"] == 0.75 and metrics["n"] == 4


@pytest.mark.slow
@pytest.mark.shared_data
def test_training_is_reproducible_with_a_seed(shared_data, tmp_path):
    from extractors.image.train import train

    source = np.load(shared_data / "images" / "pneumoniamnist_dev.npz")
    small = tmp_path / "small.npz"
    np.savez(
        small,
        train_images=source["train_images"][::8], train_labels=source["train_labels"][::8],
        val_images=source["val_images"][::4], val_labels=source["val_labels"][::4],
    )  # fmt: skip
    labels = labels_path_for(DEFAULT_WEIGHTS)
    runs = [train(data=small, label_map_path=labels, seed=3, epochs=2) for _ in range(2)]
    for key, tensor in runs[0].model.state_dict().items():
        torch.testing.assert_close(tensor, runs[1].model.state_dict()[key], rtol=0, atol=0)
    assert runs[0].config.temperature == runs[1].config.temperature
    other = train(data=small, label_map_path=labels, seed=4, epochs=2)
    assert not torch.equal(other.model.head[-1].weight, runs[0].model.head[-1].weight)
    saved = runs[0].save_to_directory(tmp_path / "out", "m")
    assert Path(saved).is_file() and (tmp_path / "out" / "m.labels.tsv").is_file()
    # the OOD statistics come with the weights, tied to their bytes, and the card states them
    from extractors.image.ood import load_ood, ood_path_for

    stats = load_ood(ood_path_for(Path(saved)), Path(saved))
    assert stats.info["n_fit"] + stats.info["n_calibration"] == len(source["train_images"][::8])
    assert runs[0].ood.threshold == runs[1].ood.threshold  # reproducible too
    assert "## Scope" in (tmp_path / "out" / "m.md").read_text()


def test_shipped_model_card_states_the_checked_scope():
    from extractors.image.model_card import render_scope_section
    from extractors.image.ood import load_ood, ood_path_for
    from extractors.image.scope import CHEST_XRAY_SCOPE

    card = DEFAULT_WEIGHTS.with_name("pneumonia_cnn.md").read_text()
    stats = load_ood(ood_path_for(DEFAULT_WEIGHTS), DEFAULT_WEIGHTS)
    assert render_scope_section(CHEST_XRAY_SCOPE, stats, "pneumonia_cnn") in card
    assert f"{stats.threshold:.4f}" in card
