"""Request and response bodies of the REST API that are not already graph records."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from graph.records import Concept, Diagnosis
from graph.store import Neighbour


class Health(BaseModel):
    status: str
    store: str
    nodes: dict[str, int]
    relations: dict[str, int]


class QueryRequest(BaseModel):
    """A read-only Cypher query with its parameters."""

    model_config = ConfigDict(extra="forbid")

    cypher: str = Field(min_length=1, max_length=100_000)
    params: dict[str, Any] = Field(default_factory=dict)
    limit: int | None = Field(default=None, gt=0, description="Row limit (capped by the server)")
    timeout_s: float | None = Field(default=None, gt=0, description="Timeout (capped)")


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
