"""Image files -> calibrated finding probabilities -> ``Finding`` records linked to KG concepts.

:class:`ImageExtractor` owns a loaded model, its label map and a :class:`Deidentifier`; it reads
files in batches, runs the CNN once per batch and turns every (image, label) probability into a
:class:`graph.records.Finding` with :class:`graph.records.ImageEvidence` provenance.
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
from extractors.image.readers import LoadedImage, load_image
from extractors.image.transforms import inference_transforms
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
) -> tuple[Finding, ...]:
    """One finding per label: present when ``p >= threshold``, definite when ``|p - .5| >= .4``.

    ``confidence`` is the probability of the stated polarity (``p`` or ``1 - p``); the raw
    probability of the concept being present stays in the provenance.
    """
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
                provenance=ImageEvidence(image_id=image_id, model_id=model_id, probability=p),
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
    """

    def __init__(
        self,
        weights: Path | None = None,
        *,
        deidentifier: Deidentifier | None = None,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        threshold: float = 0.5,
    ) -> None:
        weights = Path(weights) if weights is not None else DEFAULT_WEIGHTS
        self.model, self.config = load_model(weights)
        self.label_map = load_label_map(labels_path_for(weights))
        self.deidentifier = deidentifier or Deidentifier()
        self.max_pixels = max_pixels
        self.threshold = threshold
        self.transforms = inference_transforms(self.config.input_size)

    @property
    def model_id(self) -> str:
        return self.config.model_id

    def probabilities(self, batch: torch.Tensor) -> np.ndarray:
        """Calibrated probabilities ``[N, K]`` for a preprocessed batch ``[N, 1, S, S]``."""
        with torch.inference_mode():
            logits = self.model(batch).numpy()
        return sigmoid(logits, self.config.temperature)

    def preprocess(self, image: LoadedImage) -> torch.Tensor:
        """All frames of ``image`` as a ``[frames, 1, S, S]`` batch."""
        return torch.stack([self.transforms(frame) for frame in image.pixels])

    def predict_images(
        self, images: Sequence[LoadedImage], sources: Sequence[str]
    ) -> list[ImagePrediction]:
        """Predict already-loaded images; a multi-frame image reports its most positive frame."""
        if not images:
            return []
        batches = [self.preprocess(image) for image in images]
        probs = self.probabilities(torch.cat(batches))
        predictions, start = [], 0
        for image, source, batch in zip(images, sources, batches, strict=True):
            per_image = probs[start : start + len(batch)].max(axis=0)
            start += len(batch)
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
                        image.image_id, self.model_id, per_image, self.label_map, self.threshold
                    ),
                )
            )
        return predictions

    def predict_files(
        self, paths: Iterable[Path | str], batch_size: int = 64
    ) -> list[ImagePrediction]:
        """Read, de-identify, preprocess and predict files in batches.

        Raises:
            InputError: the first unreadable or unsupported file (nothing is returned for any).
        """
        predictions: list[ImagePrediction] = []
        images: list[LoadedImage] = []
        sources: list[str] = []
        for path in paths:
            images.append(
                load_image(path, deidentifier=self.deidentifier, max_pixels=self.max_pixels)
            )
            sources.append(str(path))
            if len(images) >= batch_size:
                predictions.extend(self.predict_images(images, sources))
                images, sources = [], []
        predictions.extend(self.predict_images(images, sources))
        return predictions
