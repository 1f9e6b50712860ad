"""``kgdx image predict`` and ``kgdx eval image`` through the real Typer app."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from graph.errors import InputError
from tests.extractors.image.dicom_files import dicom_file

runner = CliRunner()


def test_predict_refuses_real_ct_and_us_by_default():
    files = [str(dicom_file("CT_small.dcm")), str(dicom_file("US1_J2KR.dcm"))]
    result = runner.invoke(app, ["image", "predict", *files, "--json"])
    assert result.exit_code != 0
    assert isinstance(result.exception, InputError)
    message = str(result.exception)
    assert "2 image(s) outside the scope" in message and "nothing was scored" in message
    assert "CT_small.dcm: modality CT (computed tomography) is not a radiograph" in message
    assert "US1_J2KR.dcm: modality US (ultrasound)" in message
    assert "--force" in message
    assert result.output == ""  # no JSON for any file


def test_predict_json_on_real_dicoms_with_force():
    files = [str(dicom_file("CT_small.dcm")), str(dicom_file("US1_J2KR.dcm"))]
    result = runner.invoke(app, ["image", "predict", *files, "--json", "--force"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert [item["modality"] for item in payload] == ["CT", "US"]
    for item in payload:
        assert item["scope"] == "out_of_scope" and item["in_scope"] is False
        assert "is not a radiograph" in item["scope_reason"]
        assert item["ood_score"] > 1.0  # the pixels say so too
        finding = item["findings"][0]
        assert finding["concept_id"] == "UMLS:C0032285"
        assert finding["provenance"]["kind"] == "image"
        assert finding["provenance"]["image_id"] == item["image_id"]
        assert finding["provenance"]["scope"] == "out_of_scope"
        assert finding["provenance"]["scope_reason"] == item["scope_reason"]
    assert "CompressedSamples" not in result.output  # the patient's name never leaves the reader


def test_the_setting_forces_scoring_too(monkeypatch):
    monkeypatch.setenv("KGDX_IMAGE_OUT_OF_SCOPE", "force")
    result = runner.invoke(app, ["image", "predict", str(dicom_file("MR_small.dcm")), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["scope"] == "out_of_scope"


def test_predict_table_and_dicomdir():
    result = runner.invoke(app, ["image", "predict", str(dicom_file("DICOMDIR")), "--force"])
    assert result.exit_code == 0, result.output
    assert "Pneumon" in result.output  # (an 80-column table may cut the concept id)
    # the verdict in its column, the reasons under the table
    assert "OUT" in result.output and "out_of_scope: modality" in result.output


def test_predict_bad_file_is_an_input_error(tmp_path):
    bad = tmp_path / "x.dcm"
    bad.write_bytes(b"garbage" * 100)
    result = runner.invoke(app, ["image", "predict", str(bad)])
    assert result.exit_code != 0
    assert "not a DICOM file" in str(result.exception)


@pytest.mark.shared_data
def test_eval_image_on_a_split_writes_json(shared_data, tmp_path):
    source = np.load(shared_data / "images" / "pneumoniamnist_dev.npz")
    npz = tmp_path / "heldout.npz"
    np.savez(npz, test_images=source["val_images"], test_labels=source["val_labels"])
    out = tmp_path / "metrics.json"
    result = runner.invoke(
        app, ["eval", "image", "--npz", str(npz), "--split", "test", "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(out.read_text())
    assert metrics["n"] == 270 and metrics["split"] == "test"
    assert {"auroc", "accuracy", "ece", "ece_uncalibrated"} <= set(metrics)
    assert "AUROC" in result.output


def test_eval_image_missing_split_names_the_splits(shared_data):
    result = runner.invoke(
        app,
        ["eval", "image", "--npz", str(shared_data / "images" / "pneumoniamnist_dev.npz")],
    )
    assert result.exit_code != 0
    assert "no split 'test'" in str(result.exception) and "train" in str(result.exception)
