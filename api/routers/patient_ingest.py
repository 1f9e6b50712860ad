"""What ``POST /v1/patients`` does once the request is read (:mod:`api.routers.patient_upload`):
coded ids checked against the KG (or its cross-references), report extraction and image
inference without the store lock, then one ``upsert_patient`` transaction; and the API's view of
a stored patient, which that request and ``GET /v1/patients/{id}`` answer with.
"""

from __future__ import annotations

import threading
from pathlib import Path as FilePath
from typing import Any

from fastapi import Request

from api.long_lived import freeze_long_lived
from api.routers.deps import store_held
from api.routers.input_rules import check_reports
from api.routers.patient_create import PatientCreate
from api.routers.v1_schemas import PatientPublic
from api.routers.v1_schemas import patient_public as public_view
from graph.errors import InputError
from graph.records import Patient
from graph.settings import Settings
from graph.store import GraphStore


def forget_diagnoses(request: Request, patient_id: str) -> None:
    """Drop what the app's memo holds for a patient just written or deleted."""
    from api.routers.diagnosis_memo import memo_of

    memo = memo_of(request.app.state)
    if memo is not None:
        memo.patient_changed(patient_id)


_image_lock = threading.Lock()


def _image_extractor(request: Request, settings: Settings) -> Any:
    """The app's image model, loaded on the first upload (one load when the first uploads come
    together: they run in the thread pool)."""
    extractor = getattr(request.app.state, "image_extractor", None)
    if extractor is not None:
        return extractor
    with _image_lock:
        extractor = getattr(request.app.state, "image_extractor", None)
        if extractor is None:
            from extractors.image.predict import ImageExtractor

            extractor = ImageExtractor(policy=settings.image_out_of_scope)
            request.app.state.image_extractor = extractor
            freeze_long_lived()  # the CNN and its imports, kept for the app's life
    return extractor


def _thumbnails(settings: Settings, patient: Patient) -> dict[str, str]:
    from api.image_ingest import thumbnail_dir

    folder = thumbnail_dir(settings, patient.id)
    return {
        image.id: f"/v1/patients/{patient.id}/images/{image.id}/thumbnail"
        for image in patient.images
        if (folder / f"{image.id}.png").is_file()
    }


def public_patient(
    request: Request, store: GraphStore, settings: Settings, patient: Patient
) -> PatientPublic:
    """The API's view of ``patient`` (call with the store held: the first call reads the KG's
    names into the app's concept index, later ones read none)."""
    from api.routers.concept_search import concept_index

    names = concept_index(request.app.state, store).names
    return public_view(patient, names, _thumbnails(settings, patient))


def _cross_referenced(
    request: Request, store: GraphStore, ids: set[str], names: dict[str, str]
) -> dict[str, str]:
    """The KG node each of ``ids`` (not node ids) names as a cross-reference: an HPO id the
    crosswalk merged into a UMLS concept links to that concept, an obsolete HPO id to the node
    its replacement names. Adds their names to ``names``; call with the store held."""
    from api.routers.concept_search import concept_index

    if not ids:
        return {}
    index = concept_index(request.app.state, store)
    nodes = {code: node for code in ids if (node := index.resolve(code)) is not None}
    names.update({code: index.names[node] for code, node in nodes.items()})
    return nodes


def create_record(
    request: Request,
    slot: Any,
    settings: Settings,
    body: PatientCreate,
    paths: list[FilePath],
) -> tuple[PatientPublic, bool]:
    from api.image_ingest import (
        merge_images,
        predict_image_files,
        save_thumbnails,
        stored_dicom_ids,
    )

    empty = not (body.reports or body.findings or body.labs or paths)
    text_patient = body.text_patient()
    check_reports((r.text for r in text_patient.reports), settings.max_report_chars)
    engine = slot.engine
    coded_ids = (
        {f.concept_id for f in body.findings}
        | {lab.concept_id for lab in body.labs if lab.concept_id}
        | set(body.labels)
    )
    with store_held(request) as store:
        if empty and not store.has_patient(body.id):  # a stored one keeps its images
            raise InputError(
                "a new patient needs at least one report, coded finding, lab or image: with none "
                "there is nothing to extract or diagnose"
            )
        _ = engine.extractor  # built (or read from its cache) under the lock: it reads the KG
        names = {cid: c.name for cid, c in store.get_concepts(coded_ids).items()}
        nodes = _cross_referenced(request, store, coded_ids - set(names), names)
        known = stored_dicom_ids(store) if paths else {}
    unknown = sorted(coded_ids - set(names))
    if unknown:
        raise InputError(
            f"unknown concept id(s) in findings, labs or labels: {unknown[:5]}: neither a KG "
            "concept nor a cross-reference of one; find the id with GET /v1/concepts?q=<name>"
        )
    if nodes and body.labels:
        labels = tuple(dict.fromkeys(nodes.get(label, label) for label in body.labels))
        text_patient = text_patient.model_copy(update={"labels": labels})
    record = engine.extract(text_patient) if text_patient.reports else text_patient
    coded = body.coded_report(names, nodes)
    if coded is not None:
        report, findings = coded
        record = record.model_copy(
            update={"reports": (*record.reports, report), "findings": record.findings + findings}
        )
    batch = None
    if paths:
        batch = predict_image_files(
            paths,
            settings=settings,
            known=known,
            patient_id=body.id,
            extractor=_image_extractor(request, settings),
            thumbnails=True,
        )
        record = merge_images(record, batch.predictions, batch.new_sources)
    with store_held(request) as store:
        created = not store.has_patient(body.id)
        (stored,) = engine.ingest([record], extract=False, keep_images=batch is None)
        forget_diagnoses(request, stored.id)
        if batch is not None:
            save_thumbnails(settings, stored.id, batch.thumbnails)
        return public_patient(request, store, settings, stored), created


__all__ = ["create_record", "forget_diagnoses", "public_patient"]
