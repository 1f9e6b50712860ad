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
)

from api.problems import Problem
from api.routers.input_rules import PARAM_TYPES, check_query_params
from graph.records import (
    Id,
    SectionSelection,
    Text,
)
from graph.store import Neighbour

# A patient id in a URL path: the same rule as in bodies, so a bad one answers 422, not a 404
# that repeats it
PatientIdPath = Annotated[Id, Path(description="A patient id")]


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


class NeighbourList(BaseModel):
    neighbours: list[Neighbour]


class PathList(BaseModel):
    paths: list[list[Neighbour]]


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
    422: "The request does not validate (ValidationError) or is refused (InputError)",
    409: "No trained model saved where the server reads it (ModelError)",
    503: "The graph store cannot answer (StoreError)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the error statuses a route can answer."""
    return {s: {"model": ErrorBody, "description": _ERROR_MEANING[s]} for s in statuses}
