"""``/v1/concepts``: search KG concepts by name or synonym, look one up, its neighbours, and
the KG paths between two."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request

from api.auth import AUTH_RESPONSES, CLINICAL
from api.routers.concept_search import concept_index
from api.routers.deps import StoreDep, store_held
from api.routers.schemas import NeighbourList, PathList, error_responses
from api.routers.v1_schemas import ConceptHit, ConceptPage
from graph.records import Concept, Text

router = APIRouter(
    prefix="/concepts",
    tags=["concepts"],
    dependencies=[Depends(CLINICAL)],
    responses=AUTH_RESPONSES,
)
ConceptId = Annotated[Text, Path(min_length=3, max_length=200, description="A concept id (CURIE)")]


@router.get("", response_model=ConceptPage)
def search_concepts(
    request: Request,
    q: Annotated[Text, Query(min_length=1, max_length=200, description="Name, synonym or id")],
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> ConceptPage:
    """Concepts whose name, synonym or id matches ``q``, best first (exact, prefix, word
    prefix, substring), ``limit`` from ``offset``; ``total`` counts every match."""
    index = getattr(request.app.state, "concept_index", None)
    if index is None:
        with store_held(request) as store:
            index = concept_index(request.app.state, store)
    hits = index.search(q)
    page = hits[offset : offset + limit]
    return ConceptPage(
        q=q,
        items=[
            ConceptHit(
                id=h.concept.id,
                name=h.concept.name,
                kind=h.concept.kind.value,
                synonyms=list(h.concept.synonyms),
                xrefs=list(h.concept.xrefs),
                sources=list(h.concept.sources),
                score=h.score,
                matched=h.matched,
            )
            for h in page
        ],
        total=len(hits),
        offset=offset,
        limit=limit,
    )


@router.get("/{concept_id}", response_model=Concept, responses=error_responses(404))
def get_concept(request: Request, concept_id: ConceptId, store: StoreDep) -> Concept:
    """One concept, by its id, by a cross-reference it carries (``HP:0001250`` gives the
    crosswalk's ``UMLS:C0014544`` "Seizure": the answer's ``id`` is the node's) or by an
    obsolete HPO id it replaces (``replaced_by``); 404 when none."""
    found = store.get_concepts([concept_id]).get(concept_id)
    if found is not None:
        return found
    node = concept_index(request.app.state, store).resolve(concept_id)
    return store.get_concept(node if node is not None else concept_id)


@router.get(
    "/{concept_id}/neighbours", response_model=NeighbourList, responses=error_responses(404)
)
def neighbours(
    concept_id: ConceptId,
    store: StoreDep,
    types: Annotated[list[Text] | None, Query(max_length=50)] = None,
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
    concept_id: ConceptId,
    target_id: ConceptId,
    store: StoreDep,
    max_hops: Annotated[int, Query(ge=1, le=6)] = 3,
    limit: Annotated[int, Query(gt=0, le=100)] = 10,
) -> PathList:
    """Shortest KG walks from one concept to another (edges in either direction)."""
    return PathList(paths=store.paths(concept_id, target_id, max_hops=max_hops, limit=limit))
