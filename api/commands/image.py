"""``kgdx image train|predict|fit-ood`` and ``kgdx eval image``: the image extractor on the terminal.

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


FORCE_HELP = (
    "Score images outside the model's scope (MR, CT, another body part, a lateral view) "
    "instead of refusing them; their findings are marked out_of_scope"
)


def scope_policy(force: bool) -> str:
    """``force`` when asked on the command line, else the ``image_out_of_scope`` setting."""
    from graph.settings import get_settings

    return "force" if force else get_settings().image_out_of_scope


def scope_json(scope) -> dict[str, object]:
    """The scope verdict of an image as JSON keys (see docs/image-scope.md)."""
    return {
        "scope": scope.scope.value,
        "in_scope": scope.in_scope,
        "scope_reason": scope.reason,
        "ood_score": None if scope.ood_score is None else round(scope.ood_score, 4),
    }


def scope_label(scope: str) -> str:
    """The scope verdict in a table cell: ``in``, ``unverified``, ``OUT`` (``-``: unchecked)."""
    return {"in_scope": "in", "out_of_scope": "OUT", "": "-"}.get(scope, scope)


def print_scope_notes(console, rows: list[tuple[str, str, str]]) -> None:
    """One line per flagged image under a table: ``name: verdict: reasons``."""
    for name, verdict, reason in rows:
        if verdict != "in_scope":
            style = "bold red" if verdict == "out_of_scope" else "yellow"
            console.print(f"[{style}]{name}: {verdict}[/{style}]: {reason}", highlight=False)


def predict_command(
    files: Annotated[list[Path], typer.Argument(help="DICOM, PNG or JPEG files, or a DICOMDIR")],
    weights: Annotated[
        Path | None, typer.Option(help="Model safetensors (default: shipped)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    max_pixels: Annotated[int | None, typer.Option(help="Reject larger images")] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """Predict findings (KG concepts with calibrated probabilities) for image files.

    Each image is checked against the model's scope first (docs/image-scope.md): an image the
    header says is something else is refused unless --force; one that cannot be verified, or
    whose pixels look unlike the training X-rays, is scored and flagged.
    """
    from extractors.image.dicom import DEFAULT_MAX_PIXELS
    from extractors.image.dicomdir import expand_image_paths
    from extractors.image.predict import ImageExtractor

    paths = expand_image_paths(files)
    extractor = ImageExtractor(
        weights, max_pixels=max_pixels or DEFAULT_MAX_PIXELS, policy=scope_policy(force)
    )
    predictions = extractor.predict_files(paths)
    if as_json:
        payload = [
            {
                "source": p.source,
                "image_id": p.image_id,
                "modality": p.modality,
                "patient_id": p.patient_id,
                **scope_json(p.scope),
                "findings": [finding.model_dump(mode="json") for finding in p.findings],
            }
            for p in predictions
        ]
        typer.echo(json.dumps(payload, indent=2))
        return
    from api.commands.table import console, human_number, print_rows

    names = dict(
        zip(extractor.label_map.concept_ids, extractor.label_map.concept_names, strict=True)
    )
    rows = [
        [
            Path(prediction.source).name,
            prediction.modality or "-",
            scope_label(prediction.scope.scope.value),
            finding.concept_id,
            names[finding.concept_id],
            human_number(finding.provenance.probability),
            f"{finding.assertion.polarity.value}/{finding.assertion.certainty.value}",
        ]
        for prediction in predictions
        for finding in prediction.findings
    ]
    columns = ("file", "modality", "scope", "concept", "name", "P(present)", "assertion")
    out = console()
    print_rows(out, columns, rows, title=f"findings ({extractor.model_id})", right=("P(present)",))
    print_scope_notes(
        out, [(Path(p.source).name, p.scope.scope.value, p.scope.reason) for p in predictions]
    )


def fit_ood_command(
    data: Annotated[Path, typer.Option(help="The MedMNIST .npz the weights were trained on")],
    weights: Annotated[
        Path | None, typer.Option(help="Model safetensors (default: shipped)")
    ] = None,
    seed: Annotated[int, typer.Option(help="The seed the weights were trained with")] = 0,
    calibration_fraction: Annotated[
        float, typer.Option(help="The calibration hold-out fraction of training")
    ] = 0.1,
    quantile: Annotated[
        float, typer.Option(min=0.5, max=0.999, help="Share of held-out images left unflagged")
    ] = 0.99,
) -> None:
    """Fit the pixel OOD statistics of saved weights (NAME.ood.safetensors beside them).

    `kgdx image train` writes them itself; this refits them for weights trained before, or
    with another flag quantile, on the same fitting / calibration split as training.
    """
    from extractors.image.ood import fit_ood_for_weights
    from extractors.image.predict import DEFAULT_WEIGHTS

    stats, path = fit_ood_for_weights(
        weights or DEFAULT_WEIGHTS,
        data,
        seed=seed,
        calibration_fraction=calibration_fraction,
        quantile=quantile,
    )
    typer.echo(
        f"saved {path}: threshold {stats.threshold:.4f} ({quantile:.1%} of "
        f"{stats.info['n_calibration']} held-out images below it; fitted on {stats.info['n_fit']})"
    )


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
    """Add ``image train``, ``image predict``, ``image fit-ood`` and ``eval image``."""
    groups["image"].command("train")(train_command)
    groups["image"].command("predict")(predict_command)
    groups["image"].command("fit-ood")(fit_ood_command)
    groups["eval"].command("image")(eval_image_command)
