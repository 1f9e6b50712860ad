"""``kgdx diagnose`` / ``kgdx train`` on bad input: the project's errors, saying what to do.

Obsolete and alternative HPO ids are read as their current term and reported; unknown ids are
reported and ignored; a patient with no findings, a token that is no HPO id, a disease that is
not a candidate, a run trained on another KG and a malformed cohort line are refused.
"""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from api.cli import app
from graph.errors import ConfigError, InputError, ModelError, UnknownConceptError

runner = CliRunner()
ASD, CARPAL, TRIPHALANGEAL = "HP:0001631", "HP:0001191", "HP:0001199"


@pytest.fixture(scope="module")
def run_dir(small_run, tmp_path_factory):
    from gnn.reasoning.run import save_run

    reasoner, report, _ = small_run
    return save_run(
        reasoner,
        tmp_path_factory.mktemp("cli_run") / "run",
        task="phenopackets",
        report=report,
        split={},
    )


@pytest.fixture()
def env(hpo_home, monkeypatch):
    monkeypatch.setenv("KGDX_HOME", str(hpo_home.home))
    monkeypatch.setenv("KGDX_DB_PATH", str(hpo_home.db_path))
    monkeypatch.delenv("KGDX_MODEL_DIR", raising=False)


def _diagnose(run_dir, *args: str):
    return runner.invoke(app, ["diagnose", "--model", str(run_dir), *args])


def test_obsolete_and_alternative_ids_are_read_and_reported(env, run_dir, hpo_kg, shared_data):
    from gnn.reasoning.hpo_ids import read_alt_ids, read_replaced_by

    hp_obo = shared_data / "kg" / "hpo" / "hp.obo"
    obsolete, new = next(
        (o, n)
        for o, n in read_replaced_by(hp_obo).items()
        if o not in hpo_kg.hpo_index and n in hpo_kg.hpo_index
    )
    alt = next(a for a in sorted(read_alt_ids(hp_obo)) if a in hpo_kg.hpo_index)
    result = _diagnose(
        run_dir,
        "--observed",
        f"{obsolete},{alt},{ASD}",
        "--excluded",
        f"{ASD},{TRIPHALANGEAL}",
        "--json",
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    notes = "\n".join(out["notes"])
    assert f"obsolete HPO id {obsolete} replaced by {new}" in notes
    assert f"{alt} is an alternative id of " in notes
    assert f"both observed and excluded, read as observed: {ASD}" in notes
    # the replaced term is a finding of the patient: its path names the new id, not the old one
    findings = {p["finding"] for d in out["diagnoses"] for p in d["paths"]}
    assert obsolete not in findings and alt not in findings
    unknown = _diagnose(run_dir, "--observed", f"HP:9999999,{ASD}", "--json")
    assert "unknown HPO id ignored: HP:9999999" in json.loads(unknown.output)["notes"]


def test_a_named_disease_gets_its_rank_probability_and_paths(env, run_dir):
    top = json.loads(
        _diagnose(run_dir, "--observed", f"{CARPAL},{ASD}", "--top", "2", "--json").output
    )
    first, second = top["diagnoses"]
    for rank, d in ((1, first), (2, second)):
        result = _diagnose(run_dir, "--observed", f"{CARPAL},{ASD}", "--disease", d["id"], "--json")
        assert result.exit_code == 0, result.output
        (named,) = json.loads(result.output)["diagnoses"]
        assert named["id"] == d["id"] and named["rank"] == rank
        assert named["probability"] == pytest.approx(d["probability"], rel=1e-5)
        assert named["paths"] and all(d["id"] in p["text"] for p in named["paths"])
    text = _diagnose(run_dir, "--observed", f"{CARPAL},{ASD}", "--disease", second["id"])
    assert text.output.startswith("rank 2 of ") and second["name"] in text.output


@pytest.mark.parametrize(
    ("args", "error", "says"),
    [
        (["--observed", "seizure"], InputError, "'seizure' is not an HPO id"),
        (["--observed", " , "], InputError, "the patient has no findings"),
        ([], InputError, "the patient has no findings"),
        (["--observed", "HP:9999999"], InputError, "no finding that is an HPO term of the KG"),
        (["--observed", ASD, "--disease", "OMIM:000000"], UnknownConceptError, "not a candidate"),
    ],
)
def test_bad_patient_input_is_refused(env, run_dir, args, error, says):
    result = _diagnose(run_dir, *args)
    assert result.exit_code != 0 and isinstance(result.exception, error), result.output
    assert says in str(result.exception)


def test_a_run_of_another_kg_release_is_refused_unless_forced(env, run_dir, tmp_path):
    other = tmp_path / "other"
    shutil.copytree(run_dir, other)
    card = json.loads((other / "card.json").read_text())
    card["kg"]["content_hash"] = "0" * 64
    (other / "card.json").write_text(json.dumps(card))
    result = _diagnose(other, "--observed", ASD)
    assert isinstance(result.exception, ModelError)
    assert "another KG release" in str(result.exception) and "--force" in str(result.exception)
    assert _diagnose(other, "--observed", ASD, "--force").exit_code == 0
    missing = _diagnose(tmp_path / "nothing", "--observed", ASD)
    assert isinstance(missing.exception, ModelError) and "kgdx train" in str(missing.exception)
    no_model = runner.invoke(app, ["diagnose", "--observed", ASD])
    assert isinstance(no_model.exception, ConfigError) and "--model" in str(no_model.exception)


def test_train_names_the_file_and_line_of_a_malformed_record(tmp_path, monkeypatch):
    monkeypatch.setenv("KGDX_HOME", str(tmp_path / "home"))  # refused before any KG is read
    cohort = tmp_path / "cohort"
    cohort.mkdir()
    good = {"id": "a", "observed": [ASD], "diseases": ["OMIM:142900"]}
    (cohort / "cases.jsonl").write_text(json.dumps(good) + "\n\n{not json\n")
    result = runner.invoke(app, ["train", "--data", str(cohort), "--out", str(tmp_path / "run")])
    assert isinstance(result.exception, InputError)
    assert f"{cohort / 'cases.jsonl'}:3" in str(result.exception)
    assert not (tmp_path / "run").exists()  # nothing written


REPORT = "The patient has an atrial septal defect and seizures. There is no triphalangeal thumb."


def test_report_text_and_a_stored_patient_go_through_the_engine(
    hpo_home, run_dir, tmp_path, monkeypatch
):
    """--text / --report extract findings (nothing stored); --patient and `kgdx explain` read
    one stored patient; an unknown patient or disease is refused, saying what to do."""
    from api.engine import Engine
    from graph.records import Patient, Report
    from graph.settings import Settings

    home = tmp_path / "home"  # a copy of the session's KG store, so a stored patient stays here
    home.mkdir()
    shutil.copy(hpo_home.home / "kg_build.json", home)
    shutil.copy(hpo_home.db_path, home / hpo_home.db_path.name)
    settings = Settings(home=home, db_path=home / hpo_home.db_path.name)
    monkeypatch.setenv("KGDX_HOME", str(home))
    monkeypatch.setenv("KGDX_DB_PATH", str(settings.db_path))
    report = tmp_path / "report.txt"
    report.write_text(REPORT)

    by_text = _diagnose(run_dir, "--text", REPORT, "--top", "2", "--json")
    assert by_text.exit_code == 0, by_text.output
    out = json.loads(by_text.output)
    found = {(f["name"].lower(), f["assertion"]) for f in out["findings"]}
    assert ("atrial septal defect", "present") in found
    assert ("triphalangeal thumb", "absent") in found
    assert len(out["diagnoses"]) == 2 and out["diagnoses"][0]["paths"]
    assert out["diagnoses"][0]["paths"][0]["nodes"][0] == "query"
    by_file = _diagnose(run_dir, "--report", str(report), "--top", "2", "--json")
    assert json.loads(by_file.output)["diagnoses"] == out["diagnoses"]
    with Engine(settings=settings) as engine:
        assert engine.store.counts().nodes.get("Patient", 0) == 0  # --text stored nothing
        engine.ingest(patients=[Patient(id="P1", reports=(Report(id="r1", text=REPORT),))])

    stored = _diagnose(run_dir, "--patient", "P1", "--top", "2", "--json")
    assert stored.exit_code == 0, stored.output
    top = json.loads(stored.output)["diagnoses"]
    assert [d["id"] for d in top] == [d["id"] for d in out["diagnoses"]]
    second = top[1]
    explained = runner.invoke(app, ["explain", "P1", second["id"], "--model", str(run_dir)])
    assert explained.exit_code == 0, explained.output
    assert second["name"] in explained.output and "patient P1 -HAS_FINDING->" in explained.output
    assert f"p={second['probability']:.3f}" in explained.output

    unknown = runner.invoke(app, ["explain", "P9", second["id"], "--model", str(run_dir)])
    assert isinstance(unknown.exception, InputError)
    assert "no patient 'P9'" in str(unknown.exception) and "kgdx query" in str(unknown.exception)
    not_candidate = runner.invoke(app, ["explain", "P1", "OMIM:000000", "--model", str(run_dir)])
    assert isinstance(not_candidate.exception, InputError)
    assert "OMIM:000000" in str(not_candidate.exception)
    both = _diagnose(run_dir, "--text", REPORT, "--observed", ASD)
    assert isinstance(both.exception, InputError) and "one way" in str(both.exception)
    empty = _diagnose(run_dir, "--text", "Nothing to see here.")
    assert isinstance(empty.exception, InputError)
