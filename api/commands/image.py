"""``kgdx image train|predict`` and ``kgdx eval image``: the image extractor on the terminal.

Heavy libraries (torch, MONAI, pydicom) are imported inside the commands.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer


def train_command(
    data: Annotated[Path, typer.Option(help="MedMNIST .npz, or NAME.csv with NAME_train/val.csv")],
    out: Annotated[Path, typer.Option(help="Folder for the weights, label map and metrics")] = Path(
        "data/models"
    ),
    name: Annotated[str, typer.Option(help="File stem of the saved model")] = "pneumonia_cnn",
    labels: Annotated[
        Path | None, typer.Option(help="Label map TSV (default: the shipped pneumonia map)")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for torch, numpy and the augmentation")] = 0,
    epochs: Annotated[int, typer.Option(min=1)] = 40,
    threads: Annotated[int, typer.Option(help="torch CPU threads")] = 2,
) -> None:
    """Train the compact CNN, fit its temperature, and save weights + label map + metrics."""
    import torch

    from extractors.image.predict import DEFAULT_WEIGHTS, labels_path_for
    from extractors.image.train import train

    torch.set_num_threads(threads)
    result = train(
        data=data,
        label_map_path=labels or labels_path_for(DEFAULT_WEIGHTS),
        seed=seed,
        epochs=epochs,
    )
    weights = result.save_to_directory(out, name)
    typer.echo(f"saved {weights} (temperature {result.config.temperature:.3f})")
    for split, metrics in result.metrics.items():
        typer.echo(
            f"{split:>17}: AUROC {metrics['auroc']:.4f}  accuracy {metrics['accuracy']:.4f}  "
            f"ECE {metrics['ece']:.4f}  n={metrics['n']}"
        )


def predict_command(
    files: Annotated[list[Path], typer.Argument(help="DICOM, PNG or JPEG files, or a DICOMDIR")],
    weights: Annotated[
        Path | None, typer.Option(help="Model safetensors (default: shipped)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    max_pixels: Annotated[int | None, typer.Option(help="Reject larger images")] = None,
) -> None:
    """Predict findings (KG concepts with calibrated probabilities) for image files."""
    from extractors.image.dicom import DEFAULT_MAX_PIXELS
    from extractors.image.dicomdir import expand_image_paths
    from extractors.image.predict import ImageExtractor

    paths = expand_image_paths(files)
    extractor = ImageExtractor(weights, max_pixels=max_pixels or DEFAULT_MAX_PIXELS)
    predictions = extractor.predict_files(paths)
    if as_json:
        payload = [
            {
                "source": p.source,
                "image_id": p.image_id,
                "modality": p.modality,
                "patient_id": p.patient_id,
                "findings": [finding.model_dump(mode="json") for finding in p.findings],
            }
            for p in predictions
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"findings ({extractor.model_id})")
    for column in ("file", "modality", "concept", "name", "P(present)", "assertion"):
        table.add_column(column)
    names = dict(
        zip(extractor.label_map.concept_ids, extractor.label_map.concept_names, strict=True)
    )
    for prediction in predictions:
        for finding in prediction.findings:
            table.add_row(
                Path(prediction.source).name,
                prediction.modality or "-",
                finding.concept_id,
                names[finding.concept_id],
                f"{finding.provenance.probability:.3f}",
                f"{finding.assertion.polarity.value}/{finding.assertion.certainty.value}",
            )
    Console().print(table)


def eval_image_command(
    npz: Annotated[Path, typer.Option(help="MedMNIST .npz holding the split")],
    split: Annotated[str, typer.Option(help="Split name in the .npz")] = "test",
    weights: Annotated[
        Path | None, typer.Option(help="Model safetensors (default: shipped)")
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write metrics here")] = None,
) -> None:
    """AUROC, accuracy and ECE of the image model on a labelled split."""
    from extractors.image.evaluate import evaluate

    metrics = evaluate(npz=npz, split=split, weights=weights)
    typer.echo(
        f"{metrics['model_id']} on {npz.name}:{split} (n={metrics['n']}): "
        f"AUROC {metrics['auroc']:.4f}  accuracy {metrics['accuracy']:.4f}  "
        f"ECE {metrics['ece']:.4f} (uncalibrated {metrics['ece_uncalibrated']:.4f})"
    )
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(metrics, indent=2) + "\n")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add ``image train``, ``image predict`` and ``eval image``."""
    groups["image"].command("train")(train_command)
    groups["image"].command("predict")(predict_command)
    groups["eval"].command("image")(eval_image_command)
