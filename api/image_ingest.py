"""Image files -> de-identified ``Image`` records and image findings merged into a stored patient.

The original DICOM PatientID is never stored: the patient's ``attributes["source_ids"]["dicom"]``
holds keyed HMAC pseudonyms of it (:meth:`~extractors.image.deid.Deidentifier.source_pseudonym`),
read back into the de-identifier on the next ingest, so a patient keeps its id across runs while
neither the store, the API nor an export can reveal the PatientID. UIDs are remapped with an HMAC under a per-installation key (``<home>/deid.key``, mode
0600), so the same file gets the same image id again and re-ingesting it is idempotent.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.errors import ConfigError, InputError, StoreError
from graph.records import ImageEvidence, Patient
from graph.settings import Settings
from graph.store import GraphStore

if TYPE_CHECKING:
    from extractors.image.predict import ImageExtractor, ImagePrediction

log = logging.getLogger(__name__)

SOURCE_IDS = "source_ids"
DICOM = "dicom"
KEY_FILE = "deid.key"
THUMBNAILS = "thumbnails"
THUMBNAIL_PX = 256
_KEY_BYTES = 32
_MAPPING_ROW_LIMIT = 10_000_000
_STORED_MAPPING = (
    "MATCH (p:Patient) WHERE p.attributes CONTAINS $marker RETURN p.id, p.attributes ORDER BY p.id"
)


def deid_secret(settings: Settings) -> bytes:
    """The installation's de-identification HMAC key, created on first use.

    Raises:
        ConfigError: the key file exists but is not a 64-digit hex key.
    """
    path = settings.home / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # O_EXCL: two processes creating the key at once must not end up with different keys.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(_KEY_BYTES) + "\n")
    text = path.read_text().strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != _KEY_BYTES:
        raise ConfigError(
            f"{path} is not a {_KEY_BYTES}-byte hex key; restore it from a backup "
            "(a new key changes every image id)"
        )
    return key


def stored_dicom_ids(store: GraphStore) -> dict[str, str]:
    """``PatientID pseudonym -> kgdx patient id`` for every stored patient (the store keeps
    :meth:`Deidentifier.source_pseudonym` values, never original PatientIDs).

    Raises:
        StoreError: two stored patients claim the same original PatientID.
    """
    result = store.query(
        _STORED_MAPPING, {"marker": f'"{SOURCE_IDS}"'}, row_limit=_MAPPING_ROW_LIMIT
    )
    if result.truncated:
        raise StoreError("too many patients with source ids to read the mapping")
    mapping: dict[str, str] = {}
    for patient_id, attributes in result.rows:
        for original in json.loads(attributes).get(SOURCE_IDS, {}).get(DICOM, []):
            if mapping.setdefault(original, patient_id) != patient_id:
                raise StoreError(
                    f"patients {mapping[original]!r} and {patient_id!r} share a DICOM "
                    "PatientID; fix their attributes['source_ids']"
                )
    return mapping


def _target_patient(
    predictions: list[ImagePrediction],
    pseudonyms: dict[str, str],
    known: dict[str, str],
    patient_id: str | None,
) -> str:
    """The kgdx patient the images belong to; refuses a batch that mixes patients."""
    file_ids = {p.patient_id for p in predictions if p.patient_id}
    if patient_id is None:
        if len(file_ids) != 1 or any(not p.patient_id for p in predictions):
            found = "no PatientID" if not file_ids else f"{len(file_ids)} different PatientIDs"
            raise InputError(
                f"the images carry {found}; ingest one patient's images at a time and pass "
                "the kgdx patient id (--patient ID)"
            )
        return file_ids.pop()
    for kgdx_id in file_ids:
        owner = known.get(pseudonyms[kgdx_id])
        if owner is not None and owner != patient_id:
            raise InputError(
                f"an image belongs to stored patient {owner!r}, not {patient_id!r}; "
                f"pass --patient {owner} or leave --patient out"
            )
    return patient_id


def merge_images(
    patient: Patient, predictions: list[ImagePrediction], new_sources: set[str]
) -> Patient:
    """``patient`` with these images and their findings, replacing earlier versions of them."""
    by_id = {p.image_id: p for p in predictions}  # the same file twice is one image
    images = [image for image in patient.images if image.id not in by_id]
    images += [p.image_record() for p in by_id.values()]
    findings = [
        f
        for f in patient.findings
        if not (isinstance(f.provenance, ImageEvidence) and f.provenance.image_id in by_id)
    ]
    findings += [finding for p in by_id.values() for finding in p.findings]
    attributes = dict(patient.attributes)
    if new_sources:
        sources = dict(attributes.get(SOURCE_IDS, {}))
        sources[DICOM] = sorted(set(sources.get(DICOM, [])) | new_sources)
        attributes[SOURCE_IDS] = sources
    return patient.model_copy(
        update={"images": tuple(images), "findings": tuple(findings), "attributes": attributes}
    )


@dataclass(frozen=True)
class ImageBatch:
    """Image files read and predicted, ready to merge into one patient (nothing stored yet).

    Attributes:
        predictions: one per distinct image.
        target: the kgdx patient they belong to.
        new_sources: pseudonyms of the files' DICOM PatientIDs, to keep on the patient.
        thumbnails: image id -> PNG bytes (at most :data:`THUMBNAIL_PX` a side), when asked for.
    """

    predictions: list[ImagePrediction]
    target: str
    new_sources: set[str]
    thumbnails: dict[str, bytes] = field(default_factory=dict)


def predict_image_files(
    paths: Iterable[str | Path],
    *,
    settings: Settings,
    known: dict[str, str],
    patient_id: str | None = None,
    extractor: ImageExtractor | None = None,
    thumbnails: bool = False,
) -> ImageBatch:
    """De-identify and predict image files of one patient without touching the store.

    Args:
        known: :func:`stored_dicom_ids` of the store (read by the caller).
        thumbnails: also make a small PNG of each image's first frame (for the viewer).

    Raises:
        InputError: as :func:`ingest_images`; every file is read before any result is returned.
    """
    from extractors.image.deid import Deidentifier
    from extractors.image.predict import ImageExtractor

    files = [Path(path) for path in paths]
    if not files:
        raise InputError("no image files given")
    extractor = extractor or ImageExtractor(policy=settings.image_out_of_scope)
    deidentifier = Deidentifier(secret=deid_secret(settings), known_sources=known)
    extractor.deidentifier = deidentifier
    predictions = extractor.predict_files(files)
    # kgdx id -> pseudonym of its original PatientID (the original stays in memory only)
    pseudonyms = {
        kgdx: deidentifier.source_pseudonym(original)
        for original, kgdx in deidentifier.patient_ids.items()
    }
    target = _target_patient(predictions, pseudonyms, known, patient_id)
    new_sources = {pseudonyms[p.patient_id] for p in predictions if p.patient_id}
    pngs = {}
    if thumbnails:
        from extractors.image.readers import load_image

        for path in files:
            image = load_image(path, deidentifier=deidentifier, max_pixels=extractor.max_pixels)
            pngs[image.image_id] = thumbnail_png(image.pixels[0])
    return ImageBatch(predictions, target, new_sources, pngs)


def thumbnail_png(pixels: Any) -> bytes:
    """A grey PNG of one frame (floats in [0, 1]), at most :data:`THUMBNAIL_PX` a side."""
    import io

    import numpy as np
    from PIL import Image as PILImage

    grey = PILImage.fromarray((np.clip(pixels, 0.0, 1.0) * 255).astype(np.uint8), mode="L")
    grey.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    buffer = io.BytesIO()
    grey.save(buffer, format="PNG")
    return buffer.getvalue()


def thumbnail_dir(settings: Settings, patient_id: str) -> Path:
    """Where a patient's thumbnails are kept (``<home>/thumbnails/<patient id>``; ids are
    validated, so neither holds a ``/``)."""
    return settings.home / THUMBNAILS / patient_id


def save_thumbnails(settings: Settings, patient_id: str, pngs: dict[str, bytes]) -> None:
    """Write thumbnails (each atomically, mode 0600: they are patient images)."""
    if not pngs:
        return
    folder = thumbnail_dir(settings, patient_id)
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for image_id, data in pngs.items():
        target = folder / f"{image_id}.png"
        temporary = folder / f".{image_id}.{secrets.token_hex(4)}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, target)


def delete_thumbnails(settings: Settings, patient_id: str) -> None:
    import shutil

    shutil.rmtree(thumbnail_dir(settings, patient_id), ignore_errors=True)


def ingest_images(
    store: GraphStore,
    paths: Iterable[str | Path],
    *,
    settings: Settings,
    patient_id: str | None = None,
    extractor: ImageExtractor | None = None,
) -> Patient:
    """De-identify and predict image files, then merge them into one stored patient.

    Every file is read and predicted before anything is written; the patient is then written
    once (``upsert_patient`` is atomic), keeping its reports, text findings and labels.

    Args:
        store: the kgdx store (its patients hold the PatientID mapping).
        paths: DICOM, PNG or JPEG files of one patient.
        settings: where the de-identification key lives (``settings.home``).
        patient_id: the kgdx patient; default: the one the files' DICOM PatientID maps to.
        extractor: a loaded image model to reuse; its de-identifier is replaced by the store's.

    Returns:
        The patient as stored.

    Raises:
        InputError: no files, an unreadable or unsupported file, an image outside the model's
            scope while the extractor's policy is ``refuse`` (nothing is written for any), images
            of several patients, or images without PatientID and no ``patient_id``.
        UnknownConceptError: the model's concepts are not in the KG (build it first).
    """
    files = [Path(path) for path in paths]
    if not files:
        raise InputError("no image files given")
    batch = predict_image_files(
        files,
        settings=settings,
        known=stored_dicom_ids(store),
        patient_id=patient_id,
        extractor=extractor,
    )
    try:
        patient = store.get_patient(batch.target)
    except InputError:
        patient = Patient(id=batch.target)
    merged = merge_images(patient, batch.predictions, batch.new_sources)
    store.upsert_patient(merged)
    log.info("stored %d image(s) for patient %s", len(batch.predictions), batch.target)
    return merged
