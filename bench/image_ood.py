"""Image scope checks: how well the pixel OOD score and the header checks keep the model to its scope.

In-distribution (ID) sets: PneumoniaMNIST val (the model's own distribution, never used to fit
or threshold the score), the frontal chest X-ray PNGs of ../shared/data/cohorts/covid_cxr (adult,
another source: in scope by modality, shifted in population) and the real chest CR/DX DICOMs.
Out-of-distribution (OOD) sets: the CT PNGs of covid_cxr (same source and format as its X-rays,
the hardest real test), the MR / CT / US / NM / other DICOMs of pydicom's test files and the
pydicom-data wheel (one per distinct image: the same picture in several transfer syntaxes
counts once), an extremity CR, natural photographs (scikit-learn's two sample JPEGs and crops
of them) and synthetic noise. Lateral chest X-rays are reported on their own (in scope by
modality, out by view).

Per set: AUROC of the OOD score (ID vs OOD), the share flagged at the shipped threshold, and
the final verdict of the extractor (header + pixels) over its files. Baselines measured in the
same run: the maximum sigmoid probability (MSP) and the energy of the logit, and a Mahalanobis
distance on a 16-bin intensity histogram.

Usage: .venv/bin/python bench/image_ood.py [--quick]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT))


def dicom_files() -> dict[str, Path]:
    """Every DICOM test file by name: shared data, pydicom's own, the pydicom-data wheel."""
    from pydicom.data import get_testdata_files

    found: dict[str, Path] = {}
    shared = SHARED / "dicom"
    for path in sorted(shared.rglob("*.dcm")) if shared.is_dir() else []:
        found.setdefault(path.name, path)
    for name in get_testdata_files("*"):
        found.setdefault(Path(name).name, Path(name))
    try:
        import data_store  # the pydicom-data wheel

        for path in sorted((Path(data_store.__file__).parent / "data").glob("*")):
            found.setdefault(path.name, path)
    except ImportError:
        pass
    return found


def dicom_group(image) -> str:
    modality = image.modality or "none"
    if modality in ("CR", "DX"):
        return "dicom other X-ray" if "not the chest" in image.scope.reason else "dicom chest CR/DX"
    if modality in ("CT", "MR", "US", "NM"):
        return f"dicom {modality}"
    return "dicom other (OT/SC/none)"


def natural_files(tmp: Path, crops: int) -> list[Path]:
    import sklearn.datasets
    from PIL import Image

    folder = Path(sklearn.datasets.__file__).parent / "images"
    originals = sorted(folder.glob("*.jpg"))
    rng = np.random.default_rng(0)
    paths = list(originals)
    for original in originals:
        with Image.open(original) as image:
            width, height = image.size
            for index in range(crops):
                side = int(rng.integers(80, min(width, height)))
                left, top = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
                path = tmp / f"{original.stem}_{index}.png"
                image.crop((left, top, left + side, top + side)).save(path)
                paths.append(path)
    return paths


def noise_arrays(count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    arrays = []
    for _ in range(count):
        arrays.append(rng.random((256, 256), dtype=np.float32))
        arrays.append(np.clip(rng.normal(0.5, 0.2, (256, 256)), 0, 1).astype(np.float32))
        arrays.append((rng.random((256, 256)) > 0.5).astype(np.float32))
    rows, cols = np.mgrid[:256, :256]
    arrays += [
        np.zeros((64, 64), np.float32),
        np.ones((64, 64), np.float32),
        np.full((64, 64), 0.5, np.float32),
        np.tile(np.linspace(0, 1, 256, dtype=np.float32), (256, 1)),
        (((rows // 32) + (cols // 32)) % 2).astype(np.float32),
    ]
    return arrays


def distinct(rows: list[dict], tolerance: float = 0.04) -> list[dict]:
    """One row per distinct picture (28x28 inputs within ``tolerance`` are one)."""
    kept: list[dict] = []
    for row in rows:
        if all(np.abs(row["input"] - other["input"]).max() > tolerance for other in kept):
            kept.append(row)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer crops and noise images")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import pandas as pd
    import torch
    from sklearn.metrics import roc_auc_score

    from extractors.image.datasets import load_npz_split, stratified_holdout
    from extractors.image.ood import stage_features
    from extractors.image.predict import ImageExtractor
    from extractors.image.readers import LoadedImage, load_image
    from graph.errors import InputError

    torch.set_num_threads(1)
    extractor = ImageExtractor(policy="force")
    if extractor.ood is None:
        sys.exit("no OOD statistics beside the shipped weights (kgdx image fit-ood)")
    npz = SHARED / "images" / "pneumoniamnist_dev.npz"
    if not npz.is_file():
        sys.exit(f"{npz} is missing: this bench needs ../shared/data")
    rows: list[dict] = []

    def add(group: str, image: LoadedImage, source: str) -> None:
        (prediction,) = extractor.predict_images([image], [source])
        batch = extractor.preprocess(image)
        logits, _ = stage_features(extractor.model, batch)
        rows.append(
            {
                "group": group,
                "ood": prediction.scope.ood_score,
                "scope": prediction.scope.scope.value,
                "header": image.scope.scope.value,
                "logit": float(logits[0, 0] / extractor.config.temperature),
                "input": batch[0, 0].numpy(),
                "distinct": group.startswith("dicom"),
            }
        )

    images, _ = load_npz_split(npz, "val")
    for index, pixels in enumerate(images):
        add("PneumoniaMNIST val", LoadedImage(image_id=f"v{index}", pixels=pixels), "val")
    cohort = SHARED / "cohorts" / "covid_cxr"
    if (cohort / "metadata.csv").is_file():
        meta = pd.read_csv(cohort / "metadata.csv", encoding="latin-1")
        for _, record in meta.iterrows():
            if record["modality"] == "CT":
                group = "covid_cxr CT PNG"
            elif record["view"] == "L":
                group = "covid_cxr lateral X-ray PNG"
            else:
                group = "covid_cxr frontal X-ray PNG"
            path = cohort / "images" / record["filename"]
            add(group, load_image(path), str(path))
    for name, path in sorted(dicom_files().items()):
        try:
            image = load_image(path)
        except InputError:
            continue  # not an image (SR, RT plan, SEG ...) or unreadable: refused before scope
        add(dicom_group(image), image, name)
    with tempfile.TemporaryDirectory() as tmp:
        for path in natural_files(Path(tmp), 8 if args.quick else 30):
            add("natural photographs", load_image(path), path.name)
    for index, array in enumerate(noise_arrays(5 if args.quick else 20)):
        add("noise / synthetic", LoadedImage(image_id=f"n{index}", pixels=array[None]), "noise")

    # Baseline: Mahalanobis distance of a 16-bin intensity histogram, fitted like the OOD score.
    train_images, train_targets = load_npz_split(npz, "train")
    fit_index, _ = stratified_holdout(train_targets, 0.1, 0)

    def histogram(batch: np.ndarray) -> np.ndarray:
        flat = batch.reshape(len(batch), -1)
        return np.stack([np.histogram(x, bins=16, range=(0, 1))[0] / x.size for x in flat])

    fit_hist = histogram(train_images[fit_index])
    mean = fit_hist.mean(0)
    cov = np.cov(fit_hist - mean, rowvar=False)
    precision = np.linalg.inv(cov + 1e-2 * np.trace(cov) / len(cov) * np.eye(len(cov)))

    by_group: dict[str, list[dict]] = {}
    for row in rows:
        by_group.setdefault(row["group"], []).append(row)
    for group, members in by_group.items():
        if members[0]["distinct"]:
            by_group[group] = distinct(members)
    for members in by_group.values():
        hist = histogram(np.stack([m["input"] for m in members]))
        centred = hist - mean
        for member, value in zip(
            members, np.einsum("ij,jk,ik->i", centred, precision, centred), strict=True
        ):
            p = 1 / (1 + np.exp(-member["logit"]))
            member["msp"] = -max(p, 1 - p)
            member["energy"] = -float(np.logaddexp(0.0, member["logit"]))
            member["hist"] = float(value)

    in_sets = ["PneumoniaMNIST val", "covid_cxr frontal X-ray PNG", "dicom chest CR/DX"]
    out_sets = [
        "covid_cxr CT PNG",
        "dicom CT",
        "dicom MR",
        "dicom US",
        "dicom NM",
        "dicom other (OT/SC/none)",
        "dicom other X-ray",
        "natural photographs",
        "noise / synthetic",
    ]
    in_sets = [g for g in in_sets if g in by_group]
    out_sets = [g for g in out_sets if g in by_group]
    scores = ("ood", "hist", "msp", "energy")

    def auroc(ids: list[dict], oods: list[dict], key: str) -> float:
        values = [m[key] for m in ids] + [m[key] for m in oods]
        return float(roc_auc_score([0] * len(ids) + [1] * len(oods), values))

    print(
        f"model {extractor.model_id}; OOD threshold {extractor.ood.threshold:.3f} "
        f"({extractor.ood.info.get('method')}, quantile {extractor.ood.info.get('quantile')})"
    )
    print("\n| set | n | flagged by pixels | verdict in / unverified / out | median OOD |")
    print("|---|---|---|---|---|")
    for group in in_sets + out_sets + [g for g in by_group if g not in in_sets + out_sets]:
        members = by_group[group]
        verdicts = Counter(m["scope"] for m in members)
        flagged = np.mean([m["ood"] > 1.0 for m in members])
        print(
            f"| {group} | {len(members)} | {flagged:.1%} | {verdicts['in_scope']} / "
            f"{verdicts['unverified']} / {verdicts['out_of_scope']} | "
            f"{np.median([m['ood'] for m in members]):.2f} |"
        )
    all_out = [m for g in out_sets for m in by_group[g]]
    print("\nAUROC, ID set vs all OOD sets together (pixels only; higher = better)")
    print("| ID set | " + " | ".join(scores) + " |")
    print("|---|" + "---|" * len(scores))
    for group in in_sets:
        cells = [f"{auroc(by_group[group], all_out, key):.3f}" for key in scores]
        print(f"| {group} | " + " | ".join(cells) + " |")
    if "covid_cxr CT PNG" in by_group:
        pair = [by_group["covid_cxr frontal X-ray PNG"], by_group["covid_cxr CT PNG"]]
        cells = ", ".join(f"{key} {auroc(*pair, key):.3f}" for key in scores)
        print(f"\ncovid_cxr frontal X-ray vs CT PNG (one source and format): {cells}")
    print("\nAUROC of the OOD score per pair (rows ID, columns OOD)")
    print("| | " + " | ".join(out_sets) + " | covid_cxr lateral X-ray PNG |")
    print("|---|" + "---|" * (len(out_sets) + 1))
    lateral = by_group.get("covid_cxr lateral X-ray PNG", [])
    for group in in_sets:
        cells = [f"{auroc(by_group[group], by_group[o], 'ood'):.3f}" for o in out_sets]
        cells.append(f"{auroc(by_group[group], lateral, 'ood'):.3f}" if lateral else "-")
        print(f"| {group} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
