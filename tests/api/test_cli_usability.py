"""What a new user meets on the terminal (issue 12, item 8): ``kgdx --version``; reading commands
that work while ``kgdx serve`` holds the store and never answer 0 rows from a database that is not
there; the demo's store named where a query looks for it; tables that keep ids whole at 80
columns; probabilities with 3 decimals (``--json`` keeps full precision)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from graph.errors import StoreError
from graph.records import Diagnosis
from graph.settings import Settings
from graph.stores import open_store
from kg_loaders.seed import read_seed_concepts
from tests.docs.conftest import load_guide_graph

ROOT = Path(__file__).resolve().parents[2]
LONG_P = 0.8731234567891234
runner = CliRunner()


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """A kgdx home holding only the demo's database (what `make demo` leaves), with one
    prediction of a 16-digit probability."""
    folder = tmp_path_factory.mktemp("home")
    settings = Settings(home=folder, db_path=folder / "demo.lbug")
    with open_store("embedded", settings=settings) as store:
        load_guide_graph(store)
        store.save_predictions(
            "P001",
            [Diagnosis(concept_id="UMLS:C0018802", name="chf", probability=LONG_P, model_id="m")],
        )
    return folder


@pytest.fixture()
def env(home, monkeypatch) -> dict[str, str]:
    values = {"KGDX_HOME": str(home), "KGDX_STORE": "embedded", "COLUMNS": "80"}
    monkeypatch.delenv("KGDX_DB_PATH", raising=False)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "api.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"kgdx {version}"


def test_a_query_of_a_store_that_is_not_there_names_the_demos_store(env, home):
    result = runner.invoke(app, ["query", "MATCH (p:Patient) RETURN p.id"])
    assert isinstance(result.exception, StoreError)
    message = str(result.exception)
    assert f"--db {home / 'demo.lbug'}" in message
    assert not (home / "kg.lbug").exists(), "a reading command must not create an empty store"


def test_the_demos_query_line_reads_the_demos_store(env, home):
    from api.commands.demo import DEMO_QUERY, query_command_line

    line = query_command_line(home / "demo.lbug")
    assert line.startswith("kgdx query --db ") and DEMO_QUERY in line
    result = runner.invoke(app, ["query", "--db", str(home / "demo.lbug"), DEMO_QUERY, "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    assert rows and rows[0][2] == LONG_P  # JSON: full precision


def test_the_readme_query_returns_rows_from_the_demos_store(env, home):
    """The Researchers example of README.md, run as written against the demo's store."""
    readme = (ROOT / "README.md").read_text()
    line = next(x for x in readme.splitlines() if "kgdx query --db" in x and "$name" in x)
    cypher = re.search(r'"(MATCH .*?)"', line).group(1).replace("\\$", "$")
    param = re.search(r"--param (\w+)='([^']*)'", line)
    assert "--db .kgdx/demo.lbug" in line
    result = runner.invoke(
        app,
        ["query", "--db", str(home / "demo.lbug"), cypher, "--param", "=".join(param.groups())],
    )
    assert result.exit_code == 0, result.output
    assert re.search(r"\bP00\d\b", result.stdout)


def _holder(path: Path) -> subprocess.Popen:
    """Another process holding the database read-write, as `kgdx serve` does."""
    code = (
        "import sys, time; from graph.settings import Settings; "
        "from graph.stores.embedded import EmbeddedStore; "
        f"s = EmbeddedStore(Settings(db_path={str(path)!r})); print('held'); sys.stdout.flush(); "
        "time.sleep(120)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_reading_commands_work_while_another_process_writes_to_the_store(env, home, tmp_path):
    db = home / "demo.lbug"
    holder = _holder(db)
    try:
        query = runner.invoke(app, ["query", "--db", str(db), "MATCH (p:Patient) RETURN count(p)"])
        assert query.exit_code == 0, query.output
        assert re.search(r"\b5\b", query.stdout)
        stats = runner.invoke(app, ["kg", "stats", "--db", str(db), "--json"])
        assert stats.exit_code == 0, stats.output
        assert json.loads(stats.stdout)["nodes"]["Patient"] == 5
        out = tmp_path / "import"
        export = runner.invoke(app, ["export", "neo4j-import", str(out), "--db", str(db)])
        assert export.exit_code == 0, export.output
        assert (out / "nodes_Patient.csv").is_file()
        # a writing command is still refused while the other process holds the store
        with pytest.raises(StoreError):
            open_store("embedded", settings=Settings(db_path=db))
    finally:
        holder.kill()
        holder.wait()


def test_a_read_only_store_refuses_writes(home):
    settings = Settings(home=home, db_path=home / "demo.lbug")
    with open_store("embedded", settings=settings, read_only=True) as store:
        with pytest.raises(StoreError, match="read-only"):
            store.upsert_concepts(read_seed_concepts()[:1])
        with pytest.raises(StoreError, match="read-only"):
            store.delete_patient("P001")


def _lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def test_query_table_keeps_ids_whole_and_rounds_probabilities_at_80_columns(env, home):
    cypher = (
        "MATCH (p:Patient)-[:HAS_PREDICTION]->(x:Prediction)-[:PREDICTS]->(c:Concept) "
        "RETURN p.id AS patient, x.id AS prediction, c.id AS concept, c.name AS name, "
        "x.probability AS probability, x.model_id AS model ORDER BY probability DESC"
    )
    result = runner.invoke(app, ["query", "--db", str(home / "demo.lbug"), cypher])
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    assert max(len(line) for line in lines) <= 80
    text = "\n".join(lines)
    assert "P001/m/UMLS:C0018802" in text  # an id of 20 characters, on one line
    assert "UMLS:C0018802" in text and "0.873" in text
    assert "0.8731234567891234" not in text and "0.87312" not in text


def test_extract_report_table_keeps_concept_ids_whole_at_80_columns(env):
    report = (
        "FINDINGS: Moderate right pleural effusion. No pneumothorax. The heart is enlarged, "
        "possibly cardiomegaly.\n\nIMPRESSION: Congestive heart failure."
    )
    result = runner.invoke(app, ["extract", "report", "--kg", "seed", "--text", report])
    assert result.exit_code == 0, result.output
    lines = _lines(result.stdout)
    assert max(len(line) for line in lines) <= 80
    for concept_id in ("UMLS:C0032227", "UMLS:C0032326", "UMLS:C0018800", "UMLS:C0018802"):
        assert concept_id in result.stdout, f"{concept_id} split across lines"
    assert re.search(r"│\s+1\.000 │", result.stdout)  # confidence: 3 decimals


def test_human_numbers():
    from api.commands.table import human_cell, human_number

    assert human_number(LONG_P) == "0.873"
    assert human_number(1.2e-05) == "1.2e-05"  # never a misleading 0.000
    assert human_number(0.0) == "0.000"
    assert human_cell([LONG_P, "x"]) == '[0.873, "x"]'
    assert human_cell(None) == "-" and human_cell(3) == "3" and human_cell(True) == "true"


def test_entry_point_reads_the_store_while_it_is_held(home):
    db = home / "demo.lbug"
    holder = _holder(db)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "api.cli", "query", "--db", str(db), "--json",
             "MATCH (c:Concept) RETURN count(c)"],
            capture_output=True, text=True, timeout=120, cwd=ROOT,
            env={**os.environ, "KGDX_HOME": str(home)},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["rows"] == [[len(read_seed_concepts())]]
    finally:
        holder.kill()
        holder.wait()


def test_query_json_has_no_infinity(env, home):
    result = runner.invoke(
        app, ["query", "--db", str(home / "demo.lbug"), "--json", "RETURN 1e309 AS x, 0.5 AS y"]
    )
    assert result.exit_code == 0, result.output
    assert "Infinity" not in result.stdout
    assert json.loads(result.stdout)["rows"] == [[None, 0.5]]


def test_extract_report_refuses_a_device_and_an_oversized_report(env, tmp_path, monkeypatch):
    from graph.errors import InputError

    device = runner.invoke(app, ["extract", "report", "--kg", "seed", "/dev/zero"])
    assert isinstance(device.exception, InputError), device.output
    assert "not a regular file" in str(device.exception)
    monkeypatch.setenv("KGDX_MAX_REPORT_CHARS", "100")
    big = tmp_path / "big.txt"
    big.write_text("No pleural effusion. " * 50)
    for args, stdin in (
        ([str(big)], None),
        (["-"], big.read_text()),
        (["--text", "x" * 101], None),
    ):
        result = runner.invoke(app, ["extract", "report", "--kg", "seed", *args], input=stdin)
        assert isinstance(result.exception, InputError), result.output
        assert "KGDX_MAX_REPORT_CHARS" in str(result.exception)


def test_extract_report_reads_the_store_while_another_process_writes_to_it(env, home, monkeypatch):
    db = home / "demo.lbug"
    monkeypatch.setenv("KGDX_DB_PATH", str(db))
    holder = _holder(db)
    try:
        result = runner.invoke(
            app,
            ["extract", "report", "--kg", "store", "--json", "--text", "FINDINGS: Cardiomegaly."],
        )
        assert result.exit_code == 0, result.output
        found = json.loads(result.stdout)["findings"]
        assert [(f["concept_id"], f["section"]) for f in found] == [("UMLS:C0018800", "findings")]
    finally:
        holder.kill()
        holder.wait()


def test_eval_text_on_the_store_while_another_process_writes_to_it(env, home, monkeypatch):
    fixtures = ROOT / "tests" / "fixtures" / "text"
    db = home / "demo.lbug"
    monkeypatch.setenv("KGDX_DB_PATH", str(db))
    holder = _holder(db)
    try:
        result = runner.invoke(
            app,
            ["eval", "text", "--kg", "store", "--reports", str(fixtures / "reports.csv"),
             "--labels", str(fixtures / "labels.csv")],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert "negation_blind" in result.output
    finally:
        holder.kill()
        holder.wait()
