"""``kgdx kg compact``: a grown embedded database rewritten without its dead rows, the same
content before and after, and every way it can fail leaving the database as it was."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

import kg_loaders.compact as compact
from api.cli import app
from graph.errors import StoreError
from graph.records import Patient, Report
from graph.settings import Settings
from graph.stores.embedded import EmbeddedStore
from tests.docs.conftest import load_guide_graph
from tests.kg_loaders.killed_writer import commit_then_die

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def grown_file(tmp_path_factory) -> Path:
    """A database with the seed KG and the guide's patients, grown the way a server's is: 500
    saves of predictions that changed (each deletes the rows it replaces and creates new ones),
    100 rewrites of one patient's report, and 40 patients of 1 MB of reports each, deleted."""
    folder = tmp_path_factory.mktemp("grown")
    settings = Settings(home=folder, db_path=folder / "kg.lbug")
    with EmbeddedStore(settings) as store:
        load_guide_graph(store)
        stored = {pid: store.get_predictions(pid) for pid in store.patient_ids()}
        for turn in range(100):
            for pid, predictions in stored.items():
                store.save_predictions(
                    pid,
                    [
                        p.diagnosis.model_copy(update={"probability": (turn % 90 + 1) / 100})
                        for p in predictions
                    ],
                )
        for turn in range(100):
            text = f"Turn {turn}: small left pleural effusion. No pneumothorax. " * 20
            store.upsert_patient(Patient(id="GROWN", reports=(Report(id="R1", text=text),)))
        big = "Stable cardiomegaly without pleural effusion or pneumothorax. " * 3200
        for n in range(40):
            reports = tuple(Report(id=f"R{i}", text=f"{n} {i} {big}") for i in range(5))
            store.upsert_patient(Patient(id=f"GONE{n}", reports=reports))
        for n in range(40):
            store.delete_patient(f"GONE{n}")
    assert not folder.joinpath("kg.lbug.wal").exists()  # all in the one file that is copied
    return settings.db_path


def _grown(tmp_path: Path, grown_file: Path) -> Settings:
    """A copy of the grown database in ``tmp_path`` (``kg.lbug``), and its settings."""
    shutil.copyfile(grown_file, tmp_path / "kg.lbug")
    return Settings(home=tmp_path, db_path=tmp_path / "kg.lbug")


def _everything(settings: Settings) -> tuple:
    with EmbeddedStore(settings, read_only=True) as store:
        patients = {pid: store.get_patient(pid) for pid in store.patient_ids()}
        predictions = {pid: store.get_predictions(pid) for pid in patients}
        return (
            store.counts(),
            sorted(c.model_dump_json() for c in store.iter_concepts()),
            sorted(r.model_dump_json() for r in store.iter_relations()),
            patients,
            predictions,
        )


def _leftovers(settings: Settings) -> list[Path]:
    return [p for p in settings.db_path.parent.iterdir() if p.name.startswith(".kg.lbug.")]


def _holder(settings: Settings) -> subprocess.Popen:
    """Another process holding the database open for writing until its stdin closes; it prints
    ``open`` once it has it."""
    program = (
        "import sys; from graph.settings import Settings; "
        "from graph.stores.embedded import EmbeddedStore; "
        f"s = EmbeddedStore(Settings(home={str(settings.home)!r}, "
        f"db_path={str(settings.db_path)!r})); print('open', flush=True); sys.stdin.read()"
    )
    return subprocess.Popen(
        [sys.executable, "-c", program],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_grown_database_is_smaller_and_holds_the_same(tmp_path, grown_file):
    settings = _grown(tmp_path, grown_file)
    before = _everything(settings)
    size = settings.db_path.stat().st_size
    result = compact.compact_database(settings)
    assert result.bytes_before >= size and result.bytes_after < result.bytes_before * 0.8
    assert result.bytes_after == settings.db_path.stat().st_size
    assert _everything(settings) == before  # concepts, relations, patients, predictions
    assert result.nodes == before[0].nodes and not _leftovers(settings)
    assert before[3]["GROWN"].reports[0].text.startswith("Turn 99")
    with EmbeddedStore(settings) as store:  # it takes writes as before
        store.upsert_patient(Patient(id="AFTER", reports=(Report(id="R1", text="No edema."),)))
        assert "AFTER" in store.patient_ids()


def test_a_database_open_in_another_process_is_refused(tmp_path, grown_file):
    settings = _grown(tmp_path, grown_file)
    before = _everything(settings)
    holder = _holder(settings)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(StoreError, match="is open in"):
            compact.compact_database(settings)
    finally:
        holder.stdin.close()
        holder.wait(timeout=60)
    assert _everything(settings) == before and not _leftovers(settings)


def _drop_a_patient(copy) -> None:
    copy.delete_patient("GROWN")  # the counts and the patient ids change


def _alter_a_report(copy) -> None:  # counts, KG hash and patient ids stay equal
    copy.connection.execute("MATCH (r:Report {id: 'GROWN/R1'}) SET r.text = 'altered'")


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (_drop_a_patient, "does not hold the same content.*Patient: 6 -> 5"),
        (_alter_a_report, "does not hold the same content.*the rows of Report differ"),
    ],
)
def test_a_copy_that_differs_is_not_swapped_in(tmp_path, grown_file, monkeypatch, change, says):
    settings = _grown(tmp_path, grown_file)
    before = _everything(settings)
    real = compact._import

    def changed(parts, settings_, built: Path) -> None:  # as if the copy lost or altered rows
        real(parts, settings_, built)
        with EmbeddedStore(settings_, path=built) as copy:
            change(copy)

    monkeypatch.setattr(compact, "_import", changed)
    with pytest.raises(StoreError, match=says):
        compact.compact_database(settings)
    assert _everything(settings) == before and not _leftovers(settings)


def test_a_write_during_the_copy_is_kept_not_overwritten(tmp_path, grown_file, monkeypatch):
    settings = _grown(tmp_path, grown_file)
    real = compact._import

    def raced(parts, settings_, built: Path) -> None:  # a server wrote meanwhile, then stopped
        real(parts, settings_, built)
        with EmbeddedStore(settings) as store:
            store.upsert_patient(Patient(id="LATE", reports=(Report(id="R1", text="No edema."),)))

    monkeypatch.setattr(compact, "_import", raced)
    with pytest.raises(StoreError, match="was written while it was being compacted"):
        compact.compact_database(settings)
    with EmbeddedStore(settings, read_only=True) as store:
        assert "LATE" in store.patient_ids()
    assert not _leftovers(settings)


def test_the_cli_compacts_and_explains_a_missing_database(tmp_path, grown_file, monkeypatch):
    monkeypatch.setenv("KGDX_HOME", str(tmp_path))
    _grown(tmp_path, grown_file)
    runner = CliRunner()
    done = runner.invoke(app, ["kg", "compact", "--json"])
    assert done.exit_code == 0, done.output
    payload = json.loads(done.output)
    assert payload["saved_fraction"] > 0.2 and payload["nodes"]["Patient"] == 6
    plain = runner.invoke(app, ["kg", "compact", "--db", str(tmp_path / "kg.lbug")])
    assert plain.exit_code == 0 and "the same as before" in plain.output
    missing = subprocess.run(
        [sys.executable, "-m", "api.cli", "kg", "compact", "--db", str(tmp_path / "nope.lbug")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert missing.returncode == 2 and "nothing to compact" in missing.stderr
    assert not (tmp_path / "nope.lbug").exists()  # no empty database made where none was


def test_a_process_that_opens_it_during_the_copy_stops_the_swap(tmp_path, grown_file, monkeypatch):
    settings = _grown(tmp_path, grown_file)
    before = _everything(settings)
    real, holders = compact._import, []

    def opened_meanwhile(parts, settings_, built: Path) -> None:  # a server starts, writes nothing
        real(parts, settings_, built)
        holders.append(_holder(settings))
        assert holders[0].stdout.readline().strip() == "open"

    monkeypatch.setattr(compact, "_import", opened_meanwhile)
    try:
        with pytest.raises(StoreError, match="is open in"):
            compact.compact_database(settings)
    finally:
        for holder in holders:
            holder.stdin.close()
            holder.wait(timeout=60)
    assert _everything(settings) == before and not _leftovers(settings)


def test_a_table_or_column_the_schema_lacks_is_refused(tmp_path, grown_file):
    settings = _grown(tmp_path, grown_file)
    with EmbeddedStore(settings) as store:
        store.connection.execute("ALTER TABLE Prediction ADD future STRING DEFAULT 'kept'")
        store.connection.execute("CREATE NODE TABLE Extra(id STRING, PRIMARY KEY (id))")
    with pytest.raises(StoreError, match=r"table Extra, Prediction.future \(STRING\)"):
        compact.compact_database(settings)
    with EmbeddedStore(settings, read_only=True) as store:
        assert store.connection.execute("MATCH (p:Prediction) RETURN p.future").get_next() == [
            "kept"
        ]
    assert not _leftovers(settings)


def test_the_swap_keeps_permissions_files_beside_it_and_a_symlink(tmp_path, grown_file):
    real = tmp_path / "real"
    real.mkdir()
    _grown(real, grown_file)
    (real / "kg.lbug").chmod(0o600)
    (real / "kg.lbug.bak").write_text("a user's backup")
    link_home = tmp_path / "home"
    link_home.mkdir()
    (link_home / "kg.lbug").symlink_to(real / "kg.lbug")
    settings = Settings(home=link_home, db_path=link_home / "kg.lbug")
    before = _everything(settings)
    result = compact.compact_database(settings)
    assert result.db_path == str(real / "kg.lbug") and result.bytes_after < result.bytes_before
    assert (link_home / "kg.lbug").is_symlink()  # the link still names the one database
    assert (real / "kg.lbug").stat().st_mode & 0o777 == 0o600
    assert (real / "kg.lbug.bak").read_text() == "a user's backup"
    assert _everything(settings) == before


def test_a_path_with_glob_characters_is_refused_up_front(tmp_path, grown_file):
    folder = tmp_path / "kg[1]"
    folder.mkdir()
    settings = _grown(folder, grown_file)
    with pytest.raises(StoreError, match="glob character"):
        compact.compact_database(settings)
    assert not _leftovers(settings)


def test_a_wal_beside_a_symlink_is_replayed_not_lost(tmp_path, grown_file):
    """LadybugDB keeps the log beside the name it was opened by: a writer killed after its
    commit, through a symlink, leaves ``home/kg.lbug.wal``; the compaction keeps its patient."""
    real = tmp_path / "real"
    real.mkdir()
    _grown(real, grown_file)
    home = tmp_path / "home"
    home.mkdir()
    (home / "kg.lbug").symlink_to(real / "kg.lbug")
    settings = Settings(home=home, db_path=home / "kg.lbug")
    commit_then_die(settings, "LATE")
    assert (home / "kg.lbug.wal").exists()  # the killed writer's log, beside the link
    compact.compact_database(settings)
    assert not (home / "kg.lbug.wal").exists() and (home / "kg.lbug").is_symlink()
    with EmbeddedStore(settings, read_only=True) as store:
        assert "LATE" in store.patient_ids()
