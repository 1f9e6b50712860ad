"""``GET /health``: the store answers (used by Docker), with its counts for a caller with a key.

Public so that a container healthcheck needs no key; an anonymous caller learns only that the
service and its store are up, not how many patients it holds.
"""

from __future__ import annotations

from fastapi import APIRouter

from api.auth import PrincipalDep
from api.routers.deps import StoreDep
from api.routers.schemas import Health, error_responses

router = APIRouter(tags=["health"])


@router.get(
    "/health",
    response_model=Health,
    response_model_exclude_none=True,
    responses=error_responses(503),
)
def health(caller: PrincipalDep, store: StoreDep) -> Health:
    """Liveness; store name and counts only with an API key; a store that cannot answer gives 503."""
    counts = store.counts()
    if caller is None:
        return Health(status="ok")
    return Health(status="ok", store=store.name, nodes=counts.nodes, relations=counts.relations)
