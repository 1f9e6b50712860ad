"""The pixel OOD score: its statistics file, one-pass features, and what it tells apart on real images."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from extractors.image.ood import (
    OOD_METHOD,
    fit_ood,
    fit_ood_for_weights,
    load_ood,
    ood_path_for,
    stage_features,
)
from extractors.image.predict import DEFAULT_WEIGHTS, labels_path_for
from extractors.image.readers import LoadedImage, load_image
from graph.errors import ModelError
from tests.extractors.image.dicom_files import dicom_file

pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")


def test_shipped_statistics_belong_to_the_shipped_weights():
    stats = load_ood(ood_path_for(DEFAULT_WEIGHTS), DEFAULT_WEIGHTS)  # checks the SHA-256
    assert stats.info["method"] == OOD_METHOD and stats.info["quantile"] == 0.99
    assert stats.info["n_fit"] == 2186 and stats.info["n_calibration"] == 242
    assert [m.shape for m in stats.means] == [(24,), (48,), (96,)]
    assert ood_path_for(DEFAULT_WEIGHTS).stat().st_size < 200_000  # a small file in the repo


def test_one_pass_gives_the_models_own_logits(shipped_extractor):
    batch = torch.rand(5, 1, 28, 28)
    logits, stages = stage_features(shipped_extractor.model, batch)
    with torch.inference_mode():
        expected = shipped_extractor.model(batch).numpy()
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-6)
    assert [s.shape for s in stages] == [(5, 24), (5, 48), (5, 96)]


def test_save_and_load_round_trip(tmp_path, shipped_extractor):
    rng = np.random.default_rng(0)
    images = rng.random((60, 1, 28, 28), dtype=np.float32)
    stats = fit_ood(shipped_extractor.model, images[:40], images[40:], weights_sha256="")
    path = tmp_path / "x.ood.safetensors"
    stats.save(path)
    again = load_ood(path)
    assert again.threshold == stats.threshold and again.scales == stats.scales
    _, stages = stage_features(shipped_extractor.model, torch.as_tensor(images[:3]))
    np.testing.assert_allclose(again.scores(stages), stats.scores(stages))
    with pytest.raises(ValueError, match="quantile"):
        fit_ood(shipped_extractor.model, images, images, quantile=1.0)


def test_an_unreadable_statistics_file_is_a_model_error(tmp_path):
    bad = tmp_path / "x.ood.safetensors"
    bad.write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="cannot read OOD statistics"):
        load_ood(bad)


@pytest.mark.shared_data
def test_fit_ood_rebuilds_the_shipped_statistics(shared_data, tmp_path):
    weights = tmp_path / "m.safetensors"
    shutil.copy(DEFAULT_WEIGHTS, weights)
    shutil.copy(labels_path_for(DEFAULT_WEIGHTS), labels_path_for(weights))
    stats, path = fit_ood_for_weights(weights, shared_data / "images" / "pneumoniamnist_dev.npz")
    shipped = load_ood(ood_path_for(DEFAULT_WEIGHTS))
    assert path == ood_path_for(weights)
    assert stats.threshold == pytest.approx(shipped.threshold, rel=1e-6)
    load_ood(path, weights)  # tied to the copy's bytes


# ------------------------------------------------------------------ what it tells apart
@pytest.mark.parametrize(
    "name", ["MR_small.dcm", "emri_small.dcm", "CT_small.dcm", "US1_J2KR.dcm", "JPEG2000.dcm"]
)
def test_real_mr_ct_us_nm_pixels_are_flagged(shipped_extractor, name):
    (prediction,) = shipped_extractor.predict_images([load_image(dicom_file(name))], [name])
    assert prediction.scope.ood_score > 1.0


def test_noise_and_blank_images_are_flagged(shipped_extractor):
    rng = np.random.default_rng(0)
    arrays = [rng.random((256, 256), dtype=np.float32), np.zeros((64, 64), np.float32)]
    images = [LoadedImage(image_id=f"n{i}", pixels=a[None]) for i, a in enumerate(arrays)]
    for prediction in shipped_extractor.predict_images(images, ["noise", "blank"]):
        assert prediction.scope.ood_score > 1.0
        assert "pixels unlike the training X-rays" in prediction.scope.reason


@pytest.mark.shared_data
def test_covid_cxr_x_rays_vs_ct_slices(shipped_extractor, shared_data):
    """The hardest real pair: X-ray and CT PNGs of one source, size and format."""
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    cohort = shared_data / "cohorts" / "covid_cxr"
    meta = pd.read_csv(cohort / "metadata.csv", encoding="latin-1")
    ct = meta[meta["modality"] == "CT"]
    xray = meta[(meta["modality"] == "X-ray") & (meta["view"] != "L")].iloc[::3]
    scores = {}
    for group, rows in (("ct", ct), ("xray", xray)):
        paths = [cohort / "images" / name for name in rows["filename"]]
        predictions = shipped_extractor.predict_files(paths)
        scores[group] = np.array([p.scope.ood_score for p in predictions])
    assert len(scores["ct"]) == 41 and len(scores["xray"]) >= 140
    labels = np.r_[np.zeros(len(scores["xray"])), np.ones(len(scores["ct"]))]
    assert roc_auc_score(labels, np.r_[scores["xray"], scores["ct"]]) >= 0.95  # measured 0.987
    assert (scores["ct"] > 1.0).mean() >= 0.95  # every CT slice flagged, measured
    # adult X-rays are another population than the children the model saw: about a third are
    # flagged, but most pass
    assert (scores["xray"] > 1.0).mean() <= 0.5
