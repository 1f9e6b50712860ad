"""``POST /v1/query``: researchers' read-only Cypher, with the server's timeout and row limit."""

from __future__ import annotations

import time
from contextlib import nullcontext

import anyio
from fastapi import APIRouter, Depends, FastAPI, Request
from starlette.concurrency import run_in_threadpool

from api.auth import AUTH_RESPONSES, QUERY
from api.routers.deps import SettingsDep
from api.routers.schemas import QueryRequest, QueryResponse, error_responses
from graph.errors import StoreError
from graph.settings import Settings
from graph.store import GraphStore, QueryResult
from graph.stores.embedded import EmbeddedStore

router = APIRouter(tags=["query"], dependencies=[Depends(QUERY)], responses=AUTH_RESPONSES)


def _query_slots(app: FastAPI, settings: Settings) -> anyio.Semaphore:
    """The app's ``query_workers`` slots, awaited on the event loop: a query waiting for a slot
    holds no threadpool thread (60 waiting queries held all 40 and /health stalled 8 s)."""
    slots = getattr(app.state, "query_slots", None)
    if slots is None:
        slots = app.state.query_slots = anyio.Semaphore(settings.query_workers)
    return slots


@router.post("/query", response_model=QueryResponse, responses=error_responses(400, 503))
async def run_query(body: QueryRequest, request: Request, settings: SettingsDep) -> QueryResponse:
    """Run one read-only Cypher statement; writes, syntax errors and timeouts answer 400, every
    query worker busy for the whole timeout 503.

    A client may ask for a smaller row limit or timeout than the server's, never a larger one.
    """
    limit = min(body.limit or settings.query_row_limit, settings.query_row_limit)
    timeout = min(body.timeout_s or settings.query_timeout_s, settings.query_timeout_s)
    began = time.monotonic()
    slots = _query_slots(request.app, settings)
    try:
        with anyio.fail_after(timeout):
            await slots.acquire()
    except TimeoutError:
        raise StoreError(
            "every query worker stayed busy for the whole timeout; retry later"
        ) from None
    try:
        remaining = max(timeout - (time.monotonic() - began), 0.001)  # the wait counts
        result = await run_in_threadpool(_run, request, body, remaining, limit)
    finally:
        slots.release()
    return QueryResponse(
        columns=list(result.columns),
        rows=[list(row) for row in result.rows],
        truncated=result.truncated,
    )


def _run(request: Request, body: QueryRequest, timeout: float, limit: int) -> QueryResult:
    # The store is NOT held for the request: an embedded store runs the query in a worker
    # process and takes the app's store lock only while that worker opens the database, so
    # /health and writes never wait behind a running query.
    store: GraphStore = request.app.state.store
    lock = request.app.state.store_lock
    held = store.queries_take(lock) if isinstance(store, EmbeddedStore) else nullcontext()
    with held:
        return store.query(body.cypher, body.params, timeout_s=timeout, row_limit=limit)
