"""Issue 11, findings 1, 2 and 5: the read-only Cypher path cannot read or write the host.

Every hostile query here got through the old word-list guard (a ``/*`` inside a string or a
backticked name hid the clause after it) or crashed the process. They run end to end through the
real embedded store's ``store.query``, the ``kgdx query`` entry point and ``POST /v1/query``; a canary
file outside the database folder shows whether anything was read, and the temporary tree whether
anything was written.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.rest import create_app
from graph.cypher_docs import guide_queries
from graph.cypher_functions import LADYBUG_FUNCTIONS, READ_FUNCTIONS
from graph.cypher_guard import MAX_NESTING, check_read_only
from graph.cypher_lexer import tokenize
from graph.errors import QueryError
from graph.settings import Settings
from graph.stores import open_store
from tests.docs.conftest import load_guide_graph

ROOT = Path(__file__).resolve().parents[2]
SECRET = "kgdx-canary-7f3a9c"


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A temporary tree: ``db/`` holds the store, ``secret.txt`` sits outside it."""
    root = tmp_path_factory.mktemp("guard")
    (root / "secret.txt").write_text(f"{SECRET}|root\n{SECRET}|second\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def settings(tree) -> Settings:
    return Settings(home=tree / "home", db_path=tree / "db" / "kg.lbug")


@pytest.fixture(scope="module")
def kg(settings):
    with open_store("embedded", settings=settings) as store:
        load_guide_graph(store)
        yield store


def _files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


def hostile(tree: Path) -> dict[str, str]:
    """Reproductions of finding 1 (and the clauses it made reachable), by name."""
    secret, out = tree / "secret.txt", tree / "out.csv"
    load = f"LOAD FROM '{secret}' (file_format='csv', header=false, delim='|')"
    return {
        "comment_in_string_load": f"UNWIND ['/*'] AS a {load} RETURN column0, '*/' AS b LIMIT 2",
        "comment_in_string_copy": (
            f"RETURN '/*' AS a; COPY (MATCH (p:Patient) RETURN p.id) TO '{out}'; RETURN '*/' AS b"
        ),
        "comment_in_backticks": f"MATCH (`/*`:Patient) {load} RETURN column0, 1 AS `*/`",
        "quote_in_backticks": f"UNWIND [1] AS `'` {load} RETURN column0, 1 AS `'`",
        "quote_in_backticks_with": f"WITH 1 AS `'` {load} WITH column0, ' ' AS `'` RETURN column0",
        "comment_in_double_quotes": f'RETURN "/*" AS a {load} RETURN column0, "*/" AS b',
        "escaped_quote_then_comment": f"RETURN '\\'/*' AS a {load} RETURN column0 // */",
        "line_comment_in_string": f"RETURN '//' AS a\n{load} RETURN column0",
        "plain_load": f"{load} RETURN *",
        "load_csv": f"LOAD CSV FROM 'file://{secret}' AS line RETURN line",
        "copy_to": f"COPY (MATCH (p:Patient) RETURN p.id) TO '{out}'",
        "read_csv_procedure": f"CALL read_csv('{secret}') RETURN *",
        "read_csv_function": f"RETURN read_csv('{secret}')",
        "load_extension": f"RETURN '/*' AS a; LOAD EXTENSION '{tree / 'libx.so'}'; RETURN '*/'",
        "install": "RETURN '/*' AS a; INSTALL json; RETURN '*/' AS b",
        "attach": f"ATTACH '{tree / 'other.lbug'}' AS other (dbtype lbug)",
        "export_database": f"EXPORT DATABASE '{tree / 'export'}'",
        "import_database": f"IMPORT DATABASE '{tree / 'export'}'",
        "call_timeout": "RETURN '/*' AS a; CALL timeout=0; RETURN '*/' AS b",
        "call_timeout_alone": "CALL timeout=0",
        "call_threads": "CALL threads=1",
        "current_setting": "CALL current_setting('timeout') RETURN *",
        "nextval": "RETURN nextval('seq')",
        "write_in_exists": "MATCH (p:Patient) WHERE EXISTS { MATCH (p) DETACH DELETE p } RETURN 1",
        "write_in_call": "MATCH (p:Patient) CALL { CREATE (:Patient {id: 'x'}) } RETURN p",
        "write_after_union": "MATCH (p:Patient) RETURN p.id UNION CREATE (:Patient {id: 'x'})",
    }


HOSTILE_NAMES = list(hostile(Path("/tmp")))


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_query_is_refused_and_reads_or_writes_nothing(kg, tree, name) -> None:
    before, counts = _files(tree), kg.counts()
    with pytest.raises(QueryError) as refused:
        kg.query(hostile(tree)[name])
    assert SECRET not in str(refused.value)
    assert _files(tree) == before, "a file appeared"
    assert kg.counts() == counts


def test_refusals_name_the_clause_and_what_to_do(tree) -> None:
    queries = hostile(tree)
    messages = {}
    for name in ("comment_in_string_load", "install", "attach", "call_timeout_alone"):
        with pytest.raises(QueryError) as refused:
            check_read_only(queries[name])
        messages[name] = str(refused.value)
    assert "LOAD" in messages["comment_in_string_load"]
    assert "INSTALL" in messages["install"] and "extension" in messages["install"]
    assert "ATTACH" in messages["attach"]
    assert (
        "timeout" in messages["call_timeout_alone"] and "setting" in messages["call_timeout_alone"]
    )


@pytest.mark.parametrize("name", ["install", "load_extension", "call_timeout"])
def test_refused_before_the_database_sees_it(kg, tree, monkeypatch, name) -> None:
    reached = []
    monkeypatch.setattr(kg, "_query", lambda *args, **kwargs: reached.append(args))
    with pytest.raises(QueryError):
        kg.query(hostile(tree)[name])
    assert reached == []
    kg.query("RETURN 1 AS one")  # the spy is in place: a read does reach it
    assert len(reached) == 1


@pytest.mark.parametrize(
    "cypher",
    [
        "RETURN 1 AS a; RETURN 2 AS b",
        "MATCH (p:Patient) RETURN p.id;;",
        "RETURN 1; MATCH (n) RETURN n",
        "; RETURN 1",
    ],
)
def test_more_than_one_statement_is_a_query_error_not_a_crash(kg, cypher) -> None:
    with pytest.raises(QueryError):
        kg.query(cypher)


@pytest.mark.parametrize(
    "cypher",
    [
        "RETURN " + "(" * 3000 + "1" + ")" * 3000,  # finding 5: segfaulted LadybugDB
        "RETURN " + "[" * 3000 + "1" + "]" * 3000,
        "RETURN " + "+".join(["1"] * 10_000),  # no brackets, and still a segfault
        "RETURN " + "CASE WHEN true THEN " * 40 + "1" + " END" * 40,  # exponential parse time
        "RETURN " + "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1),
    ],
    ids=["parens_3000", "lists_3000", "plus_chain_10000", "case_40", "parens_limit_plus_1"],
)
def test_deep_nesting_is_refused_in_milliseconds(kg, cypher) -> None:
    started = time.perf_counter()
    with pytest.raises(QueryError, match="deeper than"):
        kg.query(cypher)
    assert time.perf_counter() - started < 0.5


def test_nesting_at_the_limit_still_runs(kg) -> None:
    depth = MAX_NESTING
    assert kg.query("RETURN " + "(" * depth + "41 + 1" + ")" * depth + " AS x").rows == ((42,),)


@pytest.mark.parametrize(
    "cypher",
    [
        "RETURN 'open",
        'RETURN "open',
        "RETURN 1 /* open",
        "MATCH (`open) RETURN 1",
        "RETURN 'a\\qb'",
        "RETURN 1\x00",
        "RETURN 1 AS x)",
        "RETURN [1, 2",
        "RETURN 1 \u00a0",
        "",
        "  \n ",
        "MATCH (n) RETRUN n",
    ],
)
def test_malformed_queries_are_query_errors(cypher) -> None:
    with pytest.raises(QueryError):
        check_read_only(cypher)


def test_a_lone_surrogate_is_refused_by_the_guard_not_by_a_dying_worker(kg) -> None:
    # a Python str can hold one (a JSON body's "\\ud800"); it cannot be encoded for the database
    with pytest.raises(QueryError, match="lone surrogate"):
        kg.query("RETURN '\ud800' AS a")


def test_long_queries_are_refused() -> None:
    with pytest.raises(QueryError, match="longer than"):
        check_read_only("RETURN 1 AS x" + " " * 100_000)


# ---------------------------------------------------------------------- the same, at the edges
def _cli(settings: Settings, cypher: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KGDX_HOME": str(settings.home),
        "KGDX_DB_PATH": str(settings.db_path),
        "KGDX_STORE": "embedded",
    }
    return subprocess.run(
        [str(ROOT / ".venv" / "bin" / "kgdx"), "query", cypher, "--json"],
        capture_output=True, text=True, env=env, timeout=120, cwd=settings.home.parent,
    )  # fmt: skip


@pytest.fixture(scope="module")
def cli_settings(tmp_path_factory) -> Settings:
    """A store of its own: the CLI opens the database file, the module's store holds it open."""
    root = tmp_path_factory.mktemp("cli")
    (root / "secret.txt").write_text(f"{SECRET}|root\n", encoding="utf-8")
    settings = Settings(home=root / "home", db_path=root / "db" / "kg.lbug")
    with open_store("embedded", settings=settings) as store:
        load_guide_graph(store)
    return settings


@pytest.mark.parametrize(
    "name", ["comment_in_string_load", "comment_in_string_copy", "install", "call_timeout"]
)
def test_cli_refuses_with_one_line_and_exit_code_2(cli_settings, name) -> None:
    root = cli_settings.home.parent
    before = _files(root)
    done = _cli(cli_settings, hostile(root)[name])
    assert done.returncode == 2, done.stderr
    assert SECRET not in done.stdout + done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert _files(root) == before


def test_cli_deep_nesting_is_an_error_not_a_segfault(cli_settings) -> None:
    done = _cli(cli_settings, "RETURN " + "(" * 3000 + "1" + ")" * 3000)
    assert done.returncode == 2 and "deeper than" in done.stderr


def test_cli_still_runs_reads(cli_settings) -> None:
    done = _cli(cli_settings, "RETURN '/*' AS a, 'LOAD FROM x; */' AS b")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == [["/*", "LOAD FROM x; */"]]


@pytest.fixture(scope="module")
def client(settings, kg):
    # no extractor warm-up: its cache files in home/ would look like files the query wrote
    quiet = settings.model_copy(update={"extract_warmup": False})
    with TestClient(create_app(quiet, store=kg)) as test_client:
        yield test_client


@pytest.mark.parametrize(
    "name", ["comment_in_string_load", "comment_in_string_copy", "load_extension", "call_timeout"]
)
def test_rest_answers_400(client, tree, name) -> None:
    before = _files(tree)
    response = client.post("/v1/query", json={"cypher": hostile(tree)[name]})
    assert response.status_code == 400 and response.json()["error"] == "QueryError"
    assert SECRET not in response.text
    assert _files(tree) == before


def test_rest_deep_nesting_and_two_statements_answer_400(client) -> None:
    for cypher in ("RETURN " + "(" * 3000 + "1" + ")" * 3000, "RETURN 1; RETURN 2"):
        response = client.post("/v1/query", json={"cypher": cypher})
        assert response.status_code == 400, response.text
    assert client.get("/healthz").status_code == 200


# ---------------------------------------------------------------------- what must still work
GUIDE = guide_queries()
GUIDE_FORMS = [(q.name, q.cypher) for q in GUIDE] + [
    (f"{q.name}-neo4j", q.neo4j) for q in GUIDE if q.neo4j
]


@pytest.mark.parametrize("cypher", [c for _, c in GUIDE_FORMS], ids=[n for n, _ in GUIDE_FORMS])
def test_every_guide_query_is_accepted(cypher) -> None:
    assert check_read_only(cypher)


TRICKY_READS = {
    "RETURN '/*' AS a, 'LOAD FROM x' AS b, ';' AS c, '*/' AS d": ("/*", "LOAD FROM x", ";", "*/"),
    "RETURN \"it's\" AS a, 'say \"hi\"' AS b, 'a\\\\b' AS c, 'x\\'y' AS d": (
        "it's",
        'say "hi"',
        "a\\b",
        "x'y",
    ),
    "MATCH (c:Concept {id: 'UMLS:C0018802'}) // LOAD FROM '/etc/passwd'\n"
    "RETURN c.id AS `COPY /* ; `": ("UMLS:C0018802",),
    "/* CREATE; */ MATCH (p:Patient {id: 'P001'}) RETURN p.id AS `LOAD`, 'x' AS `a``b`;": (
        "P001",
        "x",
    ),
    "UNWIND ['INSTALL', 'ATTACH'] AS word RETURN collect(word) AS words": (["INSTALL", "ATTACH"],),
    "MATCH (c:Concept) WHERE c.name CONTAINS 'effusion' RETURN count(*) > 0 AS found": (True,),
    "RETURN list_transform([1, 2], x -> x * 2) AS doubled, CASE WHEN 1 < 2 THEN 'yes' END AS y": (
        [2, 4],
        "yes",
    ),
}


@pytest.mark.parametrize("cypher", list(TRICKY_READS))
def test_tricky_reads_run_and_return_their_values(kg, cypher) -> None:
    row = kg.query(cypher).rows[0]
    assert row == TRICKY_READS[cypher]


def test_the_database_gets_the_parsed_tokens_only() -> None:
    rendered = check_read_only('MATCH (n) /* LOAD */ RETURN "a\'b" AS x // COPY\n;')
    assert rendered == "MATCH (n) RETURN 'a\\'b' AS x"
    assert [t.value for t in tokenize("RETURN 1..3")][:4] == ["RETURN", "1", "..", "3"]


def test_function_list_matches_the_ladybug_catalogue(kg) -> None:
    rows = kg.query("CALL show_functions() RETURN name, type", row_limit=100_000).rows
    kinds: dict[str, set[str]] = {}
    for name, kind in rows:
        kinds.setdefault(name.lower(), set()).add(kind)
    readers = {"SCALAR FUNCTION", "AGGREGATE FUNCTION", "REWRITE FUNCTION"}
    for name in LADYBUG_FUNCTIONS:
        assert kinds.get(name, set()) and kinds[name] <= readers, name
    table_functions = {n for n, k in kinds.items() if k - readers}
    assert table_functions and not table_functions & READ_FUNCTIONS
    assert {"read_csv_serial", "current_setting", "copy_csv"} <= table_functions


def test_unknown_functions_are_refused() -> None:
    for cypher in ("RETURN apoc.text.join(['a'], ',')", "RETURN setseed(0.5)", "RETURN foo(1)"):
        with pytest.raises(QueryError, match="function list"):
            check_read_only(cypher)


def test_the_guide_states_the_limits_and_procedures_the_code_uses() -> None:
    from graph.cypher_docs import GUIDE_PATH, section_between
    from graph.cypher_functions import READ_PROCEDURES
    from graph.cypher_guard import MAX_CASE_DEPTH, MAX_EXPRESSION_DEPTH, MAX_QUERY_CHARS

    text = GUIDE_PATH.read_text(encoding="utf-8") + "\n## end"
    section = section_between(text, "## What the read-only path accepts", "\n## end")
    for value in (MAX_QUERY_CHARS, MAX_NESTING, MAX_EXPRESSION_DEPTH, MAX_CASE_DEPTH):
        assert f"{value:,}" in section
    named = {p.lower() for p in re.findall(r"`([\w.]+)`", section)}
    assert READ_PROCEDURES <= named
