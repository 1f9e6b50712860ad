"""``kgdx demo`` runs end to end and prints diagnoses with explanation paths and metrics."""

from __future__ import annotations

import json
import re

import pytest
from typer.testing import CliRunner


@pytest.mark.slow
def test_demo_prints_explained_diagnoses(tmp_path, monkeypatch):
    from api.cli import app

    monkeypatch.setenv("KGDX_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    # a stale, unreadable demo store from an earlier run must be replaced, not opened
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "demo.lbug").write_bytes(b"not a database")
    runner = CliRunner()
    result = runner.invoke(app, ["demo", "--patients", "3", "--epochs", "60"])
    assert result.exit_code == 0, result.output
    out = result.output
    assert len(re.findall(r"patient P\d{3} ", out)) >= 3
    assert len(re.findall(r"patient P\d{3} -HAS_FINDING-> .+ -\w+-> ", out)) >= 3
    assert "evidence:" in out and "KG: " in out
    assert re.search(r"p=0\.\d\d", out)
    assert "GNN (rgcn)" in out and "baseline: logistic regression" in out
    assert (tmp_path / "home" / "demo.lbug").read_bytes()[:14] != b"not a database"
    # the model's input leaves out the impression, and says so
    assert "model input: the findings of all sections except impression" in out
    # the demo ends with the exact command that reads its store; it returns the predictions
    from api.commands.demo import DEMO_QUERY, query_command_line

    db = tmp_path / "home" / "demo.lbug"
    assert query_command_line(db) in out.replace("\n", "")
    query = runner.invoke(app, ["query", "--db", str(db), DEMO_QUERY, "--json"])
    assert query.exit_code == 0, query.output
    assert len(json.loads(query.stdout)["rows"]) == 5
