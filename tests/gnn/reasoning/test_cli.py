"""``kgdx train`` / ``kgdx eval diagnosis`` / ``kgdx diagnose`` end to end on a small slice."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def test_train_eval_diagnose(hpo_home, shared_data, tmp_path, monkeypatch):
    monkeypatch.setenv("KGDX_HOME", str(hpo_home.home))
    monkeypatch.setenv("KGDX_DB_PATH", str(hpo_home.db_path))
    lines = (shared_data / "phenopackets" / "phenopackets.jsonl").read_text().splitlines()
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    (cohort / "cases.jsonl").write_text("\n".join(lines[::12]) + "\n")
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", "--data", str(cohort), "--out", str(run), "--quick"])
    assert result.exit_code == 0, result.output
    card = json.loads((run / "card.json").read_text())
    assert card["kg"]["sources"] and len(card["kg"]["content_hash"]) == 64
    out = tmp_path / "metrics.json"
    result = runner.invoke(
        app, ["eval", "diagnosis", "--model", str(run), "--data", str(cohort), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "phenomizer" in result.output and "kgdx" in result.output
    metrics = json.loads(out.read_text())["metrics"]
    assert set(metrics) == {"kgdx", "phenomizer", "no_kg", "knn"}
    result = runner.invoke(
        app,
        [
            "diagnose",
            "--model",
            str(run),
            "--observed",
            "HP:0001191,HP:0001631",
            "--excluded",
            "HP:0001199",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    diagnoses = json.loads(result.output)["diagnoses"]
    assert diagnoses and all(0 <= d["probability"] <= 1 for d in diagnoses)
