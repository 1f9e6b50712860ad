"""Request and response bodies of the REST API that are not already graph records."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from graph.records import Concept, Curie, Diagnosis, Patient, Report
from graph.store import Neighbour


class Health(BaseModel):
    """Liveness; the store and its counts only for a caller with an API key (or in open mode)."""

    status: str
    store: str | None = None
    nodes: dict[str, int] | None = None
    relations: dict[str, int] | None = None


class QueryRequest(BaseModel):
    """A read-only Cypher query with its parameters."""

    model_config = ConfigDict(extra="forbid")

    cypher: str = Field(min_length=1, max_length=100_000)
    params: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = Field(default=None, gt=0, description="Row limit (capped by the server)")
    timeout_s: float | None = Field(default=None, ge=0.001, description="Timeout (capped)")


class QueryResponse(BaseModel):
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool


class ConceptList(BaseModel):
    concepts: list[Concept]


class NeighbourList(BaseModel):
    neighbours: list[Neighbour]


class PathList(BaseModel):
    paths: list[list[Neighbour]]


class PatientIds(BaseModel):
    patient_ids: list[str]


class DiagnosisList(BaseModel):
    """Diagnoses of one patient (stored predictions, or predictions to store)."""

    model_config = ConfigDict(extra="forbid")

    diagnoses: list[Diagnosis]


class ReportText(BaseModel):
    """One report to extract findings from."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=200_000)
    id: str | None = Field(
        default=None, min_length=1, description="Report id; '<patient id>-R<n>' when left out"
    )
    date: str | None = None


class PatientIngest(BaseModel):
    """A patient given as report text(s); findings are extracted by the server."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=200)
    reports: list[ReportText | str] = Field(min_length=1, max_length=100)
    labels: list[Curie] = Field(
        default_factory=list, description="Known diagnoses (concept ids), e.g. for training"
    )
    attributes: dict[str, Any] = Field(default_factory=dict)

    def to_patient(self) -> Patient:
        """The patient record, with report ids made deterministic so a repeat is a no-op."""
        reports = []
        for number, given in enumerate(self.reports, start=1):
            report = ReportText(text=given) if isinstance(given, str) else given
            reports.append(
                Report(id=report.id or f"{self.id}-R{number}", text=report.text, date=report.date)
            )
        return Patient(
            id=self.id,
            reports=tuple(reports),
            labels=tuple(self.labels),
            attributes=self.attributes,
        )


class ModelInfo(BaseModel):
    """The diagnosis model the server uses."""

    model_id: str
    encoder: str
    directory: str
    candidate_ids: list[str]
    metrics: dict[str, dict[str, float]]


class ErrorBody(BaseModel):
    """The body of every error answer (request validation errors excepted)."""

    error: str = Field(description="The error's name, e.g. ModelError or NotFound")
    detail: str = Field(description="What went wrong and what to do")


_ERROR_MEANING = {
    400: "Rejected query (QueryError, SchemaError)",
    404: "Unknown patient or concept",
    409: "No trained model saved where the server reads it (ModelError)",
    503: "The graph store cannot answer (StoreError)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {s: {"model": ErrorBody, "description": _ERROR_MEANING[s]} for s in statuses}
