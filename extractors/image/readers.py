"""Read DICOM, PNG and JPEG files into de-identified, validated, display-scaled pixels.

``load_image`` is the one entry point: it picks the reader by content (the DICM marker or the
PNG/JPEG signature), never trusting the extension, and returns a :class:`LoadedImage` whose
header has already been through the PS3.15 Annex E Basic Profile.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from extractors.image.deid import Deidentifier
from extractors.image.dicom import (
    DEFAULT_MAX_PIXELS,
    check_image_dataset,
    decode_pixels,
    read_dataset,
)
from extractors.image.scope import ScopeCheck, check_dicom_header, check_raster, colourfulness
from graph.errors import InputError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"


@dataclass(frozen=True)
class LoadedImage:
    """Pixels ready for preprocessing, and de-identified facts about where they came from.

    Attributes:
        image_id: de-identified id (remapped SOP Instance UID, or a content hash for PNG/JPEG).
        pixels: float32 ``[frames, rows, cols]`` in [0, 1], displayed as a reader would see it.
        modality: DICOM Modality (``CR``, ``DX``, ``CT`` ...), or ``""`` for PNG/JPEG.
        patient_id: kgdx patient id that replaced the DICOM PatientID (``""`` if none).
        study_uid: remapped Study Instance UID (``""`` for PNG/JPEG).
        header: the de-identified dataset without its pixel data (``None`` for PNG/JPEG).
        scope: what the header (modality, body part, view...) or, for PNG/JPEG, the shape and
            colour say about the model's scope; the pixel check is added by the extractor.
    """

    image_id: str
    pixels: np.ndarray
    modality: str = ""
    patient_id: str = ""
    study_uid: str = ""
    header: object | None = None
    scope: ScopeCheck = ScopeCheck()

    @property
    def frames(self) -> int:
        return int(self.pixels.shape[0])


def load_image(
    path: Path | str,
    *,
    deidentifier: Deidentifier | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> LoadedImage:
    """Read one DICOM, PNG or JPEG file.

    Args:
        path: the file; its content decides the format.
        deidentifier: shared across the files of a study so UIDs and patient ids map
            consistently; a fresh one is used when omitted.
        max_pixels: reject images with more pixels (all frames and samples) than this.

    Raises:
        InputError: unreadable, unsupported, non-image or oversized input.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    with path.open("rb") as handle:
        head = handle.read(132)
    if head.startswith(PNG_SIGNATURE) or head.startswith(JPEG_SIGNATURE):
        return read_raster(path, max_pixels=max_pixels)
    return read_dicom(path, deidentifier=deidentifier, max_pixels=max_pixels)


def read_dicom(
    path: Path, *, deidentifier: Deidentifier | None = None, max_pixels: int = DEFAULT_MAX_PIXELS
) -> LoadedImage:
    """Validate, decode and de-identify one DICOM image (see :mod:`extractors.image.dicom`)."""
    dataset = read_dataset(path)
    shape = check_image_dataset(dataset, str(path), max_pixels)
    scope = check_dicom_header(dataset)  # before de-identification removes Patient's Age
    pixels = decode_pixels(dataset, str(path), shape)
    del dataset.PixelData  # the header copy keeps no pixels
    clean = (deidentifier or Deidentifier())(dataset, in_place=True)
    image_id = str(clean.get("SOPInstanceUID") or "") or _content_id(path)
    return LoadedImage(
        image_id=image_id,
        pixels=pixels,
        modality=str(clean.get("Modality") or ""),
        patient_id=str(clean.get("PatientID") or ""),
        study_uid=str(clean.get("StudyInstanceUID") or ""),
        header=clean,
        scope=scope,
    )


def read_raster(path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read a PNG or JPEG as grayscale in [0, 1] (16-bit PNGs keep their depth).

    The size is checked from the header before any pixel is decoded.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
            if width <= 0 or height <= 0:
                raise InputError(f"{path}: image dimensions {height}x{width} are empty")
            if width * height > max_pixels:
                raise InputError(
                    f"{path}: {height}x{width} exceeds the limit of {max_pixels:,} pixels "
                    "(decompression-bomb guard); raise max_pixels if it is genuine"
                )
            colour = 0.0
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                pixels = np.asarray(image, dtype=np.float32)
                scale = 65535.0 if image.mode.startswith("I;16") else max(float(pixels.max()), 1.0)
            else:
                if image.mode not in ("L", "LA", "1", "F"):
                    colour = colourfulness(np.asarray(image.convert("RGB")) / 255.0)
                pixels = np.asarray(image.convert("L"), dtype=np.float32)
                scale = 255.0
    except InputError:
        raise
    except Image.DecompressionBombError as exc:  # Pillow's own guard, checked at open
        raise InputError(f"{path}: {exc} (decompression-bomb guard); not read") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from None
    return LoadedImage(
        image_id=_content_id(path),
        pixels=(pixels / scale)[None],
        scope=check_raster(height, width, colour),
    )


def _content_id(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()[:24]}"
