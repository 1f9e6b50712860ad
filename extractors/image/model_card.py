"""The model card written beside trained weights: data, splits, settings, metrics, how to rebuild."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from extractors.image.ood import OodStatistics
    from extractors.image.scope import ModelScope
    from extractors.image.train import TrainResult


def _row(split: str, metrics: dict[str, float]) -> str:
    return (
        f"| {split} | {metrics['n']} | {metrics['auroc']:.4f} | {metrics['accuracy']:.4f} "
        f"| {metrics['ece']:.4f} | {metrics['nll']:.4f} |"
    )


def render_scope_section(scope: ModelScope, ood: OodStatistics | None, name: str) -> str:
    """The model card's "Scope" section: what the model may be given and how that is checked."""
    if ood is None:
        pixels = "no OOD statistics were saved: every image is `unverified` (pixels not checked)."
    else:
        info = ood.info
        pixels = (
            f"`{info.get('method')}` (`{name}.ood.safetensors`): Mahalanobis distance of the "
            f"three conv stages' pooled features to Gaussians fitted on the {info.get('n_fit')} "
            f"`fit` images; the flag threshold ({ood.threshold:.4f}) is the "
            f"{float(info.get('quantile', 0)):.0%} quantile of the {info.get('n_calibration')} "
            "`calibration` images, so about 1 in 100 images like the training ones is flagged. "
            "`ood_score` is the score over that threshold."
        )
    return f"""## Scope

In scope: {scope.description} of {scope.population}, the only images it was trained on. Every
image is checked before it is scored (`extractors/image/scope.py`; how to read the verdict:
`docs/image-scope.md`):

| check | in scope | out of scope: refused, unless `--force` | unverified: scored and flagged |
|---|---|---|---|
| `Modality` (else the SOP class) | {", ".join(scope.modalities)} | CT, MR, US, NM, PT, MG, XA, RF, IO, ... | missing, `OT`, unrecognised |
| `BodyPartExamined`, `AnatomicRegionSequence` | {", ".join(scope.body_parts[:3])}, ... | another part (HEAD, KNEE, SPINE, ...) | missing, unrecognised, chest and more |
| `ViewPosition`, `ViewCodeSequence`, `PatientOrientation` | {", ".join(scope.views)}; rows left-right | lateral, oblique, decubitus | missing, rotated, unrecognised |
| `ImageType` | | | `LOCALIZER`, `SECONDARY` |
| `PhotometricInterpretation`; PNG/JPEG colour | monochrome, grey | | colour |
| rows x columns | aspect ratio up to 2.5 | | longer strips |
| patient's age (DICOM) | under {scope.max_age_years:.0f} | | {scope.max_age_years:.0f} or older |
| pixels (every image) | OOD score up to 1 | | above 1 |

A PNG or JPEG has no header: its pixels, shape and colour are all that is checked. Pixel OOD
score: {pixels} Out-of-scope findings, when forced, carry `scope = out_of_scope` and are left
out of diagnoses; unverified ones are used, flagged.
"""


def render_model_card(result: TrainResult, name: str) -> str:
    """Markdown model card for ``result`` saved as ``name``."""
    from extractors.image.scope import CHEST_XRAY_SCOPE

    config, settings = result.config, result.settings
    scope = render_scope_section(CHEST_XRAY_SCOPE, result.ood, name)
    c1, c2, c3 = config.channels
    rows = "\n".join(_row(split, metrics) for split, metrics in result.metrics.items())
    return f"""# Model card: `{config.model_id}` (`{name}.safetensors`)

Compact CNN that reads a chest X-ray and gives a calibrated probability for each finding in
`{name}.labels.tsv`, each a knowledge-graph concept id ({
        ", ".join(
            f"`{label}` -> `{concept}`"
            for label, concept in zip(config.labels, result.label_map_concepts, strict=True)
        )
    }).

## Data and splits

- Source: `{settings["data"]}` (PneumoniaMNIST from MedMNIST v2, CC BY 4.0; 28x28 grayscale,
  normal vs pneumonia; the dev file holds the official train split subsampled to a balanced
  2,428 images and the official val split, 270 images).
- `fit` ({settings["n_fit"]} images): `train` minus a stratified
  {settings["calibration_fraction"]:.0%} hold-out; the only data the weights saw.
- `calibration` ({settings["n_calibration"]} images): that hold-out; used only to fit the
  temperature.
- `val` ({settings["n_val"]} images): the official val split; used only for the numbers below.
- The official PneumoniaMNIST test split is held by the project and scored with
  `kgdx eval image --npz PATH --split test`; its numbers are not reported here.

## Model

`CompactCNN`: 3 stages of two 3x3 conv + BN + ReLU ({c1}/{c2}/{c3} channels), max-pool between,
global average pool, dropout {config.dropout}, linear head; {config.input_size}x{config.input_size}
input in [0, 1]. Preprocessing (MONAI): centre square crop, area resize. Training augmentation
(MONAI): random affine (+-10 degrees, +-10% scale, +-2 px), contrast (gamma 0.75-1.3), noise.
AdamW (lr {settings["learning_rate"]}, weight decay {settings["weight_decay"]}), one-cycle schedule,
{settings["epochs"]} epochs, batch {settings["batch_size"]}, binary cross-entropy; the last epoch
is kept (no selection on any held-out split). Temperature scaling (Guo et al. 2017):
T = {config.temperature:.4f}.

## Metrics (seed {settings["seed"]})

AUROC, accuracy at 0.5 and ECE (15 equal-width bins) of the calibrated probabilities;
`val_uncalibrated` is the same model with T = 1.

| split | n | AUROC | accuracy | ECE | NLL |
|---|---|---|---|---|---|
{rows}

## Reproduce

```
kgdx image train --data ../shared/data/images/pneumoniamnist_dev.npz --seed {settings["seed"]} \\
    --epochs {settings["epochs"]} --threads {settings.get("threads", 2)} --out data/models
```

Trained on CPU with torch {settings["torch"]} ({settings.get("threads", 2)} threads) in
{settings["train_seconds"]} s on a shared 2-core machine. The same seed and thread count give the
same weights on the same machine (a different CPU or thread count can change the last bits).

{scope}
## Limits

28x28 pediatric chest X-rays (Guangzhou Women and Children's Medical Center) are all it has seen:
on adult radiographs, CT slices or other body parts its probabilities are not meaningful. The
checks above refuse what a DICOM header says is something else and flag what they cannot verify,
but a PNG of an adult chest often passes the pixel check (about two in three did), and the
pixel check cannot see disease-specific shift. It is a finding detector for the knowledge graph,
not a diagnostic device.
"""
