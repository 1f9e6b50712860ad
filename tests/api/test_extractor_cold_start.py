"""Cold start of the report extractor in the product: ``kgdx extract report`` builds it once (with
progress on stderr, clean JSON on stdout) and reads it from the cache after, without importing
torch; the REST service makes it in the background at startup, so the first POST /v1/patients
finds it ready."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPORT = "FINDINGS: Small right pleural effusion. No pneumothorax."
# Runs the real CLI entry point and says afterwards which heavy libraries it imported.
CLI = """
import json, sys
from api.cli import main
sys.argv = ["kgdx", *sys.argv[1:]]
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
heavy = sorted(m for m in ("torch", "torch_geometric", "sklearn", "pandas") if m in sys.modules)
print(json.dumps({"code": code, "imported": heavy}), file=sys.stderr)
"""


def run_cli(home: Path, *args: str) -> tuple[dict, list[str], dict]:
    env = {**os.environ, "KGDX_HOME": str(home), "PYTHONPATH": str(ROOT)}
    env.pop("KGDX_DB_PATH", None)
    run = subprocess.run(
        [sys.executable, "-c", CLI, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    *log, last = run.stderr.strip().splitlines()
    status = json.loads(last)
    assert status["code"] == 0, run.stderr
    return json.loads(run.stdout), log, status


@pytest.mark.slow
def test_extract_report_builds_once_with_progress_then_reads_the_cache(tmp_path) -> None:
    first, log, status = run_cli(
        tmp_path, "extract", "report", "--kg", "seed", "--json", "--text", REPORT
    )
    assert any("building the report extractor for the seed KG" in line for line in log)
    assert any("cached in" in line for line in log)
    assert list((tmp_path / "cache" / "text-extractor").glob("*.npz"))
    found = {(f["concept_id"], f["polarity"]) for f in first["findings"]}
    assert {("UMLS:C0032227", "present"), ("UMLS:C0032326", "absent")} <= found
    second, log, status = run_cli(
        tmp_path, "extract", "report", "--kg", "seed", "--json", "--text", REPORT
    )
    assert second == first
    assert not any("building" in line for line in log)
    assert status["imported"] == []  # no torch, PyG, scikit-learn or pandas for one report


@pytest.fixture()
def seeded(settings):
    from graph.stores import open_store
    from kg_loaders.seed import read_seed_concepts

    with open_store("embedded", settings=settings) as store:
        store.upsert_concepts(read_seed_concepts())
    return settings


def test_the_service_makes_the_extractor_at_startup_for_the_first_post(seeded) -> None:
    from fastapi.testclient import TestClient

    from api.rest import create_app

    app = create_app(seeded)
    with TestClient(app) as client:
        warmup = app.state.extractor_warmup
        assert warmup is not None
        started = time.perf_counter()
        assert client.get("/healthz").status_code == 200  # answered while it warms
        health_s = time.perf_counter() - started
        warmup.join(timeout=300)
        assert not warmup.is_alive()
        assert list(seeded.resolved_extract_cache_dir.glob("text-extractor/*.npz"))
        engine = app.state.model_slot.engine
        warmed = engine.extractor
        assert not _tracked(warmed)  # the warm-up froze what it made (api/long_lived.py)
        response = client.post("/v1/patients", json={"id": "W1", "reports": [REPORT]})
        assert response.status_code == 201
        found = {(f["concept_id"], f["assertion"]) for f in response.json()["findings"]}
        assert ("UMLS:C0032326", "absent") in found
        assert engine.extractor is warmed  # the POST used the warmed extractor
    assert health_s < 5


def _tracked(thing: object) -> bool:
    """Whether the cyclic collector's generations hold ``thing`` (frozen objects are not in
    ``gc.get_objects()``: the permanent generation is not walked)."""
    import gc

    return any(held is thing for held in gc.get_objects())


def test_the_extractor_made_by_the_service_is_out_of_the_collectors_reach(seeded) -> None:
    """A full collection walked the extractor's ~270,000 objects every ~2.6 s under load, on
    the event loop (55-75 ms each, api/long_lived.py): once made, they are frozen."""
    from fastapi.testclient import TestClient

    from api.rest import create_app
    from extractors.text.extractor import ReportExtractor

    app = create_app(seeded.model_copy(update={"extract_warmup": False}))
    with TestClient(app):
        engine = app.state.model_slot.engine
        assert not engine.extractor_built
        control = ReportExtractor.__new__(ReportExtractor)  # made the same way, not frozen
        assert _tracked(control)
        made = engine.extractor  # the first report's path: made on first use
        assert engine.extractor_built
        assert not _tracked(made)
        assert not _tracked(made.nlp) and not _tracked(made.vocabulary)  # its parts too


def test_the_warm_up_can_be_turned_off(seeded) -> None:
    from fastapi.testclient import TestClient

    from api.rest import create_app

    app = create_app(seeded.model_copy(update={"extract_warmup": False}))
    with TestClient(app) as client:
        assert app.state.extractor_warmup is None
        assert client.get("/healthz").status_code == 200
    assert not seeded.resolved_extract_cache_dir.exists()


@pytest.mark.slow
def test_on_a_terminal_progress_and_logs_go_to_stderr_and_stdout_stays_json(tmp_path) -> None:
    import pty
    import threading

    leader, follower = pty.openpty()  # stderr is a terminal: Rich progress bar and log lines
    shown: list[bytes] = []

    def drain() -> None:  # read while the command runs, so a full terminal never blocks it
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:
                return
            if not chunk:
                return
            shown.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {**os.environ, "KGDX_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("KGDX_DB_PATH", None)
    command = [sys.executable, "-m", "api.cli", "extract", "report", "--kg", "seed", "--json"]
    try:
        run = subprocess.run(
            [*command, "--text", REPORT],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=follower,
            text=True,
            timeout=600,
        )
    finally:
        os.close(follower)
        reader.join(timeout=10)
        os.close(leader)
    assert run.returncode == 0
    assert json.loads(run.stdout)["findings"]  # nothing but the JSON on stdout
    terminal = b"".join(shown)
    assert b"tokenizing terms" in terminal and b"built in" in terminal
