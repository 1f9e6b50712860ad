"""``GET /health``: the store answers, with node and relation counts (used by Docker)."""

from __future__ import annotations

from fastapi import APIRouter

from api.routers.deps import StoreDep
from api.routers.schemas import Health, error_responses

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health, responses=error_responses(503))
def health(store: StoreDep) -> Health:
    """Counts from the store; a store that cannot answer gives 503."""
    counts = store.counts()
    return Health(status="ok", store=store.name, nodes=counts.nodes, relations=counts.relations)
