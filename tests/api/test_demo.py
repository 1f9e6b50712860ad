"""``kgdx demo`` runs end to end and prints diagnoses with explanation paths and metrics, and
leaves a store and model that ``kgdx serve`` serves without configuration."""

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
    result = runner.invoke(app, ["demo", "--patients", "3", "--no-rare"])  # rare: its own test
    assert result.exit_code == 0, result.output
    out = result.output
    assert len(re.findall(r"patient P\d{3} ", out)) >= 3
    assert len(re.findall(r"patient P\d{3} -HAS_FINDING(_ABSENT)?-> .+ -\w+-> ", out)) >= 3
    assert "evidence: observed: " in out and "KG: HAS_" in out and "annotation frequency" in out
    assert re.search(r"p=0\.\d\d", out)
    assert "kgdx (sage, KG-scored)" in out and "baseline: Phenomizer (Resnik)" in out
    assert "ablation: no KG" in out and "explanation fidelity on" in out
    assert re.search(r"scored through the KG; saved to", out)
    # the complaint: a textbook pneumonia report must rank pneumonia first (computed by
    # the demo from the trained model, not asserted by it)
    assert re.search(r"pneumonia report .*pneumonia at rank 1 of \d+", out.replace("\n", " "))
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

    # `kgdx serve` with nothing configured serves this store and model
    from api.commands.serve import demo_fallback
    from graph.settings import Settings

    model_dir = tmp_path / "home" / "models" / "demo"
    assert (model_dir / "config.json").is_file() and (model_dir / "card.json").is_file()
    assert demo_fallback(Settings(home=tmp_path / "home")) == {
        "KGDX_DB_PATH": str(db),
        "KGDX_MODEL_DIR": str(model_dir),
    }
    assert demo_fallback(Settings(home=tmp_path / "home", db_path=tmp_path / "mine.lbug")) == {}


def test_serve_falls_back_to_the_demo_only_when_nothing_is_there(tmp_path):
    from api.commands.serve import demo_fallback
    from graph.settings import Settings

    settings = Settings(home=tmp_path)
    assert demo_fallback(settings) == {}  # no demo either
    (tmp_path / "demo.lbug").mkdir()
    assert demo_fallback(settings) == {"KGDX_DB_PATH": str(tmp_path / "demo.lbug")}
    (tmp_path / "kg.lbug").mkdir()  # the user's own store wins
    assert demo_fallback(settings) == {}
