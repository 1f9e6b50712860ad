"""``GET /healthz`` (the process is up) and ``GET /readyz`` (the store answers and a model is
loaded), both public so that a container or load balancer needs no key.

Neither says anything about the data: an anonymous caller learns only up/ready or not. The
store's counts are for keyed callers, through Cypher (``POST /v1/query``).
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from api.auth import PUBLIC
from api.routers.deps import model_held, store_held
from api.routers.v1_schemas import Liveness, Readiness
from graph.errors import KgdxError

router = APIRouter(tags=["health"], dependencies=[Depends(PUBLIC)])


@router.get("/healthz", response_model=Liveness)
async def healthz() -> Liveness:
    """Liveness: the process answers (on the event loop; no store, no thread)."""
    return Liveness(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: see store, model, detail"}},
)
def readyz(request: Request) -> JSONResponse:
    """Readiness: the store answers and a trained model is saved and loads (503 otherwise)."""
    store_ok, model_ok, problems = False, False, []
    try:
        with store_held(request, timeout=2.0):
            request.app.state.store.get_concepts(["kgdx:readiness-probe"])
        store_ok = True
    except TimeoutError:
        problems.append("the store stayed busy for 2 s")
    except KgdxError:
        problems.append("the store does not answer")
    try:
        with model_held(request, timeout=2.0):
            model_ok = True
    except TimeoutError:
        problems.append("the model stayed busy for 2 s")
    except KgdxError:  # the reason (and the model folder) is for keyed callers: GET /v1/model
        problems.append("no trained model loads")
    ready = store_ok and model_ok
    body = Readiness(
        status="ready" if ready else "not_ready",
        store=store_ok,
        model=model_ok,
        detail="; ".join(problems),
    )
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)
