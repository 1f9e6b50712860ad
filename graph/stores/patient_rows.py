"""Turn a :class:`Patient` into parameter rows for the patient-graph write statements.

Shared by the backends: report and image node ids are namespaced by patient (``P007/r1``) so two
patients' ``r1`` never collide, and findings are aggregated into one patient ``HAS_FINDING`` edge
per concept and assertion (confidence = the highest, sources = the documents it came from,
sections = the report sections of its mentions).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graph.errors import InputError
from graph.records import (
    Assertion,
    Diagnosis,
    ExplanationPath,
    Finding,
    Image,
    ImageEvidence,
    Patient,
    Report,
    SectionSelection,
    TextSpan,
)
from graph.schema import encode_sections, encode_sources
from graph.stores import ladybug_cypher as cy

if TYPE_CHECKING:
    from graph.store_types import StoredPrediction


def _assertion_row(finding: Finding) -> dict[str, Any]:
    a = finding.assertion
    return {
        "concept": finding.concept_id,
        "polarity": a.polarity.value,
        "certainty": a.certainty.value,
        "temporality": a.temporality.value,
        "experiencer": a.experiencer.value,
        "confidence": finding.confidence,
    }


def patient_rows(patient: Patient) -> dict[str, list[dict[str, Any]]]:
    """Rows for reports, images, mentions, image findings and aggregated patient findings.

    Raises:
        InputError: a finding points at a report or image the patient does not have, or two
            reports/images share an id.
    """
    # The key "<patient id>/<report id>" cannot collide across patients: graph.records.Id
    # allows no "/" in either id, so the first "/" always ends the patient id and a key has
    # exactly one (patient, report) pair. ("col" + "x/R1" and "col/x" + "R1" were both
    # "col/x/R1" before ids were checked.)
    prefix = f"{patient.id}/"
    report_ids = [r.id for r in patient.reports]
    image_ids = [i.id for i in patient.images]
    for kind, ids in (("report", report_ids), ("image", image_ids)):
        if len(set(ids)) != len(ids):
            raise InputError(f"patient {patient.id!r} has duplicate {kind} ids")
    reports = [{"id": prefix + r.id, "text": r.text, "date": r.date} for r in patient.reports]
    images = [{"id": prefix + i.id, "modality": i.modality, "path": i.path} for i in patient.images]
    mentions, shows = [], []
    aggregated: dict[tuple, dict[str, Any]] = {}
    for finding in patient.findings:
        row = _assertion_row(finding)
        provenance = finding.provenance
        if isinstance(provenance, TextSpan):
            if provenance.doc_id not in report_ids:
                raise InputError(
                    f"finding {finding.concept_id} cites report {provenance.doc_id!r}, which "
                    f"patient {patient.id!r} does not have"
                )
            source = provenance.doc_id
            mentions.append(
                row
                | {
                    "doc": prefix + provenance.doc_id,
                    "section": provenance.section,
                    "sentence": provenance.sentence,
                    "start": provenance.start,
                    "end": provenance.end,
                }
            )
        elif isinstance(provenance, ImageEvidence):
            if provenance.image_id not in image_ids:
                raise InputError(
                    f"finding {finding.concept_id} cites image {provenance.image_id!r}, which "
                    f"patient {patient.id!r} does not have"
                )
            source = provenance.image_id
            shows.append(
                row
                | {
                    "doc": prefix + provenance.image_id,
                    "probability": provenance.probability,
                    "model_id": provenance.model_id,
                    "scope": provenance.scope,
                    "in_scope": provenance.in_scope,  # from scope; None when unchecked
                    "scope_reason": provenance.scope_reason,
                    "ood_score": provenance.ood_score,
                }
            )
        key = tuple(
            row[k] for k in ("concept", "polarity", "certainty", "temporality", "experiencer")
        )
        merged = aggregated.setdefault(key, row | {"sources": [], "sections": set()})
        merged["confidence"] = max(merged["confidence"], row["confidence"])
        if source not in merged["sources"]:
            merged["sources"].append(source)
        if isinstance(provenance, TextSpan):
            merged["sections"].add(provenance.section)
    return {
        "reports": reports,
        "images": images,
        "mentions": mentions,
        "shows": shows,
        "findings": [
            row
            | {
                "sources": encode_sources(row["sources"]),
                "sections": encode_sections(row["sections"]),
            }
            for row in aggregated.values()
        ],
    }


def prediction_rows(
    patient_id: str,
    diagnoses: list[Diagnosis],
    created: str,
    is_concept: Callable[[str], bool] = lambda node: ":" in node,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Prediction node rows (ranked by probability) and their ``EXPLAINED_BY`` step rows.

    Args:
        is_concept: which path nodes are stored concepts (the patient node is not); a step row
            is written for those only.
    """
    rows, steps = [], []
    ranked = sorted(diagnoses, key=lambda d: -d.probability)
    for rank, diagnosis in enumerate(ranked, 1):
        pred_id = f"{patient_id}/{diagnosis.model_id}/{diagnosis.concept_id}"
        rows.append(
            {
                "id": pred_id,
                "concept_id": diagnosis.concept_id,
                "probability": diagnosis.probability,
                "model_id": diagnosis.model_id,
                "rank": rank,
                "paths": json.dumps([p.model_dump() for p in diagnosis.paths]),
                "created": created,
                "input_sections": (
                    diagnosis.input_sections.model_dump_json() if diagnosis.input_sections else ""
                ),
                "kg_release": diagnosis.kg_release,
            }
        )
        written = len(steps)
        for path_index, path in enumerate(diagnosis.paths):
            for step, node in enumerate(path.nodes):
                if is_concept(node):
                    steps.append(
                        {"prediction": pred_id, "concept": node, "path": path_index, "step": step}
                    )
        rows[-1]["linked"] = len(steps) - written
    return rows, steps


def _assertion(row: dict[str, Any]) -> Assertion:
    return Assertion(
        polarity=row["polarity"],
        certainty=row["certainty"],
        temporality=row["temporality"],
        experiencer=row["experiencer"],
    )


def _finding(row: dict[str, Any], provenance: TextSpan | ImageEvidence) -> Finding:
    """A finding from a MENTIONS or SHOWS row (concept, assertion, confidence) and its evidence."""
    return Finding(
        concept_id=row["concept"],
        assertion=_assertion(row),
        confidence=row["confidence"],
        provenance=provenance,
    )


def patient_from_rows(
    patient_id: str,
    attributes: str | None,
    *,
    reports: list[dict[str, Any]],
    images: list[dict[str, Any]],
    mentions: list[dict[str, Any]],
    shows: list[dict[str, Any]],
    labels: list[str],
) -> Patient:
    """Rebuild a stored patient from the rows a backend read (the inverse of :func:`patient_rows`).

    Rows are dicts: reports ``id, text, date``; images ``id, modality, path``; mentions ``doc,
    concept`` + assertion + ``confidence, section, sentence, start, end``; shows ``doc, concept``
    + assertion + ``confidence, probability, model_id``. Node ids carry the ``<patient>/`` prefix.
    """
    prefix = f"{patient_id}/"
    report_records = tuple(
        Report(id=r["id"].removeprefix(prefix), text=r["text"] or "", date=r["date"])
        for r in reports
    )
    texts = {prefix + r.id: r.text for r in report_records}
    findings = [
        _finding(
            r,
            TextSpan(
                doc_id=r["doc"].removeprefix(prefix),
                section=r["section"] or None,  # "" / null: unknown (older stores wrote "")
                sentence=r["sentence"] or "",
                start=r["start"],
                end=r["end"],
                text=texts.get(r["doc"], "")[r["start"] : r["end"]],
            ),
        )
        for r in mentions
    ]
    findings += [
        _finding(
            r,
            ImageEvidence(
                image_id=r["doc"].removeprefix(prefix),
                model_id=r["model_id"],
                probability=r["probability"],
                # null in rows stored before the scope checks (graph.stores.ladybug_layout)
                scope=r.get("scope") or "",
                scope_reason=r.get("scope_reason") or "",
                ood_score=r.get("ood_score"),
            ),
        )
        for r in shows
    ]
    return Patient(
        id=patient_id,
        reports=report_records,
        images=tuple(
            Image(id=r["id"].removeprefix(prefix), modality=r["modality"] or "", path=r["path"])
            for r in images
        ),
        findings=tuple(findings),
        labels=tuple(labels),
        attributes=json.loads(attributes) if attributes else {},
    )


def patient_statements(patient: Patient) -> list[tuple[str, dict[str, Any]]]:
    """The write statements (after the old patient parts are deleted) for the embedded store."""
    rows = patient_rows(patient)
    pid = patient.id
    statements: list[tuple[str, dict[str, Any]]] = [
        (cy.MERGE_PATIENT, {"pid": pid, "attributes": json.dumps(patient.attributes, default=str)})
    ]
    plan = (
        (cy.CREATE_REPORTS, "reports", True),
        (cy.CREATE_IMAGES, "images", True),
        (cy.CREATE_MENTIONS, "mentions", False),
        (cy.CREATE_SHOWS, "shows", False),
        (cy.CREATE_PATIENT_FINDINGS, "findings", True),
    )
    for cypher, key, with_pid in plan:
        if rows[key]:
            params: dict[str, Any] = {"rows": rows[key]}
            if with_pid:
                params["pid"] = pid
            statements.append((cypher, params))
    if patient.labels:
        statements.append((cy.CREATE_LABELS, {"pid": pid, "ids": sorted(set(patient.labels))}))
    return statements


# A patient's stored predictions, the columns :func:`stored_prediction` reads (both backends).
PATIENT_PREDICTIONS = (
    "MATCH (:Patient {id: $pid})-[:HAS_PREDICTION]->(x:Prediction)-[:PREDICTS]->(c:Concept) "
    "RETURN x.concept_id AS concept_id, c.name AS name, x.probability AS probability, "
    "x.model_id AS model_id, x.paths AS paths, x.rank AS rank, x.created AS created, "
    "x.input_sections AS input_sections, x.kg_release AS kg_release ORDER BY model_id, rank"
)


def stored_prediction(row: dict[str, Any]) -> StoredPrediction:
    """A row of :data:`PATIENT_PREDICTIONS` as a :class:`StoredPrediction`."""
    from graph.store_types import StoredPrediction

    paths = tuple(ExplanationPath.model_validate(p) for p in json.loads(row["paths"] or "[]"))
    sections = row.get("input_sections")
    diagnosis = Diagnosis(
        concept_id=row["concept_id"],
        name=row["name"],
        probability=row["probability"],
        paths=paths,
        model_id=row["model_id"] or "",
        input_sections=SectionSelection.model_validate_json(sections) if sections else None,
        kg_release=row.get("kg_release") or "",
    )
    return StoredPrediction(diagnosis=diagnosis, rank=row["rank"], created=row.get("created"))
