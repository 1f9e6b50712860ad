"""Request and response bodies of the REST API that are not already graph records."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from api.problems import Problem
from api.routers.input_rules import PARAM_TYPES, check_query_params
from graph.records import (
    Concept,
    Curie,
    Diagnosis,
    Id,
    Patient,
    Report,
    SectionSelection,
    Text,
    check_id,
    check_json_value,
)
from graph.store import Neighbour

# A patient id in a URL path: the same rule as in bodies, so a bad one answers 422, not a 404
# that repeats it
PatientIdPath = Annotated[Id, Path(description="A patient id")]


class Health(BaseModel):
    """Liveness; the store and its counts only for a caller with an API key (or in open mode)."""

    status: str
    store: str | None = None
    nodes: dict[str, int] | None = None
    relations: dict[str, int] | None = None


class QueryRequest(BaseModel):
    """A read-only Cypher query with its parameters."""

    model_config = ConfigDict(extra="forbid")

    cypher: Text = Field(min_length=1, max_length=100_000)
    params: dict[str, Any] = Field(
        default_factory=dict, description=f"Query parameters ($name); values: {PARAM_TYPES}"
    )
    limit: int | None = Field(default=None, gt=0, description="Row limit (capped by the server)")
    timeout_s: float | None = Field(default=None, ge=0.001, description="Timeout (capped)")

    @field_validator("params")
    @classmethod
    def _supported_params(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_query_params(value)


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


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("the report is empty; send the report's text")
    return text


# A report's text: non-blank, valid Unicode; its length is checked against the server's
# KGDX_MAX_REPORT_CHARS by the route (input_rules.check_reports), the body size by BodyLimit.
ReportBody = Annotated[Text, AfterValidator(_not_blank)]


class ReportText(BaseModel):
    """One report to extract findings from."""

    model_config = ConfigDict(extra="forbid")

    text: ReportBody
    id: Id | None = Field(default=None, description="Report id; '<patient id>-R<n>' when left out")
    date: Text | None = None


def _report_kind(value: Any) -> str:
    return "text" if isinstance(value, str) else "object"


# A report is a plain string or a ReportText; the tag keeps a bad one to one error message.
ReportInput = Annotated[
    Annotated[ReportBody, Tag("text")] | Annotated[ReportText, Tag("object")],
    Discriminator(_report_kind),
]


class PatientIngest(BaseModel):
    """A patient given as report text(s); findings are extracted by the server."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    reports: list[ReportInput] = Field(min_length=1, max_length=100)
    labels: list[Curie] = Field(
        default_factory=list, description="Known diagnoses (concept ids), e.g. for training"
    )
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _json_attributes(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_json_value(value)

    @model_validator(mode="after")
    def _report_ids(self) -> PatientIngest:
        """The report ids :meth:`to_patient` will use are valid and distinct, so building the
        patient cannot fail after the request was accepted."""
        seen: set[str] = set()
        for number, given in enumerate(self.reports, start=1):
            report_id = given.id if isinstance(given, ReportText) and given.id else None
            if report_id is None:
                report_id = f"{self.id}-R{number}"
                try:
                    check_id(report_id)
                except ValueError:
                    raise ValueError(
                        f"report {number}: the default id {report_id!r} is too long; "
                        "give the report an id or use a shorter patient id"
                    ) from None
            if report_id in seen:
                raise ValueError(f"two reports have the id {report_id!r}; report ids must differ")
            seen.add(report_id)
        return self

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
    input_sections: SectionSelection = Field(
        description="The report sections whose findings the model reads (trained and applied)"
    )
    input_sections_text: str = Field(description="The same in words")


# Every error answers application/problem+json (api/problems.py rewrites the OpenAPI content).
ErrorBody = Problem

_ERROR_MEANING = {
    400: "Rejected query (QueryError, SchemaError)",
    413: "The request body is larger than KGDX_MAX_REQUEST_BYTES",
    404: "Unknown patient or concept",
    409: "No trained model saved where the server reads it (ModelError)",
    503: "The graph store cannot answer (StoreError)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {s: {"model": ErrorBody, "description": _ERROR_MEANING[s]} for s in statuses}
