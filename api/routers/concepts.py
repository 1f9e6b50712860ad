"""``/concepts``: look up KG concepts, their neighbours, and the KG paths between two."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from api.auth import AUTH_RESPONSES, CLINICAL
from api.routers.deps import StoreDep
from api.routers.schemas import ConceptList, NeighbourList, PathList, error_responses
from graph.records import Concept

router = APIRouter(
    prefix="/concepts",
    tags=["concepts"],
    dependencies=[Depends(CLINICAL)],
    responses=AUTH_RESPONSES,
)


@router.get("", response_model=ConceptList)
def get_concepts(store: StoreDep, ids: Annotated[list[str], Query(min_length=1)]) -> ConceptList:
    """Concepts by id (``?ids=UMLS:C0018800&ids=...``); unknown ids are left out."""
    found = store.get_concepts(ids)
    return ConceptList(concepts=[found[i] for i in sorted(found)])


@router.get("/{concept_id}", response_model=Concept, responses=error_responses(404))
def get_concept(concept_id: str, store: StoreDep) -> Concept:
    """One concept (404 when unknown)."""
    return store.get_concept(concept_id)


@router.get(
    "/{concept_id}/neighbours", response_model=NeighbourList, responses=error_responses(404)
)
def neighbours(
    concept_id: str,
    store: StoreDep,
    types: Annotated[list[str] | None, Query()] = None,
    direction: Literal["out", "in", "both"] = "both",
    limit: Annotated[int, Query(gt=0, le=10_000)] = 100,
) -> NeighbourList:
    """Concepts one KG relation away, optionally of some relation types."""
    found = store.neighbours(concept_id, types=types, direction=direction, limit=limit)
    return NeighbourList(neighbours=found)


@router.get(
    "/{concept_id}/paths/{target_id}", response_model=PathList, responses=error_responses(404)
)
def paths(
    concept_id: str,
    target_id: str,
    store: StoreDep,
    max_hops: Annotated[int, Query(ge=1, le=6)] = 3,
    limit: Annotated[int, Query(gt=0, le=100)] = 10,
) -> PathList:
    """Shortest KG walks from one concept to another (edges in either direction)."""
    return PathList(paths=store.paths(concept_id, target_id, max_hops=max_hops, limit=limit))
