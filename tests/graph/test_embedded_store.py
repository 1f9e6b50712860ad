"""Behaviour specific to the embedded LadybugDB backend."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from graph.errors import ConfigError, QueryError, StoreError
from graph.records import Concept, Relation
from graph.settings import Settings
from graph.stores import open_store, store_class
from graph.stores.embedded import EmbeddedStore


def _seed(store, n: int = 3) -> None:
    store.upsert_concepts(
        Concept(id=f"HP:{i:07d}", name=f"term {i}", kind="finding") for i in range(n)
    )
    store.upsert_relations(
        Relation(src=f"HP:{i:07d}", dst=f"HP:{i - 1:07d}", type="IS_A", sources=("test",))
        for i in range(1, n)
    )


def test_registry_resolves_by_name(settings):
    assert store_class("embedded") is EmbeddedStore
    with pytest.raises(ConfigError, match="unknown store"):
        store_class("sqlite")


def test_read_only_handle_rejects_writes_that_pass_the_guard(store):
    _seed(store)
    before = store.counts()
    # Bypass the lexical guard: the database handle itself must refuse to write.
    with pytest.raises(QueryError, match="read-only"):
        store._query("CREATE (:Concept {id: 'HP:9999999', name: 'x'})", {}, 5.0, 10)
    assert store.counts() == before


def test_queries_see_fresh_writes(store):
    _seed(store, 2)
    assert store.query("MATCH (c:Concept) RETURN count(c)").rows == ((2,),)
    store.upsert_concepts([Concept(id="HP:0000100", name="late", kind="finding")])
    assert store.query("MATCH (c:Concept) RETURN count(c)").rows == ((3,),)


def test_data_persists_across_reopen(settings):
    with open_store("embedded", settings=settings) as store:
        _seed(store, 5)
        counts = store.counts()
    with open_store("embedded", settings=settings) as store:
        assert store.counts() == counts
        assert store.get_concept("HP:0000004").name == "term 4"


# 0.0001 s: LadybugDB reads a 0 ms timeout as "none", so a tiny timeout must not round down to it.
@pytest.mark.parametrize("timeout_s", [0.2, 0.0001])
def test_timeout_stops_a_runaway_query(store, timeout_s):
    _seed(store, 300)
    with pytest.raises(QueryError, match="timeout|interrupt"):
        store.query(
            "MATCH (a:Concept), (b:Concept), (c:Concept), (d:Concept) "
            "WHERE a.name + b.name + c.name + d.name = 'nope' RETURN count(*)",
            timeout_s=timeout_s,
        )


def test_bulk_load_many_relations(store):
    _seed(store, 20_000)
    counts = store.counts()
    assert counts.nodes["Concept"] == 20_000 and counts.relations["IS_A"] == 19_999


def test_unopenable_path_is_a_store_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a database")
    with pytest.raises(StoreError):
        EmbeddedStore(Settings(home=tmp_path, db_path=blocker))


def test_buffer_pool_setting_is_applied(tmp_path, monkeypatch):
    import ladybug

    opened: list[dict] = []
    real = ladybug.Database

    def recording(*args, **kwargs):  # LadybugDB cannot report its pool size back
        opened.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(ladybug, "Database", recording)
    settings = Settings(home=tmp_path, db_path=tmp_path / "small.lbug", buffer_pool_mb=64)
    with open_store("embedded", settings=settings) as small:
        _seed(small, 50)
        assert small.counts().relations["IS_A"] == 49
    assert opened[0]["buffer_pool_size"] == 64 * 1024 * 1024
    assert opened[0]["auto_checkpoint"] is True
    EmbeddedStore(settings, path=tmp_path / "bulk.lbug", bulk=True).close()
    assert opened[-1]["auto_checkpoint"] is False  # a bulk build checkpoints once, at close
    with pytest.raises(ValidationError, match="buffer_pool_mb"):
        Settings(buffer_pool_mb=0)


def test_failed_write_rolls_back_and_leaves_no_open_transaction(store):
    _seed(store, 2)
    before = store.counts()
    create = ("CREATE (:Concept {id: 'HP:0000777', name: 'x', kind: 'finding'})", {})
    with pytest.raises(StoreError, match="rolled back"):
        store._write([create, ("THIS IS NOT CYPHER", {})])
    assert store.counts() == before
    with pytest.raises(StoreError, match="rolled back"):
        store._write([create, ("RETURN $x", {"x": object()})])
    assert store.counts() == before
    with pytest.raises(KeyboardInterrupt):  # an interrupt mid-write: rolled back, re-raised
        with store._transaction("test"):
            store.connection.execute(create[0])
            raise KeyboardInterrupt
    assert store.counts() == before
    store.upsert_concepts([Concept(id="HP:0000778", name="after", kind="finding")])
    assert store.get_concept("HP:0000778").name == "after"


def test_relation_sources_are_json_text_that_cypher_can_filter(store):
    _seed(store)
    store.upsert_relations(
        [Relation(src="HP:0000002", dst="HP:0000000", type="IS_A", sources=("A:1", "B:2"))]
    )
    result = store.query(
        "MATCH (a)-[r:IS_A]->(b) WHERE r.sources CONTAINS 'B:2' RETURN a.id, r.sources"
    )
    assert result.rows == (("HP:0000002", '["A:1", "B:2"]'),)
    stored = {(r.src, r.dst, r.sources) for r in store.iter_relations()}
    assert ("HP:0000002", "HP:0000000", ("A:1", "B:2")) in stored
    assert ("HP:0000002", "HP:0000001", ("test",)) in stored and len(stored) == 3


def test_a_database_laid_out_by_an_older_kgdx_is_refused(tmp_path):
    import ladybug

    path = tmp_path / "old.lbug"
    db = ladybug.Database(str(path))
    connection = ladybug.Connection(db)
    connection.execute("CREATE NODE TABLE Concept(id STRING, name STRING, PRIMARY KEY (id))")
    connection.execute(
        "CREATE REL TABLE IS_A(FROM Concept TO Concept, sources STRING[], weight DOUBLE)"
    )
    connection.close()
    db.close()
    with pytest.raises(StoreError, match=r"older kgdx .*'sources': 'STRING\[\]'.*kgdx kg build"):
        EmbeddedStore(Settings(home=tmp_path, db_path=path))


def test_a_save_of_unchanged_predictions_rewrites_only_their_timestamp(store, monkeypatch):
    """Re-saving what is stored keeps the nodes (their internal ids) and writes a few hundred
    bytes of log, not every node and edge again; a changed row is replaced."""
    from graph.records import Diagnosis, ExplanationPath, Patient
    from tests.graph.save_clock import frozen_saves

    _seed(store, 3)
    store.upsert_patient(Patient(id="P1"))
    path = ExplanationPath(
        nodes=("P1", "HP:0000001", "HP:0000002"), relations=("HAS_FINDING", "IS_A"), score=0.5
    )
    made = [
        Diagnosis(concept_id=f"HP:{i:07d}", name="t", probability=p, paths=(path,), model_id="m")
        for i, p in ((2, 0.7), (1, 0.2))
    ]

    def nodes() -> dict:
        found = store.connection.execute("MATCH (x:Prediction) RETURN x.id, id(x), x.created")
        return {row[0]: tuple(row[1:]) for row in found.get_all()}

    Frozen = frozen_saves(monkeypatch, "2026-12-05T00:00:00+00:00")
    store.save_predictions("P1", made)
    first = nodes()
    wal = store.settings.db_path.with_name(store.settings.db_path.name + ".wal")
    before = wal.stat().st_size
    Frozen.stamp = "2026-12-05T00:00:09+00:00"
    store.save_predictions("P1", made)
    again = nodes()
    assert {k: v[0] for k, v in again.items()} == {k: v[0] for k, v in first.items()}
    assert {v[1] for v in again.values()} == {Frozen.stamp}
    assert 0 < wal.stat().st_size - before < 2000  # a full save writes several KB
    changed = [made[0], made[1].model_copy(update={"probability": 0.3})]
    store.save_predictions("P1", changed)
    last = nodes()
    assert last["P1/m/HP:0000002"][0] == first["P1/m/HP:0000002"][0]
    assert last["P1/m/HP:0000001"][0] != first["P1/m/HP:0000001"][0]
    assert [s.diagnosis.probability for s in store.get_predictions("P1")] == [0.7, 0.3]


def test_the_store_checkpoints_every_so_many_write_transactions(store, monkeypatch):
    """Small writes would take tens of thousands of commits to reach LadybugDB's own 16 MB
    checkpoint, every read of the rows they update slowing meanwhile."""
    import graph.stores.ladybug_transactions as embedded
    from graph.records import Patient

    monkeypatch.setattr(embedded, "CHECKPOINT_EVERY_COMMITS", 3)
    wal = store.settings.db_path.with_name(store.settings.db_path.name + ".wal")
    sizes = []
    for i in range(6):
        store.upsert_patient(Patient(id=f"P{i}"))  # one write transaction each
        sizes.append(wal.stat().st_size if wal.exists() else 0)
    assert 0 < sizes[0] < sizes[1] and sizes[2] == 0  # the third commit folded the log in
    assert 0 < sizes[3] < sizes[4] and sizes[5] == 0
    assert sorted(store.patient_ids()) == [f"P{i}" for i in range(6)]
    # not while a researcher's query worker reads: the commit after it ends folds the log in
    store._query_pool.running = 1
    try:
        for i in range(6, 10):
            store.upsert_patient(Patient(id=f"P{i}"))
        assert wal.stat().st_size > 0 and store._commits == 4
    finally:
        store._query_pool.running = 0
    store.upsert_patient(Patient(id="P10"))
    assert not wal.exists() and store._commits == 0  # folded in: the log file is gone
    assert len(store.patient_ids()) == 11


def test_a_checkpoint_handed_off_runs_only_when_its_runner_asks(store, monkeypatch):
    """The REST service runs the store's checkpoints in a thread of its own: a commit that
    finds one due only asks for it (and so does every later one until it has run)."""
    import graph.stores.ladybug_transactions as embedded
    from graph.records import Patient

    monkeypatch.setattr(embedded, "CHECKPOINT_EVERY_COMMITS", 3)
    wal = store.settings.db_path.with_name(store.settings.db_path.name + ".wal")
    asked = []

    def ask() -> None:
        asked.append(store._commits)

    store.defer_checkpoints(ask)
    assert store.checkpoint_if_due() is None  # nothing written: none due
    for i in range(4):
        store.upsert_patient(Patient(id=f"P{i}"))
    assert asked == [3, 4] and wal.stat().st_size > 0  # asked, not run: the log stays
    store._query_pool.running = 1  # a researcher's query reading: not now
    try:
        assert store.checkpoint_if_due() is None and wal.exists()
    finally:
        store._query_pool.running = 0
    assert store.checkpoint_if_due()
    assert not wal.exists() and store._commits == 0 and store.checkpoint_if_due() is None
    store.take_back_checkpoints(lambda: None)  # not the runner they were handed to: kept
    for i in range(4, 7):
        store.upsert_patient(Patient(id=f"P{i}"))
    assert asked == [3, 4, 3] and wal.exists()
    store.take_back_checkpoints(ask)  # taken back: the next commit checkpoints itself again
    store.upsert_patient(Patient(id="P7"))
    assert asked == [3, 4, 3] and not wal.exists()
    assert len(store.patient_ids()) == 8


def test_predictions_saved_before_the_linked_count_are_rewritten_once(tmp_path):
    """A database from before ``Prediction.linked``: opened, the column is added (null), so an
    equal re-save cannot tell what its rows link and rewrites them once; the next keeps them."""
    from graph.records import Diagnosis, ExplanationPath, Patient

    path = tmp_path / "old.lbug"
    settings = Settings(home=tmp_path, db_path=path)
    steps = ("P1", "HP:0000001", "HP:0000002")
    made = [
        Diagnosis(
            concept_id="HP:0000002",
            name="t",
            probability=0.7,
            paths=(ExplanationPath(nodes=steps, relations=("HAS_FINDING", "IS_A"), score=0.5),),
            model_id="m",
        )
    ]
    with EmbeddedStore(settings) as old:
        _seed(old, 3)
        old.upsert_patient(Patient(id="P1"))
        old.save_predictions("P1", made)
        old.connection.execute("ALTER TABLE Prediction DROP linked")  # as an older kgdx wrote it

    def state(store) -> tuple:
        found = store.connection.execute(
            "MATCH (x:Prediction)-[e:EXPLAINED_BY]->(c:Concept) "
            "RETURN id(x), x.linked, collect(c.id)"
        ).get_all()
        return tuple(tuple(row[:2]) + (sorted(row[2]),) for row in found)

    with EmbeddedStore(settings) as store:
        ((node, linked, concepts),) = state(store)
        assert linked is None and concepts == ["HP:0000001", "HP:0000002"]
        store.save_predictions("P1", made)
        ((rewritten, linked, concepts),) = state(store)
        assert rewritten != node and linked == 2 and concepts == ["HP:0000001", "HP:0000002"]
        store.save_predictions("P1", made)
        assert state(store) == ((rewritten, 2, ["HP:0000001", "HP:0000002"]),)


def test_a_commit_group_commits_its_writes_in_one_transaction(store, transactions):
    from graph.records import Patient

    seen = transactions
    before = store._commits
    with store.commit_group() as group:
        for pid in ("P1", "P2", "P3"):
            store.upsert_patient(Patient(id=pid))
        assert store.has_patient("P2")  # reads in the group see its writes
    assert seen == ["BEGIN TRANSACTION", "COMMIT"]
    assert group.committed and not group.broken and group.joined == 3
    assert store._commits == before + 3  # counted one by one towards the checkpoint
    assert sorted(store.patient_ids()) == ["P1", "P2", "P3"]
    store.upsert_patient(Patient(id="P4"))  # outside a group: a transaction of its own
    assert seen[2:] == ["BEGIN TRANSACTION", "COMMIT"]
    with store.commit_group() as idle:  # nothing written: nothing begun
        assert store.patient_ids()
    assert idle.committed and seen[4:] == []


def test_a_failed_write_rolls_back_its_whole_commit_group(store):
    from graph.errors import StoreError
    from graph.records import Patient

    store.upsert_patient(Patient(id="P0"))
    with store.commit_group() as group:
        store.upsert_patient(Patient(id="P1"))
        with pytest.raises(StoreError, match="grouped with it"):
            store._write([("CREATE (:Patient {id: 'P0'})", {})])  # a duplicate key
        assert group.broken
        with pytest.raises(StoreError, match="earlier write of this commit group failed"):
            store.upsert_patient(Patient(id="P2"))
    assert not group.committed
    assert store.patient_ids() == ["P0"]  # P1 went with the failed write
    with pytest.raises(ValueError), store.commit_group() as group:  # any exception out of it
        store.upsert_patient(Patient(id="P3"))
        raise ValueError("the caller failed")
    assert group.broken and store.patient_ids() == ["P0"]
    # a failed read ends LadybugDB's transaction too: the group is broken, nothing after it
    # runs unprotected (each statement would commit on its own)
    with store.commit_group() as group:
        store.upsert_patient(Patient(id="P1"))
        with pytest.raises(StoreError, match="query failed"):
            store._rows("MATCH (x:Nowhere) RETURN x")
        assert group.broken
        with pytest.raises(StoreError, match="earlier write of this commit group failed"):
            store.upsert_patient(Patient(id="P2"))
    assert not group.committed and store.patient_ids() == ["P0"]
    with store.commit_group(), pytest.raises(StoreError, match="already open"):
        with store.commit_group():
            pass
    store.upsert_patient(Patient(id="P5"))
    assert store.patient_ids() == ["P0", "P5"]
