"""Data safety (issue 11, findings 9-11): no command deletes a database another process has open,
killed builds leave no staging folders behind, and a mistyped report path is an error.

Every test runs real processes on real LadybugDB files: a holder process opens the store and
waits, the command under test runs as ``python -m api.cli`` (so its exit code is the one a
shell sees), and the holder then proves its data are still there.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from graph.errors import StoreError

ROOT = Path(__file__).resolve().parents[2]

# Opens an embedded store read-write (as `kgdx serve` does), stores a patient, says "ready", then
# on a line from stdin reads the patient back and prints it.
HOLDER = textwrap.dedent(
    """
    import sys
    from graph.records import Patient, Report
    from graph.settings import Settings
    from graph.stores.embedded import EmbeddedStore

    store = EmbeddedStore(Settings(home=sys.argv[1]), path=sys.argv[2])
    store.upsert_patient(Patient(id="P-held", reports=(Report(id="R1", text="No effusion."),)))
    print("ready", flush=True)
    sys.stdin.readline()
    print(store.get_patient("P-held").reports[0].text, flush=True)
    store.close()
    """
)
# Opens the database read-only (as a query worker may): LadybugDB takes no lock for that.
READER = textwrap.dedent(
    """
    import sys, ladybug
    db = ladybug.Database(sys.argv[1], read_only=True)
    rows = ladybug.Connection(db).execute("MATCH (p:Patient) RETURN p.id").get_all()
    print("ready", rows, flush=True)
    sys.stdin.readline()
    """
)
# Holds a staging folder of a build of argv[1] (the real helper) and waits.
BUILDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from kg_loaders.staging import staging_folder

    with staging_folder(Path(sys.argv[1])) as folder:
        (folder / "part.parquet").write_bytes(b"x" * 100_000)
        print(folder, flush=True)
        time.sleep(600)
    """
)


def _spawn(script: str, *args: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    first = proc.stdout.readline().strip()
    if not first:
        proc.kill()
        pytest.fail(f"helper process did not start: {proc.stderr.read()}")
    return proc, first


def _finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0, err
    return out.strip()


def _kgdx(*args: str, env: dict[str, str], stdin: str | None = None, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "-m", "api.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
        cwd=ROOT,
        timeout=timeout,
    )


@pytest.fixture()
def home(tmp_path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir()
    return folder


# ---------------------------------------------------------------- finding 9: kgdx demo
def test_demo_refuses_a_database_a_server_has_open(home):
    db = home / "demo.lbug"
    holder, _ = _spawn(HOLDER, str(home), str(db))
    try:
        before = db.stat().st_ino
        result = _kgdx("demo", "--epochs", "1", env={"KGDX_HOME": str(home)})
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"is open in process {holder.pid}" in result.stderr
        assert "kgdx demo" in result.stderr and "Nothing was deleted" in result.stderr
        assert "Traceback" not in result.stderr
        assert db.stat().st_ino == before and db.with_name("demo.lbug.wal").exists()
        assert _finish(holder) == "No effusion."  # the server's patient survived
    finally:
        holder.kill()
        holder.wait()
    from graph.settings import Settings
    from graph.stores.embedded import EmbeddedStore

    with EmbeddedStore(Settings(home=home), path=db) as store:  # and it is on disk
        assert store.patient_ids() == ["P-held"]


def test_demo_refuses_a_database_open_read_only(home):
    db = home / "demo.lbug"
    _finish(_spawn(HOLDER, str(home), str(db))[0])  # a store with a patient, then closed
    reader, first = _spawn(READER, str(db))
    assert "P-held" in first
    try:
        result = _kgdx("demo", "--epochs", "1", env={"KGDX_HOME": str(home)})
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"is open in process {reader.pid}" in result.stderr
        assert db.exists()
    finally:
        reader.kill()
        reader.wait()


@pytest.mark.slow
def test_demo_replaces_the_database_once_nobody_holds_it(home):
    db = home / "demo.lbug"
    _finish(_spawn(HOLDER, str(home), str(db))[0])
    result = _kgdx("demo", "--patients", "1", "--epochs", "20", env={"KGDX_HOME": str(home)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "held-out" in result.stdout.lower()
    from graph.settings import Settings
    from graph.stores.embedded import EmbeddedStore

    with EmbeddedStore(Settings(home=home), path=db) as store:
        ids = store.patient_ids()
    assert "P-held" not in ids and len(ids) > 10  # the demo cohort replaced the old store


def test_a_held_database_cannot_be_opened_for_writing_meanwhile(home):
    """The check and the replacement do not race: while the lock is held, no writer gets in."""
    from graph.stores.lock import exclusive_database

    db = home / "x.lbug"
    _finish(_spawn(HOLDER, str(home), str(db))[0])
    with exclusive_database(db, action="replace it"):
        opener = subprocess.run(
            [sys.executable, "-c", HOLDER, str(home), str(db)],
            capture_output=True,
            text=True,
            input="go\n",
            cwd=ROOT,
            timeout=60,
        )
        assert opener.returncode != 0 and "lock" in opener.stderr.lower()
    _finish(_spawn(HOLDER, str(home), str(db))[0])  # released afterwards


def test_this_process_holding_the_database_is_refused_and_keeps_its_lock(store):
    from graph.stores.lock import exclusive_database

    with pytest.raises(StoreError, match="this process"):
        with exclusive_database(store.path, action="replace it"):
            pass
    opener = subprocess.run(
        [sys.executable, "-c", HOLDER, str(store.path.parent), str(store.path)],
        capture_output=True,
        text=True,
        input="go\n",
        cwd=ROOT,
        timeout=60,
    )
    assert opener.returncode != 0  # LadybugDB's own lock was not dropped by the check


# ---------------------------------------------------------------- finding 9: kg build swap
@pytest.fixture()
def small_sources(fixtures) -> list[str]:
    return [f"umls={fixtures / 'umls'}", f"hpo={fixtures / 'obo' / 'mini-hp.obo'}"]


def _staging_entries(db: Path) -> list[str]:
    return sorted(p.name for p in db.parent.glob(f".{db.name}.build-*"))


def test_kg_build_refuses_to_swap_under_a_server(settings, small_sources):
    from kg_loaders.build import build_kg

    build_kg(sources=small_sources, settings=settings)
    db = settings.resolved_db_path
    holder, _ = _spawn(HOLDER, str(settings.home), str(db))
    try:
        with pytest.raises(StoreError, match=f"is open in process {holder.pid}"):
            build_kg(sources=small_sources, settings=settings)
        assert _finish(holder) == "No effusion."
    finally:
        holder.kill()
        holder.wait()
    assert _staging_entries(db) == []


# ---------------------------------------------------------------- finding 10: staging folders
def test_build_removes_staging_of_dead_builders_and_keeps_live_ones(
    settings, small_sources, caplog
):
    from kg_loaders.build import build_kg

    db = settings.resolved_db_path
    db.parent.mkdir(parents=True, exist_ok=True)
    killed, killed_folder = _spawn(BUILDER, str(db))
    killed.send_signal(signal.SIGKILL)  # as the OOM killer would: no cleanup runs
    killed.wait()
    legacy = db.parent / f".{db.name}.build-abc123"  # left by a kgdx without markers
    (legacy / "spool").mkdir(parents=True)
    live, live_folder = _spawn(BUILDER, str(db))
    assert Path(killed_folder).is_dir() and Path(live_folder).is_dir()
    kgdx_logger = logging.getLogger("kgdx")
    if not kgdx_logger.propagate:  # `setup_logging` ran in this session: capture directly
        kgdx_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="kgdx"):
            build_kg(sources=small_sources, settings=settings)
    finally:
        kgdx_logger.removeHandler(caplog.handler)
        live.kill()
        live.wait()
    assert not Path(killed_folder).exists() and not legacy.exists()
    assert Path(live_folder).is_dir() and Path(live_folder + ".lock").is_file()
    assert _staging_entries(db) == sorted(
        [Path(live_folder).name, Path(live_folder).name + ".lock"]
    )
    removed = [r.getMessage() for r in caplog.records if "staging folder" in r.getMessage()]
    assert len(removed) == 2 and any(f"pid {killed.pid}" in m for m in removed), removed


def test_kg_build_command_removes_a_killed_builds_staging(tmp_path, fixtures):
    db = tmp_path / "kg.lbug"
    killed, killed_folder = _spawn(BUILDER, str(db))
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    result = _kgdx(
        "kg",
        "build",
        "--sources",
        f"umls={fixtures / 'umls'}",
        "--json",
        env={"KGDX_HOME": str(tmp_path / "home"), "KGDX_DB_PATH": str(db)},
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["concepts"] > 0
    assert not Path(killed_folder).exists() and _staging_entries(db) == []
    assert "removed the staging folder of an interrupted KG build" in result.stderr
    assert killed_folder in result.stderr


# ---------------------------------------------------------------- finding 11: extract report
def test_extract_report_refuses_a_missing_path(tmp_path):
    result = _kgdx("extract", "report", str(tmp_path / "missing_report.txt"), env={})
    assert result.returncode == 2
    assert "no such report file" in result.stderr and "--text" in result.stderr
    assert "findings" not in result.stdout


def test_extract_report_refuses_a_directory(tmp_path):
    result = _kgdx("extract", "report", str(tmp_path), env={})
    assert result.returncode == 2 and "is a directory" in result.stderr


def test_extract_report_needs_exactly_one_report(tmp_path):
    assert _kgdx("extract", "report", env={}).returncode == 2
    both = _kgdx("extract", "report", str(tmp_path), "--text", "No effusion.", env={})
    assert both.returncode == 2 and "give one report" in both.stderr


def _findings(result) -> dict[str, str]:
    assert result.returncode == 0, result.stderr
    return {row["name"]: row["polarity"] for row in json.loads(result.stdout)["findings"]}


REPORT = "FINDINGS: No pneumothorax. Small pleural effusion."


def test_extract_report_reads_text_stdin_and_a_file(tmp_path):
    flags = ("--kg", "seed", "--json")
    as_text = _findings(_kgdx("extract", "report", "--text", REPORT, *flags, env={}))
    from_stdin = _findings(_kgdx("extract", "report", "-", *flags, env={}, stdin=REPORT))
    report = tmp_path / "report.txt"
    report.write_text(REPORT, encoding="utf-8")
    from_file = _findings(_kgdx("extract", "report", str(report), *flags, env={}))
    assert as_text == from_stdin == from_file
    assert as_text["pneumothorax"] == "absent" and as_text["pleural effusion"] == "present"
