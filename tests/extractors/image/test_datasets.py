"""Training data readers: MedMNIST .npz splits and CSVs of real image files."""

from __future__ import annotations

import numpy as np
import pytest

from extractors.image.datasets import load_csv_dataset, load_npz_split, stratified_holdout
from graph.errors import InputError


@pytest.mark.shared_data
def test_npz_split_layout(shared_data):
    images, targets = load_npz_split(shared_data / "images" / "pneumoniamnist_dev.npz", "train")
    assert images.shape == (2428, 1, 28, 28) and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert targets.shape == (2428, 1) and targets.mean() == 0.5


def test_npz_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_npz_split(tmp_path / "none.npz", "train")
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(InputError, match="cannot read"):
        load_npz_split(tmp_path / "bad.npz", "train")


@pytest.mark.shared_data
def test_csv_of_real_pngs(shared_data, tmp_path):
    folder = shared_data / "cohorts" / "covid_cxr" / "images"
    pngs = sorted(folder.glob("*.png"))[:6]
    rows = ["path,pneumonia"] + [f"{path},{i % 2}" for i, path in enumerate(pngs)]
    (tmp_path / "set_train.csv").write_text("\n".join(rows) + "\n")
    images, targets = load_csv_dataset(tmp_path / "set_train.csv", ("pneumonia",))
    assert images.shape == (6, 1, 28, 28) and targets[:, 0].tolist() == [0, 1, 0, 1, 0, 1]
    (tmp_path / "wrong.csv").write_text("path,label\nx.png,1\n")
    with pytest.raises(InputError, match="lacks columns"):
        load_csv_dataset(tmp_path / "wrong.csv", ("pneumonia",))


def test_stratified_holdout_keeps_class_balance_and_is_seeded():
    targets = np.array([[0.0]] * 80 + [[1.0]] * 20)
    kept, held = stratified_holdout(targets, 0.1, seed=0)
    assert len(held) == 10 and targets[held].sum() == 2
    assert set(kept) | set(held) == set(range(100)) and not set(kept) & set(held)
    assert np.array_equal(held, stratified_holdout(targets, 0.1, seed=0)[1])
    assert not np.array_equal(held, stratified_holdout(targets, 0.1, seed=1)[1])


@pytest.mark.shared_data
def test_train_from_a_csv_of_real_images(shared_data, tmp_path):
    from extractors.image.predict import DEFAULT_WEIGHTS, labels_path_for
    from extractors.image.train import train

    pngs = sorted((shared_data / "cohorts" / "covid_cxr" / "images").glob("*.png"))[:16]
    for split, chunk in (("train", pngs[:10]), ("val", pngs[10:])):
        rows = ["path,pneumonia"] + [f"{path},{i % 2}" for i, path in enumerate(chunk)]
        (tmp_path / f"cxr_{split}.csv").write_text("\n".join(rows) + "\n")
    result = train(
        data=tmp_path / "cxr.csv", label_map_path=labels_path_for(DEFAULT_WEIGHTS), epochs=1
    )
    assert result.metrics["val"]["n"] == 6 and result.settings["n_calibration"] == 2
    assert result.config.temperature > 0
