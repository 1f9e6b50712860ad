"""Image files -> calibrated finding probabilities -> ``Finding`` records linked to KG concepts.

:class:`ImageExtractor` owns a loaded model, its label map, its OOD statistics and a
:class:`Deidentifier`; it reads files in batches, checks each against the model's scope
(:mod:`extractors.image.scope`: DICOM header, raster shape and colour, and the pixel OOD score of
:mod:`extractors.image.ood`), runs the CNN once per batch and turns every (image, label)
probability into a :class:`graph.records.Finding` with :class:`graph.records.ImageEvidence`
provenance that carries the scope verdict.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from extractors.image.calibration import sigmoid
from extractors.image.deid import Deidentifier
from extractors.image.dicom import DEFAULT_MAX_PIXELS
from extractors.image.labels import LabelMap, load_label_map
from extractors.image.model import load_model
from extractors.image.ood import OodStatistics, load_ood, ood_path_for, stage_features
from extractors.image.readers import LoadedImage, load_image
from extractors.image.scope import (
    CHEST_XRAY_SCOPE,
    ModelScope,
    Scope,
    ScopeCheck,
    ScopePolicy,
    check_pixels,
)
from extractors.image.transforms import inference_transforms
from graph.errors import InputError
from graph.records import Assertion, Certainty, Finding, Image, ImageEvidence, Polarity
from graph.settings import DATA_DIR

DEFAULT_WEIGHTS = DATA_DIR / "models" / "pneumonia_cnn.safetensors"


@dataclass(frozen=True)
class ImagePrediction:
    """What the model says about one image file."""

    source: str
    image_id: str
    modality: str
    patient_id: str
    probabilities: dict[str, float]  # concept id -> calibrated probability
    findings: tuple[Finding, ...]
    scope: ScopeCheck = ScopeCheck()

    def image_record(self) -> Image:
        """The de-identified :class:`graph.records.Image` to attach to the patient."""
        return Image(id=self.image_id, modality=self.modality)


def labels_path_for(weights: Path) -> Path:
    """The label map that ships beside ``weights`` (``NAME.labels.tsv``)."""
    return weights.with_name(weights.name.removesuffix(".safetensors") + ".labels.tsv")


def to_findings(
    image_id: str,
    model_id: str,
    probabilities: Sequence[float],
    label_map: LabelMap,
    threshold: float = 0.5,
    scope: ScopeCheck | None = None,
) -> tuple[Finding, ...]:
    """One finding per label: present when ``p >= threshold``, definite when ``|p - .5| >= .4``.

    ``confidence`` is the probability of the stated polarity (``p`` or ``1 - p``); the raw
    probability of the concept being present stays in the provenance, with the image's scope
    verdict (``scope`` None: not checked).
    """
    scope_fields = {}
    if scope is not None:
        scope_fields = {
            "scope": scope.scope.value,
            "scope_reason": scope.reason,
            "ood_score": None if scope.ood_score is None else round(float(scope.ood_score), 4),
        }
    findings = []
    for concept_id, probability in zip(label_map.concept_ids, probabilities, strict=True):
        p = float(np.clip(probability, 0.0, 1.0))
        present = p >= threshold
        assertion = Assertion(
            polarity=Polarity.PRESENT if present else Polarity.ABSENT,
            certainty=Certainty.DEFINITE if abs(p - 0.5) >= 0.4 else Certainty.POSSIBLE,
        )
        findings.append(
            Finding(
                concept_id=concept_id,
                assertion=assertion,
                confidence=p if present else 1.0 - p,
                provenance=ImageEvidence(
                    image_id=image_id, model_id=model_id, probability=p, **scope_fields
                ),
            )
        )
    return tuple(findings)


class ImageExtractor:
    """A trained image model ready to turn files into findings.

    Args:
        weights: safetensors file saved by ``kgdx image train`` (default: the shipped model).
        deidentifier: shared with other readers of the same study (a fresh one by default);
            its ``patient_ids`` map is what the caller stores in the kgdx store.
        max_pixels: decompression-bomb guard passed to the readers.
        threshold: probability at which a finding is asserted present.
        policy: what to do with an image outside the model's scope: ``refuse`` (the default:
            :class:`InputError` naming every such file, nothing scored) or ``force`` (score it,
            its findings carry ``scope = out_of_scope``).
        model_scope: what the model was trained on (default: frontal chest radiographs).

    Raises:
        ModelError: unreadable weights, or OOD statistics beside them fitted for other weights.
    """

    def __init__(
        self,
        weights: Path | None = None,
        *,
        deidentifier: Deidentifier | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        threshold: float = 0.5,
        policy: ScopePolicy | str = ScopePolicy.REFUSE,
        model_scope: ModelScope = CHEST_XRAY_SCOPE,
    ) -> None:
        weights = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        self.model, self.config = load_model(weights)
        self.label_map = load_label_map(labels_path_for(weights))
        self.deidentifier = deidentifier or Deidentifier()
        self.max_pixels = max_pixels
        self.threshold = threshold
        self.policy = ScopePolicy(policy)
        self.model_scope = model_scope
        self.transforms = inference_transforms(self.config.input_size)
        ood_path = ood_path_for(weights)
        # Without statistics the pixels go unchecked and every image is flagged "unverified".
        self.ood: OodStatistics | None = load_ood(ood_path, weights) if ood_path.is_file() else None

    @property
    def model_id(self) -> str:
        return self.config.model_id

    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        """Calibrated probabilities ``[N, K]`` for a preprocessed batch ``[N, 1, S, S]``."""
        return self.score_batch(batch)[0]

    def score_batch(self, batch: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """Calibrated probabilities ``[N, K]`` and OOD scores over threshold ``[N]`` (None
        without statistics), from one forward pass."""
        logits, stages = stage_features(self.model, batch)
        relative = self.ood.relative(stages) if self.ood is not None else None
        return sigmoid(logits, self.config.temperature), relative

    def preprocess(self, image: LoadedImage) -> torch.Tensor:
        """All frames of ``image`` as a ``[frames, 1, S, S]`` batch."""
        return torch.stack([self.transforms(frame) for frame in image.pixels])

    def predict_images(
        self, images: Sequence[LoadedImage], sources: Sequence[str]
    ) -> list[ImagePrediction]:
        """Predict already-loaded images; a multi-frame image reports its most positive frame
        and its least typical frame's OOD score. The scope policy is the caller's to apply."""
        if not images:
            return []
        batches = [self.preprocess(image) for image in images]
        probs, relative = self.score_batch(torch.cat(batches))
        predictions, start = [], 0
        for image, source, batch in zip(images, sources, batches, strict=True):
            stop = start + len(batch)
            per_image = probs[start:stop].max(axis=0)
            ood = None if relative is None else float(relative[start:stop].max())
            start = stop
            scope = image.scope.merge(check_pixels(ood))
            predictions.append(
                ImagePrediction(
                    source=source,
                    image_id=image.image_id,
                    modality=image.modality,
                    patient_id=image.patient_id,
                    probabilities=dict(
                        zip(self.label_map.concept_ids, map(float, per_image), strict=True)
                    ),
                    findings=to_findings(
                        image.image_id,
                        self.model_id,
                        per_image,
                        self.label_map,
                        self.threshold,
                        scope,
                    ),
                    scope=scope,
                )
            )
        return predictions

    def predict_files(
        self, paths: Iterable[Path | str], batch_size: int = 64
    ) -> list[ImagePrediction]:
        """Read, de-identify, check, preprocess and predict files in batches.

        Raises:
            InputError: the first unreadable or unsupported file, or (policy ``refuse``) every
                file outside the model's scope; nothing is returned for any file then.
        """
        predictions: list[ImagePrediction] = []
        images: list[LoadedImage] = []
        sources: list[str] = []
        refused: list[str] = []
        for path in paths:
            image = load_image(path, deidentifier=self.deidentifier, max_pixels=self.max_pixels)
            if image.scope.scope is Scope.OUT and self.policy is ScopePolicy.REFUSE:
                refused.append(f"{path}: {image.scope.decisive_reason}")
                images, sources, predictions = [], [], []  # read on only to name the others
            if refused:
                continue
            images.append(image)
            sources.append(str(path))
            if len(images) >= batch_size:
                predictions.extend(self.predict_images(images, sources))
                images, sources = [], []
        if refused:
            raise OutOfScopeError(self, refused)
        predictions.extend(self.predict_images(images, sources))
        return predictions


class OutOfScopeError(InputError):
    """Images outside the model's scope were refused (the ``refuse`` policy)."""

    def __init__(self, extractor: ImageExtractor, refused: list[str]) -> None:
        self.refused = tuple(refused)
        shown = "\n  ".join(refused[:20])
        more = f"\n  ... and {len(refused) - 20} more" if len(refused) > 20 else ""
        super().__init__(
            f"{len(refused)} image(s) outside the scope of {extractor.model_id} "
            f"({extractor.model_scope.description}); nothing was scored:\n  {shown}{more}\n"
            'Pass --force (or image_out_of_scope = "force") to score them anyway: their '
            "findings are marked out_of_scope and left out of diagnoses."
        )
