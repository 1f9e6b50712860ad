"""``POST /query``: researchers' read-only Cypher, with the server's timeout and row limit."""

from __future__ import annotations

from contextlib import nullcontext

from fastapi import APIRouter, Depends, Request

from api.auth import AUTH_RESPONSES, QUERY
from api.routers.deps import SettingsDep
from api.routers.schemas import QueryRequest, QueryResponse, error_responses
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore

router = APIRouter(tags=["query"], dependencies=[Depends(QUERY)], responses=AUTH_RESPONSES)


@router.post("/query", response_model=QueryResponse, responses=error_responses(400, 503))
def run_query(body: QueryRequest, request: Request, settings: SettingsDep) -> QueryResponse:
    """Run one read-only Cypher statement; writes, syntax errors and timeouts answer 400, every
    query worker busy for the whole timeout 503.

    A client may ask for a smaller row limit or timeout than the server's, never a larger one.
    """
    limit = min(body.limit or settings.query_row_limit, settings.query_row_limit)
    timeout = min(body.timeout_s or settings.query_timeout_s, settings.query_timeout_s)
    # The store is NOT held for the request: an embedded store runs the query in a worker
    # process and takes the app's store lock only while that worker opens the database, so
    # /health and writes never wait behind a running query.
    store: GraphStore = request.app.state.store
    lock = request.app.state.store_lock
    held = store.queries_take(lock) if isinstance(store, EmbeddedStore) else nullcontext()
    with held:
        result = store.query(body.cypher, body.params, timeout_s=timeout, row_limit=limit)
    return QueryResponse(
        columns=list(result.columns),
        rows=[list(row) for row in result.rows],
        truncated=result.truncated,
    )
