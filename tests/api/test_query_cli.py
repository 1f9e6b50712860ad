"""``kgdx query`` and ``kgdx export neo4j-import`` on a real embedded store (via Typer's runner)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from api.cli import app
from api.commands.query import parse_param
from graph.errors import QueryError
from graph.settings import Settings
from graph.stores import open_store
from kg_loaders.seed import read_seed_concepts
from tests.docs.conftest import load_guide_graph

runner = CliRunner()


@pytest.fixture(scope="module")
def db_env(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    settings = Settings(home=folder, db_path=folder / "cli.lbug")
    with open_store("embedded", settings=settings) as store:
        load_guide_graph(store)
    return {
        "KGDX_HOME": str(folder),
        "KGDX_DB_PATH": str(folder / "cli.lbug"),
        "KGDX_STORE": "embedded",
    }


@pytest.fixture()
def env(db_env, monkeypatch):
    for key, value in db_env.items():
        monkeypatch.setenv(key, value)
    return db_env


def test_parse_param_types() -> None:
    assert parse_param("id=UMLS:C0018800") == ("id", "UMLS:C0018800")
    assert parse_param("n=5") == ("n", 5)
    assert parse_param("min=0.5") == ("min", 0.5)
    assert parse_param('s="5"') == ("s", "5")
    assert parse_param('ids=["a", "b"]') == ("ids", ["a", "b"])
    with pytest.raises(QueryError, match="NAME=VALUE"):
        parse_param("no-equals")
    with pytest.raises(QueryError):
        parse_param("bad name=1")


def test_query_json_with_params(env) -> None:
    result = runner.invoke(
        app,
        [
            "query",
            "MATCH (p:Patient)-[f:HAS_FINDING]->(c:Concept {id: $id}) WHERE f.polarity = $pol "
            "RETURN p.id AS patient ORDER BY patient",
            "--param",
            "id=UMLS:C0032227",
            "--param",
            "pol=absent",
            "--json",
        ],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload == {
        "columns": ["patient"],
        "rows": [["P001"], ["P004"], ["P005"]],
        "truncated": False,
    }


def test_query_table_and_limit(env) -> None:
    result = runner.invoke(
        app,
        [
            "query",
            "MATCH (c:Concept) RETURN c.id AS id, c.name AS name ORDER BY id",
            "--limit",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "HP:0025175" in result.stdout and "honeycombing" in result.stdout
    assert "3 row(s) (truncated by the row limit)" in result.stderr


def test_query_refuses_writes(env) -> None:
    result = runner.invoke(app, ["query", "MATCH (n) DETACH DELETE n"])
    assert isinstance(result.exception, QueryError)
    with open_store("embedded", settings=Settings(db_path=env["KGDX_DB_PATH"])) as store:
        assert store.counts().nodes["Concept"] == len(read_seed_concepts())


def test_entry_point_prints_one_line_error_and_exit_code_2(env) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "query", "CREATE (:Patient {id: 'x'})"],
        capture_output=True, text=True, env={**__import__("os").environ, **env}, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "writing clause CREATE" in done.stderr


def test_export_neo4j_import_cli(env, tmp_path) -> None:
    result = runner.invoke(app, ["export", "neo4j-import", str(tmp_path / "import")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "import" / "nodes_Concept.csv").is_file()
    assert (tmp_path / "import" / "neo4j-admin-import.sh").is_file()
    with open_store("embedded", settings=Settings(db_path=env["KGDX_DB_PATH"])) as store:
        counts = store.counts()
    assert f"{counts.total_nodes} nodes, {counts.total_relations} relationships" in result.stdout


def test_export_neo4j_cli_copies_the_embedded_store_through_the_driver(env, monkeypatch) -> None:
    import neo4j

    from graph.stores import neo4j_cypher, neo4j_patients
    from tests.graph.neo4j_fakes import FakeDriver

    def responder(statement, params):
        if statement == neo4j_patients.GET_PATIENT:
            return [{"attributes": "{}"}]
        return [{"n": 0}] if "RETURN count(" in statement else []

    driver = FakeDriver(responder=responder)
    seen = {}
    monkeypatch.setattr(
        neo4j.GraphDatabase, "driver", lambda uri, **kw: seen.update(uri=uri, **kw) or driver
    )
    result = runner.invoke(
        app,
        ["export", "neo4j", "--uri", "bolt://db:7687", "--user", "u", "--password", "p",
         "--batch-size", "40"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert seen["uri"] == "bolt://db:7687" and seen["auth"] == ("u", "p")
    writes = driver.statements("execute_write")
    concept_rows = [
        len(c.params["rows"]) for c in writes if c.statement == neo4j_cypher.UPSERT_CONCEPTS
    ]
    assert sum(concept_rows) == len(read_seed_concepts()) and max(concept_rows) <= 40
    assert len([c for c in writes if c.statement == neo4j_patients.MERGE_PATIENT]) == 5
    assert driver.closed, "the command closes the driver it opened"


def test_export_neo4j_refuses_neo4j_as_its_own_source(env) -> None:
    result = runner.invoke(app, ["export", "neo4j", "--source", "neo4j"])
    assert "must differ" in str(result.exception)


HEAVY = (
    "MATCH (a:Concept), (b:Concept), (c:Concept), (e:Concept), (f:Concept) "
    "WHERE a.name < b.name AND b.name < c.name AND c.name + e.name + f.name <> 'x' "
    "RETURN count(*)"
)


@pytest.mark.timeout(60)
def test_query_timeout_stops_a_runaway_query(env) -> None:
    result = runner.invoke(app, ["query", HEAVY, "--timeout", "0.3"])
    assert isinstance(result.exception, QueryError)
    assert "timeout" in str(result.exception)


def test_serve_runs_the_app_factory(env, monkeypatch) -> None:
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: calls.append((args, kwargs)))
    result = runner.invoke(app, ["serve", "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert calls == [
        (
            ("api.rest:create_app",),
            {"factory": True, "host": "127.0.0.1", "port": 8123, "workers": 1},
        )
    ]
    many = runner.invoke(app, ["serve", "--workers", "2"])
    assert "one worker" in str(many.exception)
