"""``kgdx kg build`` / ``stats`` / ``sources`` through the real CLI app."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from api.cli import app


def test_build_then_stats(fixtures, tmp_path, monkeypatch):
    monkeypatch.setenv("KGDX_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    sources = f"hpo={fixtures / 'obo' / 'mini-hp.obo'},umls={fixtures / 'umls'}"
    built = runner.invoke(app, ["kg", "build", "--sources", sources])
    assert built.exit_code == 0, built.output
    assert "Relations by type" in built.output and "FINDING_SITE" in built.output
    assert "mapped_to_nonstandard" in built.output  # unknown relation listed
    crosswalk = built.output.split("Crosswalk", 1)[1].splitlines()
    header = next(line for line in crosswalk if "count" in line)
    assert "measure" in header and header.count("count") == 1  # was "count | count"
    stats = runner.invoke(app, ["kg", "stats", "--json"])
    assert stats.exit_code == 0, stats.output
    payload = json.loads(stats.output)
    # 10 UMLS + 8 HPO terms; cardiomegaly and pleural effusion merge into their UMLS nodes
    assert payload["nodes"]["Concept"] == 16
    assert payload["relations"]["FINDING_SITE"] == 4


def test_build_json_and_bad_source(fixtures, tmp_path, monkeypatch):
    monkeypatch.setenv("KGDX_HOME", str(tmp_path / "home"))
    runner = CliRunner()
    out = runner.invoke(app, ["kg", "build", "-s", f"umls={fixtures / 'umls'}", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["concepts_by_kind"]["disease"] == 7
    bad = runner.invoke(app, ["kg", "build", "-s", "nonsense"])
    assert bad.exit_code != 0
    assert "NAME=PATH" in str(bad.exception)


def test_sources_lists_readers_and_defaults():
    out = CliRunner().invoke(app, ["kg", "sources"])
    assert out.exit_code == 0
    assert "umls" in out.output and "hpoa=" in out.output and "symp.obo.gz" in out.output
