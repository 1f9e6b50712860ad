"""Researcher queries of the embedded store run in a sandboxed worker process (issue 11: 3, 4, 6).

Real stores, real worker processes. The hostile queries here are ones any read-only guard lets
through (``UNWIND range``, ``repeat``, cross products); crashes, garbage and file access that a
guard would stop first are driven through the worker API (:mod:`graph.query_runner`) directly.
"""

from __future__ import annotations

import datetime as dt
import signal
import sys
import threading
import time
import uuid
from contextlib import nullcontext
from decimal import Decimal
from pathlib import Path

import psutil
import pytest

from graph.errors import QueryError, StoreError
from graph.query_runner import QueryJob, QueryPool, QueryWorker
from graph.records import Concept
from graph.sandbox import landlock_abi
from graph.settings import Settings
from graph.stores import open_store

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


def _seed(store, n: int = 50) -> None:
    store.upsert_concepts(
        Concept(id=f"HP:{i:07d}", name=f"term {i}", kind="finding") for i in range(n)
    )


@pytest.fixture()
def kg(store):
    _seed(store)
    return store


def _job(store, cypher: str, **limits) -> QueryJob:
    store.connection.execute("CHECKPOINT")
    values = {"timeout_s": 5.0, "row_limit": 100, "max_bytes": 1 << 20, "memory_mb": 2048}
    return QueryJob(db=store.path.resolve(), cypher=cypher, params={}, **{**values, **limits})


def test_finding_4_answers_within_the_deadline(kg):
    """Finding 4: this answered after 17 s with a 1 s timeout in-process (under the default
    memory cap the 1.2 GB list now fails early, at the cap)."""
    began = time.monotonic()
    with pytest.raises(QueryError, match="timeout|memory cap"):
        kg.query("UNWIND range(1, 150000000) AS x RETURN count(*)", timeout_s=1)
    assert time.monotonic() - began < 2.5
    assert kg.query("MATCH (c:Concept) RETURN count(c)").rows == ((50,),)


def test_a_timeout_the_engine_overruns_is_held_by_killing_the_worker(settings):
    """With room for the list, LadybugDB checks its timeout only after building it (11 s
    measured in-process): the parent's deadline kills the worker at timeout + grace."""
    roomy = settings.model_copy(update={"query_memory_mb": 8192})
    with open_store("embedded", settings=roomy) as store:
        began = time.monotonic()
        with pytest.raises(QueryError, match="timeout .*killed"):
            store.query("UNWIND range(1, 150000000) AS x RETURN count(*)", timeout_s=1)
        assert time.monotonic() - began < 2.5
        assert store.query("RETURN 1 AS one").rows == ((1,),)


def test_a_list_past_the_memory_cap_is_a_query_error_not_a_dead_process(kg):
    """Finding 4: ``std::bad_alloc`` killed the process in-process."""
    with pytest.raises(QueryError, match="memory cap|timeout"):
        kg.query("UNWIND range(1, 3000000000) AS x RETURN count(*)", timeout_s=20)
    assert kg.query("MATCH (c:Concept) RETURN count(c)").rows == ((50,),)


def test_one_huge_value_is_refused_and_the_parent_stays_small(kg):
    """Finding 6: a 200 MB body (2.4 GB server memory). Building that string costs LadybugDB
    about 1.5 GB and many seconds, so the worker's memory cap or the deadline usually stops it
    before the byte cap can; the parent never holds more than the cap either way."""
    me = psutil.Process()
    before = me.memory_info().rss
    with pytest.raises(QueryError, match="byte cap|memory cap|timeout"):
        kg.query("RETURN repeat('x', 200000000)", timeout_s=8)
    assert me.memory_info().rss - before < 64 << 20


def test_a_value_past_the_byte_cap_names_the_cap(kg):
    me = psutil.Process()
    before = me.memory_info().rss
    with pytest.raises(QueryError, match="16777216 byte cap"):
        kg.query("RETURN repeat('x', 20000000)", timeout_s=20)
    assert me.memory_info().rss - before < 32 << 20
    with pytest.raises(QueryError, match="byte cap"):
        kg.query("UNWIND range(1, 40000) AS x RETURN repeat('y', 500)", row_limit=100_000)
    assert kg.query("RETURN repeat('x', 1000) AS s").rows == (("x" * 1000,),)


def test_the_parent_counts_bytes_too(kg):
    """A worker that sends more than the cap (here: told a larger cap) is killed mid-answer."""
    job = _job(
        kg,
        "UNWIND range(1, 2000) AS x RETURN repeat('y', 1000)",
        max_bytes=1 << 30,
        row_limit=5000,
    )
    worker = QueryWorker()
    try:
        worker.read(time.monotonic() + 10, 1 << 20, until_lines=1)
        worker.send(job)
        with pytest.raises(QueryError, match="byte cap"):
            worker.read(time.monotonic() + 10, 256 << 10)
    finally:
        worker.reap()
    assert worker.process.returncode == -signal.SIGKILL


def test_rows_and_the_row_limit_keep_their_python_types(kg):
    cypher = (
        "RETURN date('2020-01-02') AS d, timestamp('2020-01-02 03:04:05.5') AS t, "
        "interval('3 days') AS i, CAST(1.25 AS DECIMAL(6, 3)) AS m, "
        "UUID('0fc534a4-fd80-44a3-ae86-95ceed8bcab2') AS u, BLOB('ab') AS b, "
        "{k: [1.5, NULL]} AS s, map([1], ['x']) AS p"
    )
    (row,) = QueryPool(workers=1, warm=0).run(_job(kg, cypher), nullcontext).rows
    assert row == tuple(kg.connection.execute(cypher).get_next())  # as an in-process read
    assert [type(v) for v in row[:6]] == [
        dt.date,
        dt.datetime,
        dt.timedelta,
        Decimal,
        uuid.UUID,
        bytes,
    ]
    assert row[6:] == ({"k": [1.5, None]}, {1: "x"})
    (node,) = kg.query("MATCH (c:Concept {id: 'HP:0000001'}) RETURN c").rows[0]
    assert node["name"] == "term 1" and node["_LABEL"] == "Concept"
    limited = kg.query("MATCH (c:Concept) RETURN c.id", row_limit=7)
    assert len(limited.rows) == 7 and limited.truncated


def test_a_worker_killed_mid_query_is_a_query_error(kg):
    seen: list[int] = []

    def kill_soon(worker: QueryWorker) -> None:
        seen.append(worker.pid)
        threading.Timer(0.3, worker.process.send_signal, (signal.SIGKILL,)).start()

    me = psutil.Process()
    fds = me.num_fds()
    pool = QueryPool(workers=1, warm=0)
    # room for the list: the engine computes for many seconds (see the deadline test)
    job = _job(kg, "UNWIND range(1, 150000000) AS x RETURN count(*)", timeout_s=10, memory_mb=8192)
    began = time.monotonic()
    with pytest.raises(QueryError, match="SIGKILL"):
        pool.run(job, nullcontext, on_worker=kill_soon)
    assert time.monotonic() - began < 5
    assert not psutil.pid_exists(seen[0]), "the killed worker was reaped"
    assert me.num_fds() == fds, "its pipes were closed"
    assert not [c for c in me.children() if c.status() == psutil.STATUS_ZOMBIE]


@pytest.mark.parametrize(
    ("program", "message"),
    [
        ("import os; os.abort()", "SIGABRT"),
        ("import ctypes; ctypes.string_at(0)", "SIGSEGV"),
        ("import sys; sys.stdout.write('{\"hello\": 1}\\nnot json\\n')", "garbled"),
        ("import sys; sys.stdout.write('[1, 2]\\n')", "before it answered"),
        ("import sys; sys.exit(3)", "status 3"),
        ("import time; time.sleep(30)", "timeout"),
    ],
)
def test_a_crashing_or_lying_worker_is_a_query_error(kg, program, message):
    job = _job(kg, "RETURN 1", timeout_s=1.0)
    worker = QueryWorker([sys.executable, "-c", program])
    began = time.monotonic()
    with pytest.raises(QueryError, match=message):
        try:
            worker.send(job)
            worker.read(began + 1.5, job.max_bytes)
            worker.reap()
            worker.result(job)
        finally:
            worker.reap()
    assert worker.process.returncode is not None and time.monotonic() - began < 4


def test_the_worker_cannot_read_files_outside_the_database(kg, tmp_path):
    """The second wall: a file-reading query a guard would refuse, sent to the worker directly."""
    if landlock_abi() < 1:
        pytest.skip("this kernel has no Landlock: the worker falls back to rlimits only")
    canary = tmp_path / "canary.csv"
    canary.write_text("CANARY-7f3a\n")
    pool = QueryPool(workers=1, warm=0)
    with pytest.raises(QueryError) as caught:
        pool.run(_job(kg, f"LOAD FROM '{canary}' RETURN *"), nullcontext)
    assert "CANARY" not in str(caught.value)
    target = tmp_path / "out.csv"
    with pytest.raises(QueryError):
        pool.run(_job(kg, f"COPY (RETURN 1) TO '{target}'"), nullcontext)
    assert not target.exists()


def test_queries_beyond_the_worker_count_wait_then_answer_busy(settings):
    settings = settings.model_copy(update={"query_workers": 1})
    with open_store("embedded", settings=settings) as store:
        _seed(store, 300)
        hog = threading.Thread(
            target=lambda: pytest.raises(
                QueryError,
                store.query,
                "MATCH (a:Concept), (b:Concept), (c:Concept), "
                "(d:Concept) WHERE a.name + b.name + c.name + d.name = 'no' RETURN count(*)",
                timeout_s=3,
            )
        )
        hog.start()
        time.sleep(0.5)
        began = time.monotonic()
        with pytest.raises(StoreError, match="busy"):
            store.query("RETURN 1", timeout_s=0.5)
        assert time.monotonic() - began < 1.5
        hog.join()
        assert store.query("RETURN 1 AS one").rows == ((1,),)


def test_a_store_close_stops_its_spare_workers(settings):
    settings = settings.model_copy(update={"query_warm_workers": 2})
    store = open_store("embedded", settings=settings)
    store.query("RETURN 1")
    spares = [c for c in psutil.Process().children() if "graph.query_worker" in c.cmdline()]
    assert len(spares) >= 2
    store.close()
    assert not [c for c in spares if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]


def test_settings_reach_the_worker(settings):
    tight = Settings(home=settings.home, db_path=settings.db_path, query_max_bytes=100)
    with open_store("embedded", settings=tight) as store:
        assert store.query("RETURN 'short'").rows == (("short",),)
        with pytest.raises(QueryError, match="100 byte cap"):
            store.query("RETURN repeat('z', 500)")


def test_neo4j_queries_stop_pulling_at_the_byte_cap():
    """Neo4j runs researcher queries server-side (no worker): the byte cap holds while the
    driver streams records, and leaves the rest unpulled."""
    from graph.stores.neo4j import Neo4jStore
    from tests.graph.neo4j_fakes import FakeDriver, FakeResult

    results: list[FakeResult] = []

    def responder(statement, params):
        return [{"s": "x" * 100} for _ in range(1000)]

    driver = FakeDriver(responder=responder)
    original = driver.session

    def session(**kwargs):
        opened = original(**kwargs)
        record = opened.record

        def recorded(*args):
            results.append(record(*args))
            return results[-1]

        opened.record = recorded
        return opened

    driver.session = session
    settings = Settings(neo4j_uri="bolt://fake:7687", query_max_bytes=5_000)
    store = Neo4jStore(settings, driver=driver)
    with pytest.raises(QueryError, match="5000 byte cap"):
        store.query("MATCH (n) RETURN n.s AS s")
    assert results[-1].pulled < 100
    assert len(store.query("MATCH (n) RETURN n.s AS s", row_limit=10).rows) == 10


@pytest.mark.timeout(30)
def test_only_the_query_route_hands_its_lock_to_the_store(kg):
    """``/query`` passes the app's store lock (taken only while a worker starts); a route that
    holds that lock for its whole request and queries (image ingest does) must not deadlock."""
    lock = threading.Lock()
    with kg.queries_take(lock):
        assert kg.query("RETURN 1 AS one").rows == ((1,),)
        assert not lock.locked()
    with lock:
        assert kg.query("RETURN 2 AS two").rows == ((2,),)


def test_the_worker_confines_its_only_thread_and_says_so(kg):
    job = _job(kg, "RETURN 1 AS one")
    worker = QueryWorker()
    try:
        worker.send(job)
        worker.read(time.monotonic() + 20, job.max_bytes)
    finally:
        worker.reap()
    assert worker.result(job).rows == ((1,),)
    report = worker.sandbox_report()
    assert report["rlimits"] and report["no_new_privs"]
    assert report["landlock_abi"] == landlock_abi()
    assert not [w for w in report["warnings"] if "threads" in w], report["warnings"]
