"""What the REST v1 test modules build their fixtures from: a real embedded store holding the
seed KG and the guide's patients, and a client of the app serving it."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi.testclient import TestClient

from api.rest import create_app
from graph.settings import Settings
from graph.stores import open_store
from tests.docs.conftest import load_guide_graph


def guide_store_settings(tmp_path_factory, name: str) -> Settings:
    """Settings of a new store in a fresh folder, loaded with the seed KG and guide patients."""
    folder = tmp_path_factory.mktemp(name)
    settings = Settings(
        home=folder, db_path=folder / "rest.lbug", query_row_limit=50, extract_warmup=False
    )
    with open_store("embedded", settings=settings) as store:
        load_guide_graph(store)
    return settings


def app_client(settings: Settings) -> Iterator[TestClient]:
    # Entering the client runs the lifespan: the app opens (and later closes) the store itself.
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def count(client: TestClient, cypher: str, **params) -> int:
    """The first value of the first row of a read-only query through ``POST /v1/query``."""
    answer = client.post("/v1/query", json={"cypher": cypher, "params": params})
    return answer.json()["rows"][0][0]
