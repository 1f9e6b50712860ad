"""``POST /query``: researchers' read-only Cypher, with the server's timeout and row limit."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from api.auth import AUTH_RESPONSES, QUERY
from api.routers.deps import SettingsDep
from api.routers.schemas import QueryRequest, QueryResponse, error_responses
from graph.store import GraphStore
from graph.stores.embedded import EmbeddedStore

router = APIRouter(tags=["query"], dependencies=[Depends(QUERY)], responses=AUTH_RESPONSES)


def get_query_store(request: Request) -> GraphStore:
    """The app's store, NOT held for the request: an embedded store runs the query in a worker
    process and takes the app's store lock only while that worker opens the database, so
    ``/health`` and writes never wait behind a running query."""
    store = request.app.state.store
    if request.app.state.store_lock is not None and isinstance(store, EmbeddedStore):
        store.connection_lock = request.app.state.store_lock
    return store


QueryStoreDep = Annotated[GraphStore, Depends(get_query_store)]


@router.post("/query", response_model=QueryResponse, responses=error_responses(400, 503))
def run_query(body: QueryRequest, store: QueryStoreDep, settings: SettingsDep) -> QueryResponse:
    """Run one read-only Cypher statement; writes, syntax errors and timeouts answer 400, every
    query worker busy for the whole timeout 503.

    A client may ask for a smaller row limit or timeout than the server's, never a larger one.
    """
    limit = min(body.limit or settings.query_row_limit, settings.query_row_limit)
    timeout = min(body.timeout_s or settings.query_timeout_s, settings.query_timeout_s)
    result = store.query(body.cypher, body.params, timeout_s=timeout, row_limit=limit)
    return QueryResponse(
        columns=list(result.columns),
        rows=[list(row) for row in result.rows],
        truncated=result.truncated,
    )
