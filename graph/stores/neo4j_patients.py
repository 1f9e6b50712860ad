"""Patient-graph Cypher of the Neo4j backend and the transaction work that runs it.

Rows come from :func:`graph.stores.patient_rows.patient_rows`, shared with the embedded store, so
both backends lay out a patient the same way (ids namespaced ``P007/r1``, one ``HAS_FINDING``
per concept and assertion). Each ``*_work`` function returns a callable for
``session.execute_write``: the driver may call it more than once when it retries a transient
failure, so it only runs statements and keeps no state of its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from graph.records import (
    Diagnosis,
    Patient,
)
from graph.stores.patient_rows import patient_from_rows, patient_rows, prediction_rows

Work = Callable[[Any], None]

# ---------------------------------------------------------------- writes
DELETE_PATIENT_PARTS = (
    "MATCH (:Patient {id: $pid})-[:HAS_REPORT]->(x:Report) DETACH DELETE x",
    "MATCH (:Patient {id: $pid})-[:HAS_IMAGE]->(x:Image) DETACH DELETE x",
    "MATCH (:Patient {id: $pid})-[e:HAS_FINDING]->(:Concept) DELETE e",
    "MATCH (:Patient {id: $pid})-[e:DIAGNOSED_WITH]->(:Concept) DELETE e",
)
DELETE_PATIENT_PREDICTIONS = (
    "MATCH (:Patient {id: $pid})-[:HAS_PREDICTION]->(x:Prediction) DETACH DELETE x"
)
DELETE_PATIENT = "MATCH (p:Patient {id: $pid}) DETACH DELETE p"
MERGE_PATIENT = "MERGE (p:Patient {id: $pid}) SET p.attributes = $attributes"
_ASSERTION = (
    "polarity: row.polarity, certainty: row.certainty, temporality: row.temporality, "
    "experiencer: row.experiencer, confidence: row.confidence"
)
# Report/Image ids are unique (constraint), so MERGE makes a retried transaction harmless.
MERGE_REPORTS = """
MATCH (p:Patient {id: $pid})
UNWIND $rows AS row
MERGE (d:Report {id: row.id})
SET d.patient_id = $pid, d.text = row.text, d.date = row.date
MERGE (p)-[:HAS_REPORT]->(d)
"""
MERGE_IMAGES = """
MATCH (p:Patient {id: $pid})
UNWIND $rows AS row
MERGE (d:Image {id: row.id})
SET d.patient_id = $pid, d.modality = row.modality, d.path = row.path
MERGE (p)-[:HAS_IMAGE]->(d)
"""
CREATE_MENTIONS = f"""
UNWIND $rows AS row
MATCH (d:Report {{id: row.doc}})
MATCH (c:Concept {{id: row.concept}})
CREATE (d)-[:MENTIONS {{{_ASSERTION}, section: row.section, sentence: row.sentence,
                        start: row.start, `end`: row.`end`}}]->(c)
"""
CREATE_SHOWS = f"""
UNWIND $rows AS row
MATCH (d:Image {{id: row.doc}})
MATCH (c:Concept {{id: row.concept}})
CREATE (d)-[:SHOWS {{{_ASSERTION}, probability: row.probability, model_id: row.model_id,
                     scope: row.scope, in_scope: row.in_scope,
                     scope_reason: row.scope_reason, ood_score: row.ood_score}}]->(c)
"""
CREATE_PATIENT_FINDINGS = f"""
MATCH (p:Patient {{id: $pid}})
UNWIND $rows AS row
MATCH (c:Concept {{id: row.concept}})
CREATE (p)-[:HAS_FINDING {{{_ASSERTION}, sources: row.sources, sections: row.sections}}]->(c)
"""
CREATE_LABELS = """
MATCH (p:Patient {id: $pid})
UNWIND $ids AS label_id
MATCH (c:Concept {id: label_id})
MERGE (p)-[:DIAGNOSED_WITH]->(c)
"""
DELETE_PREDICTIONS = """
MATCH (:Patient {id: $pid})-[:HAS_PREDICTION]->(x:Prediction)
WHERE x.model_id IN $models
DETACH DELETE x
"""
CREATE_PREDICTIONS = """
MATCH (p:Patient {id: $pid})
UNWIND $rows AS row
MATCH (c:Concept {id: row.concept_id})
CREATE (p)-[:HAS_PREDICTION]->(x:Prediction {id: row.id, patient_id: $pid,
        concept_id: row.concept_id, probability: row.probability, model_id: row.model_id,
        rank: row.rank, paths: row.paths, created: row.created,
        input_sections: row.input_sections, kg_release: row.kg_release,
        linked: row.linked})-[:PREDICTS]->(c)
"""
# Path nodes that are not stored concepts (the patient itself) simply find no match.
CREATE_EXPLAINED_BY = """
UNWIND $rows AS row
MATCH (x:Prediction {id: row.prediction})
MATCH (c:Concept {id: row.concept})
CREATE (x)-[:EXPLAINED_BY {path: row.path, step: row.step}]->(c)
"""

# ---------------------------------------------------------------- reads
GET_PATIENT = "MATCH (p:Patient {id: $pid}) RETURN p.attributes AS attributes"
GET_REPORTS = """
MATCH (:Patient {id: $pid})-[:HAS_REPORT]->(d:Report)
RETURN d.id AS id, d.text AS text, d.date AS date ORDER BY d.id
"""
GET_IMAGES = """
MATCH (:Patient {id: $pid})-[:HAS_IMAGE]->(d:Image)
RETURN d.id AS id, d.modality AS modality, d.path AS path ORDER BY d.id
"""
_ASSERTION_FIELDS = (
    "m.polarity AS polarity, m.certainty AS certainty, m.temporality AS temporality, "
    "m.experiencer AS experiencer, m.confidence AS confidence"
)
GET_MENTIONS = f"""
MATCH (:Patient {{id: $pid}})-[:HAS_REPORT]->(d:Report)-[m:MENTIONS]->(c:Concept)
RETURN d.id AS doc, c.id AS concept, {_ASSERTION_FIELDS}, m.section AS section,
       m.sentence AS sentence, m.start AS start, m.`end` AS `end`
ORDER BY doc, start, concept
"""
GET_SHOWS = f"""
MATCH (:Patient {{id: $pid}})-[:HAS_IMAGE]->(d:Image)-[m:SHOWS]->(c:Concept)
RETURN d.id AS doc, c.id AS concept, {_ASSERTION_FIELDS}, m.probability AS probability,
       m.model_id AS model_id, m.scope AS scope, m.scope_reason AS scope_reason,
       m.ood_score AS ood_score
ORDER BY doc, concept
"""
GET_LABELS = """
MATCH (:Patient {id: $pid})-[:DIAGNOSED_WITH]->(c:Concept) RETURN c.id AS id ORDER BY id
"""
PATIENT_IDS = "MATCH (p:Patient) RETURN p.id AS id ORDER BY id"


def _run(tx: Any, statement: str, params: dict[str, Any]) -> None:
    tx.run(statement, params).consume()


def upsert_work(patient: Patient) -> Work:
    """Work replacing everything stored for ``patient`` (predictions are kept) in one transaction.

    Raises:
        InputError: from :func:`patient_rows`, before any transaction starts.
    """
    rows = patient_rows(patient)
    pid = patient.id
    attributes = json.dumps(patient.attributes, default=str)
    plan = (
        (MERGE_REPORTS, "reports", ("id",)),
        (MERGE_IMAGES, "images", ("id",)),
        (CREATE_MENTIONS, "mentions", ("doc", "concept", "start")),
        (CREATE_SHOWS, "shows", ("doc", "concept")),
        (CREATE_PATIENT_FINDINGS, "findings", ("concept", "polarity", "certainty")),
    )
    steps: list[tuple[str, dict[str, Any]]] = [(s, {"pid": pid}) for s in DELETE_PATIENT_PARTS]
    steps.append((MERGE_PATIENT, {"pid": pid, "attributes": attributes}))
    for statement, key, sort_key in plan:
        if rows[key]:
            ordered = sorted(rows[key], key=lambda row, k=sort_key: tuple(row[f] for f in k))
            steps.append((statement, {"pid": pid, "rows": ordered}))
    if patient.labels:
        steps.append((CREATE_LABELS, {"pid": pid, "ids": sorted(set(patient.labels))}))

    def work(tx: Any) -> None:
        for statement, params in steps:
            _run(tx, statement, params)

    work.steps = steps  # type: ignore[attr-defined]  # inspected by unit tests
    return work


def delete_work(patient_id: str) -> Work:
    """Work removing a patient with its reports, images, findings, labels and predictions."""
    statements = (*DELETE_PATIENT_PARTS, DELETE_PATIENT_PREDICTIONS, DELETE_PATIENT)

    def work(tx: Any) -> None:
        for statement in statements:
            _run(tx, statement, {"pid": patient_id})

    return work


def predictions_work(patient_id: str, diagnoses: list[Diagnosis], stored: set[str]) -> Work:
    """Work replacing the predictions of the diagnoses' models for one patient (``stored``: the
    path concepts that are stored, the steps it links)."""
    created = datetime.now(UTC).isoformat(timespec="seconds")
    rows, steps = prediction_rows(patient_id, diagnoses, created, stored.__contains__)
    models = sorted({d.model_id for d in diagnoses})

    def work(tx: Any) -> None:
        _run(tx, DELETE_PREDICTIONS, {"pid": patient_id, "models": models})
        if rows:
            _run(tx, CREATE_PREDICTIONS, {"pid": patient_id, "rows": rows})
        if steps:
            _run(tx, CREATE_EXPLAINED_BY, {"rows": steps})

    return work


def read_patient(tx: Any, patient_id: str) -> Patient | None:
    """Rebuild a stored patient inside a read transaction; ``None`` when there is none."""

    def rows(statement: str) -> list[dict[str, Any]]:
        return [record.data() for record in tx.run(statement, {"pid": patient_id})]

    found = rows(GET_PATIENT)
    if not found:
        return None
    return patient_from_rows(
        patient_id,
        found[0]["attributes"],
        reports=rows(GET_REPORTS),
        images=rows(GET_IMAGES),
        mentions=rows(GET_MENTIONS),
        shows=rows(GET_SHOWS),
        labels=[r["id"] for r in rows(GET_LABELS)],
    )
