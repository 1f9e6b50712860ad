"""``POST /query``: researchers' read-only Cypher, with the server's timeout and row limit."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from api.auth import AUTH_RESPONSES, QUERY
from api.routers.deps import SettingsDep, StoreDep
from api.routers.schemas import QueryRequest, QueryResponse, error_responses

router = APIRouter(tags=["query"], dependencies=[Depends(QUERY)], responses=AUTH_RESPONSES)


@router.post("/query", response_model=QueryResponse, responses=error_responses(400))
def run_query(body: QueryRequest, store: StoreDep, settings: SettingsDep) -> QueryResponse:
    """Run one read-only Cypher statement; writes, syntax errors and timeouts answer 400.

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
