"""``kgdx image predict`` and ``kgdx eval image`` through the real Typer app."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from api.cli import app
from tests.extractors.image.dicom_files import dicom_file

runner = CliRunner()


def test_predict_json_on_real_dicoms():
    files = [str(dicom_file("CT_small.dcm")), str(dicom_file("US1_J2KR.dcm"))]
    result = runner.invoke(app, ["image", "predict", *files, "--json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert [item["modality"] for item in payload] == ["CT", "US"]
    finding = payload[0]["findings"][0]
    assert finding["concept_id"] == "UMLS:C0032285"
    assert finding["provenance"]["kind"] == "image"
    assert finding["provenance"]["image_id"] == payload[0]["image_id"]
    assert "CompressedSamples" not in result.output  # the patient's name never leaves the reader


def test_predict_table_and_dicomdir():
    result = runner.invoke(app, ["image", "predict", str(dicom_file("DICOMDIR"))])
    assert result.exit_code == 0, result.output
    assert "UMLS:C0032285" in result.output and "Pneumonia" in result.output


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
