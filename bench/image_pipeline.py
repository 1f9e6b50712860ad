"""Image pipeline throughput: DICOM decode -> MONAI preprocess -> CNN inference, per stage.

Runs on every real DICOM image available here: ../shared/data/dicom, pydicom's bundled test
files and the pydicom-data wheel (when installed); non-image objects and files our reader
rejects are counted and left out. The peer for the decode stage is bare pydicom
(``dcmread(...).pixel_array``, no checks, no LUTs, no de-identification), measured in the same
run, so the ratio is the price of safe reading.

With ``--cohort`` it also runs the shipped model on the real chest images of
../shared/data/cohorts/covid_cxr (PNG, several sizes) and prints the mean pneumonia
probability per diagnosis (the ``finding`` column) and modality.

Usage: .venv/bin/python bench/image_pipeline.py [--quick] [--repeat N] [--cohort]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def dicom_files(quick: bool) -> list[Path]:
    """Real DICOM files: shared data, pydicom test files, pydicom-data (deduplicated by name)."""
    from pydicom.data import get_testdata_files

    found: dict[str, Path] = {}
    shared = ROOT.parent / "shared" / "data" / "dicom"
    for path in sorted(shared.rglob("*.dcm")) if shared.is_dir() else []:
        found.setdefault(path.name, path)
    for name in get_testdata_files("*.dcm"):
        found.setdefault(Path(name).name, Path(name))
    files = sorted(found.values(), key=lambda p: p.name)
    return files[::4] if quick else files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a quarter of the files, 1 repeat")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes (best is reported)")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (1 avoids oversubscription on a busy box)",
    )
    parser.add_argument("--cohort", action="store_true", help="also predict the covid_cxr PNGs")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import pydicom
    import torch

    from extractors.image.deid import Deidentifier
    from extractors.image.predict import ImageExtractor
    from extractors.image.readers import load_image
    from graph.errors import InputError

    torch.set_num_threads(args.threads)
    repeat = 1 if args.quick else args.repeat
    extractor = ImageExtractor()
    readable, rejected = [], []
    for path in dicom_files(args.quick):
        try:
            load_image(path)
            readable.append(path)
        except InputError:
            rejected.append(path)
    frames = sum(load_image(path).frames for path in readable)
    # The peer only gets files bare pydicom decodes (it cannot infer a missing transfer syntax).
    peer_files = []
    for path in readable:
        try:
            pydicom.dcmread(path, force=True).pixel_array  # noqa: B018
            peer_files.append(path)
        except Exception:
            continue

    def best(function) -> float:
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return min(times)

    def peer_decode() -> None:
        for path in peer_files:
            pydicom.dcmread(path, force=True).pixel_array  # noqa: B018 - decoding is the work

    def our_decode_peer_files() -> None:
        deidentifier = Deidentifier()
        for path in peer_files:
            load_image(path, deidentifier=deidentifier)

    images: list = []

    def our_decode() -> None:
        images.clear()
        deidentifier = Deidentifier()
        images.extend(load_image(path, deidentifier=deidentifier) for path in readable)

    batches: list = []

    def preprocess() -> None:
        batches.clear()
        batches.append(torch.cat([extractor.preprocess(image) for image in images]))

    def inference() -> None:
        for start in range(0, len(batches[0]), 64):
            extractor.probabilities(batches[0][start : start + 64])

    def end_to_end() -> None:
        extractor.predict_files(readable, batch_size=64)

    peer_s = best(peer_decode)
    ours_on_peer_s = best(our_decode_peer_files)
    decode_s = best(our_decode)
    preprocess_s = best(preprocess)
    inference_s = best(inference)
    total_s = best(end_to_end)
    megapixels = sum(image.pixels.size for image in images) / 1e6
    print(
        f"files: {len(readable)} images ({frames} frames, {megapixels:.1f} Mpx), "
        f"{len(rejected)} rejected (non-image or undecodable); torch threads {args.threads}"
    )
    print(f"{'stage':<34}{'seconds':>9}{'files/s':>10}{'frames/s':>10}{'ratio':>8}")
    print(f"peer comparison on the {len(peer_files)} files bare pydicom can decode:")
    print(
        f"  bare pydicom dcmread + pixel_array {peer_s:.3f} s; ours (checks, LUTs, de-id) "
        f"{ours_on_peer_s:.3f} s; ratio {ours_on_peer_s / peer_s:.2f}x"
    )
    rows = [
        ("decode + checks + LUTs + de-id", decode_s, None),
        ("preprocess (MONAI Compose)", preprocess_s, None),
        ("inference (CNN, batch 64)", inference_s, None),
        ("end to end (ImageExtractor)", total_s, None),
    ]
    for name, seconds, ratio in rows:
        ratio_text = f"{ratio:.2f}x" if ratio is not None else ""
        print(
            f"{name:<34}{seconds:>9.3f}{len(readable) / seconds:>10.1f}"
            f"{frames / seconds:>10.1f}{ratio_text:>8}"
        )
    # Decode dominates for multi-megapixel or many-frame files, so also time the typical case:
    # single-frame images of at most 1 Mpx (CT, MR, US, DX/CR thumbnails, secondary captures).
    typical = [
        path
        for path, image in zip(readable, images, strict=True)
        if image.frames == 1 and image.pixels.size <= 1_000_000
    ]
    typical_s = best(lambda: extractor.predict_files(typical, batch_size=64))
    rate = len(typical) / typical_s
    print(
        f"{'end to end, 1 frame <= 1 Mpx':<34}{typical_s:>9.3f}{rate:>10.1f}{rate:>10.1f}"
        f"  ({len(typical)} files)"
    )
    for label, value in (("all files", len(readable) / total_s), ("1 frame <= 1 Mpx", rate)):
        verdict = "MET" if value >= 100 else "MISSED"
        print(f"end-to-end, {label}: {value:.1f} images/s (target >= 100): {verdict}")
    if args.cohort:
        cohort(extractor)


def cohort(extractor) -> None:
    """Mean P(pneumonia) of the shipped model on the covid_cxr cohort, by modality and finding."""
    import pandas as pd
    from PIL import Image

    folder = ROOT.parent / "shared" / "data" / "cohorts" / "covid_cxr"
    if not folder.is_dir():
        print("cohort: ../shared/data/cohorts/covid_cxr is not available")
        return
    table = pd.read_csv(folder / "metadata.csv", encoding="latin-1")
    paths = [folder / "images" / name for name in table["filename"]]
    start = time.perf_counter()
    predictions = extractor.predict_files(paths)
    seconds = time.perf_counter() - start
    concept = extractor.label_map.concept_ids[0]
    table["p"] = [prediction.probabilities[concept] for prediction in predictions]
    table["present"] = table["p"] >= extractor.threshold
    sizes = set()
    for path in paths:
        with Image.open(path) as image:
            sizes.add(image.size)
    print(
        f"\ncovid_cxr: {len(paths)} PNG rows, {len(sizes)} distinct sizes, "
        f"{len(paths) / seconds:.0f} images/s end to end; P({concept}) by modality and finding:"
    )
    groups = table.groupby(["modality", "finding"])
    summary = groups["p"].agg(["count", "mean", "median"])
    summary["share >= threshold"] = groups["present"].mean()
    print(summary.round(3).sort_values("count", ascending=False).to_string())
    from sklearn.metrics import roc_auc_score

    xray = table[table["modality"] == "X-ray"]
    abnormal = xray["finding"] != "No Finding"
    print(
        f"X-ray, any listed disease ({int(abnormal.sum())}) vs 'No Finding' "
        f"({int((~abnormal).sum())}): AUROC {roc_auc_score(abnormal, xray['p']):.3f} "
        "(adult images; the model saw only pediatric 28 px ones)"
    )


if __name__ == "__main__":
    main()
