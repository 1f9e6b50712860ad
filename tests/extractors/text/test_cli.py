"""``kgdx extract report`` and ``kgdx eval text`` through the real CLI app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def test_extract_report_text_as_json():
    result = runner.invoke(
        app,
        [
            "extract",
            "report",
            "--text",
            "FINDINGS: No pneumothorax. Small pleural effusion.",
            "--json",
            "--kg",
            "seed",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    rows = {row["name"]: row for row in payload["findings"]}
    assert rows["pneumothorax"]["polarity"] == "absent"
    assert rows["pleural effusion"]["polarity"] == "present"
    assert rows["pleural effusion"]["section"] == "findings"
    assert rows["pleural effusion"]["concept_id"] == "UMLS:C0032227"


def test_extract_report_file_as_table(fixtures):
    result = runner.invoke(
        app, ["extract", "report", str(fixtures / "text" / "report.txt"), "--kg", "seed"]
    )
    assert result.exit_code == 0, result.output
    assert "finding(s) in report" in result.output
    assert "pneumonia" in result.output


def test_extract_report_bad_bytes_is_a_clean_error(fixtures):
    result = runner.invoke(
        app, ["extract", "report", str(fixtures / "text" / "report_latin1.txt"), "--kg", "seed"]
    )
    assert result.exit_code != 0
    assert "not valid UTF-8" in str(result.exception)


def test_eval_text_prints_all_systems_and_writes_json(fixtures, tmp_path):
    out = tmp_path / "eval.json"
    result = runner.invoke(
        app,
        [
            "eval",
            "text",
            "--reports",
            str(fixtures / "text" / "reports.csv"),
            "--labels",
            str(fixtures / "text" / "labels.csv"),
            "--json",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("kgdx", "negation_blind", "negspacy_negex", "micro", "macro F1"):
        assert name in result.output
    saved = json.loads(out.read_text())
    assert [run["score"]["system"] for run in saved["runs"]] == [
        "kgdx",
        "negation_blind",
        "negspacy_negex",
    ]
