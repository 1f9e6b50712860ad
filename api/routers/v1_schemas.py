"""Bodies of the ``/v1`` API's answers (``...Public``), kept apart from what a client sends
(``...Create``, :mod:`api.routers.patient_create`), so a field the server fills (a finding's name,
its one-word assertion, a diagnosis's rank) is never something a client can set.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from api.routers.patient_create import CODED_SUFFIX, LAB_SECTION, AssertionWord
from graph.records import Finding, ImageEvidence, Patient, Provenance, Report, SectionSelection

FindingSource = Literal["text", "image", "coded", "lab"]

# ----------------------------------------------------------------------------- answers


class ImagePublic(BaseModel):
    id: str
    modality: str
    thumbnail: str | None = Field(
        description="URL of a PNG thumbnail (same key), null when none is stored"
    )


class FindingPublic(BaseModel):
    """A stored finding with the concept's name and its assertion in one word."""

    concept_id: str
    name: str
    assertion: AssertionWord
    experiencer: str
    confidence: float
    source: FindingSource
    provenance: Provenance


class PatientPublic(BaseModel):
    """A stored patient as the API shows it."""

    id: str
    reports: list[Report]
    images: list[ImagePublic]
    findings: list[FindingPublic]
    labels: list[str]
    labs: list[dict[str, Any]] = Field(description="The labs as sent (LabCreate fields)")
    attributes: dict[str, Any]


def finding_source(finding: Finding, coded_report: str) -> FindingSource:
    provenance = finding.provenance
    if isinstance(provenance, ImageEvidence):
        return "image"
    if provenance.doc_id == coded_report:
        return "lab" if provenance.section == LAB_SECTION else "coded"
    return "text"


def patient_public(
    patient: Patient, names: dict[str, str], thumbnails: dict[str, str] | None = None
) -> PatientPublic:
    """The API's view of a stored patient (``names``: concept id -> name)."""
    coded = f"{patient.id}{CODED_SUFFIX}"
    thumbnails = thumbnails or {}
    attributes = dict(patient.attributes)
    labs = attributes.pop("labs", [])
    return PatientPublic(
        id=patient.id,
        reports=list(patient.reports),
        images=[
            ImagePublic(id=i.id, modality=i.modality, thumbnail=thumbnails.get(i.id))
            for i in patient.images
        ],
        findings=[
            FindingPublic(
                concept_id=f.concept_id,
                name=names.get(f.concept_id, f.concept_id),
                assertion=f.assertion.status,
                experiencer=f.assertion.experiencer.value,
                confidence=f.confidence,
                source=finding_source(f, coded),
                provenance=f.provenance,
            )
            for f in patient.findings
        ],
        labels=list(patient.labels),
        labs=labs if isinstance(labs, list) else [],
        attributes=attributes,
    )


class PatientList(BaseModel):
    items: list[str] = Field(description="Patient ids, sorted")
    total: int
    offset: int
    limit: int


class PathPublic(BaseModel):
    nodes: list[str]
    relations: list[str]
    score: float
    evidence: list[str] = Field(description="One entry per relation: what supports that step")
    node_names: list[str]


class DiagnosisPublic(BaseModel):
    """A ranked diagnosis with its calibrated probability and explanation paths."""

    concept_id: str
    name: str
    probability: float = Field(description="Calibrated probability")
    rank: int = Field(description="1 = most probable, per model")
    paths: list[PathPublic]
    model_id: str
    kg_release: str = Field(description="The KG release the model ran on ('' when not recorded)")
    created: str | None = Field(description="When it was stored (UTC, ISO 8601)")
    input_sections: SectionSelection | None


class DiagnosisList(BaseModel):
    patient_id: str
    diagnoses: list[DiagnosisPublic]


class GraphNode(BaseModel):
    id: str
    kind: Literal["patient", "finding", "concept", "diagnosis"]
    label: str
    assertion: AssertionWord | None = None
    assertions: list[AssertionWord] | None = None
    probability: float | None = None
    rank: int | None = None


class GraphEdge(BaseModel):
    id: str
    source: str
    target: str
    type: str
    assertion: AssertionWord | None = None
    evidence: list[str] = Field(default_factory=list)
    probability: float | None = None
    model_id: str | None = None
    paths: list[str] = Field(default_factory=list, description="Ids of the paths along this edge")


class GraphPath(BaseModel):
    id: str = Field(description="<diagnosis concept id>#<path index>")
    edges: list[str]
    score: float


class GraphDiagnosis(BaseModel):
    concept_id: str
    name: str
    probability: float
    rank: int
    model_id: str
    kg_release: str
    paths: list[GraphPath]


class PatientGraph(BaseModel):
    """A patient's subgraph ready to draw: the patient, its findings (with assertions), the KG
    concepts on the stored diagnoses' explanation paths, and those diagnoses."""

    patient_id: str
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    diagnoses: list[GraphDiagnosis]


class ConceptHit(BaseModel):
    id: str
    name: str
    kind: str
    synonyms: list[str]
    xrefs: list[str]
    sources: list[str]
    score: float = Field(
        description="Match quality in (0, 1]: exact name 1, exact synonym 0.9, ..."
    )
    matched: str = Field(description="What matched: the name, a synonym or the id")


class ConceptPage(BaseModel):
    q: str
    items: list[ConceptHit]
    total: int
    offset: int
    limit: int


class Liveness(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    store: bool = Field(description="The store answers")
    model: bool = Field(description="A trained model is saved and loads")
    detail: str = ""
