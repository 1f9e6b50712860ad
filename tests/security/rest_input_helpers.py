"""What the REST bad-input tests share: their store (a real embedded one holding the seed KG and
the guide's patients) and a client of the app serving it, the problem+json answer they expect
(small, never repeating what was sent) and a check that a bad request left the store unchanged."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi.testclient import TestClient

from api.rest import create_app
from graph.settings import Settings
from graph.store import GraphStore
from graph.stores import open_store
from tests.docs.conftest import load_guide_graph

PROBLEM = "application/problem+json"
MARKER = "ZQXMARK"  # put in every bad payload: it must never come back
SMALL = 4096  # bytes: the most an error answer may take
JSON = {"content-type": "application/json"}


@contextmanager
def unchanged(store) -> Iterator[None]:
    """The store's patients and node/relation counts are the same after the block."""
    before = (store.patient_ids(), store.counts())
    yield
    assert (store.patient_ids(), store.counts()) == before


def assert_problem(response, status: int, *, sent: str | bytes | None = MARKER) -> dict:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"] == PROBLEM
    assert len(response.content) < SMALL, len(response.content)
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    assert body["title"] and body["detail"] and body["error"]
    if sent is not None:
        marker = sent.encode() if isinstance(sent, str) else sent
        assert marker not in response.content
    return body


def post_raw(client: TestClient, url: str, raw: str, method: str = "POST"):
    """Send ``raw`` as the JSON body exactly (escapes such as ``\\ud800`` stay escapes)."""
    return client.request(method, url, content=raw.encode(), headers=JSON)


def guide_store(tmp_path_factory, name: str) -> Iterator[GraphStore]:
    """A new embedded store in a fresh folder with the seed KG and the guide's patients."""
    folder = tmp_path_factory.mktemp(name)
    settings = Settings(home=folder, db_path=folder / f"{name}.lbug")
    with open_store("embedded", settings=settings) as opened:
        load_guide_graph(opened)
        yield opened


def app_client(store: GraphStore) -> Iterator[TestClient]:
    """A client of the app serving ``store`` (the app does not close it)."""
    with TestClient(create_app(store.settings, store=store)) as test_client:
        yield test_client
