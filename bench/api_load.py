"""Benchmark: the REST v1 API under load, on loopback (issue 14).

A real uvicorn serving ``api.rest:create_app`` with API keys, on a store holding the chest seed
KG and the demo cohort (80 patients), with a diagnosis model: ``--model DIR`` (a saved run, e.g.
``.kgdx/models/demo`` after ``make demo``), or by default one trained here on the cohort the way
``kgdx demo`` trains it (seconds).

Phases of ``--duration`` seconds each (60 by default):

1. ``--clients`` (20) concurrent clients post ``POST /v1/patients/{id}/diagnoses?refresh=true``
   in a loop over the stored patients: the model runs for every request. The patients do not
   change, so after each one's first run the server sends its remembered diagnosis input
   straight to the model worker, and the store keeps the equal prediction rows and re-stamps
   them (phase 4 measures runs whose rows change);
2. the same, while as many more clients read ``GET /v1/patients/{id}``: reads must not queue
   behind the diagnoses;
3. both again without ``refresh``: a patient diagnosed unchanged before, with the same model and
   parameters, is answered from the server's memo (``api/routers/diagnosis_memo.py``); this is
   the steady state of clinicians re-opening patients, not a model run;
4. model runs whose rows change, beside the readers: each patient's next request asks for the
   next of 8 ``top_k``/``paths_per_diagnosis`` combinations, whose ``paths_per_diagnosis``
   alternates between 1 and 2, so every save changes the paths of every row and rewrites them
   all (nodes, edges, and the checkpoints of that log), bar the rare save that lands after
   another one of the same patient sent later. Skipped with ``--no-rewrite``.

For each it prints p50/p95/p99/max latency, throughput and the error count (any answer but 200,
or a failed connection), with the load average before and after (the machine is shared: read
the figures against it). Targets: diagnose p99 <= 300 ms with 20 clients and 0 errors; reads p99
<= 50 ms under the same load.

    .venv/bin/python bench/api_load.py                 # 4 x 60 s
    .venv/bin/python bench/api_load.py --duration 10   # a quick look
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.local_server import serve  # noqa: E402

DIAGNOSE_P99_S = 0.300
READ_P99_S = 0.050
# phase 4, in the order each patient goes through them: paths_per_diagnosis alternates, so each
# save changes every row (other top_k alone would change only the last rows)
REWRITE_COMBINATIONS = [(2, 1), (3, 2), (4, 1), (5, 2), (3, 1), (2, 2), (5, 1), (4, 2)]


class Rewrites:
    """The paths of phase 4 as the clients index them: request ``i`` is for patient ``i`` (mod
    their number), with that patient's next combination (a counter per patient, shared by the
    client threads)."""

    def __init__(self, ids: list[str]) -> None:
        self.ids = ids
        self.counts = dict.fromkeys(ids, 0)
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> str:
        pid = self.ids[index % len(self.ids)]
        with self.lock:
            turn, self.counts[pid] = self.counts[pid], self.counts[pid] + 1
        k, n = REWRITE_COMBINATIONS[turn % len(REWRITE_COMBINATIONS)]
        return f"/v1/patients/{pid}/diagnoses?top_k={k}&paths_per_diagnosis={n}&refresh=true"


@dataclass
class Tally:
    """Latencies (s) of the answered requests and the failures of one kind of client."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float, status: int | None) -> None:
        with self.lock:
            if status == 200:
                self.latencies.append(seconds)
            else:
                self.errors += 1
            key = status if status is not None else -1
            self.statuses[key] = self.statuses.get(key, 0) + 1


def percentile(ordered: list[float], q: float) -> float:
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def client_loop(
    port: int,
    method: str,
    paths: Sequence[str],
    headers: dict[str, str],
    stop: threading.Event,
    tally: Tally,
    offset: int,
) -> None:
    """One client: a keep-alive connection, requests one after another until ``stop``."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    index = offset
    while not stop.is_set():
        path = paths[index % len(paths)]
        index += 1
        began = time.perf_counter()
        status = None
        try:
            connection.request(method, path, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        tally.add(time.perf_counter() - began, status)
    connection.close()


def run_clients(port: int, groups: list[tuple[str, Sequence[str], int, Tally]], headers, seconds):
    stop = threading.Event()
    threads = [
        threading.Thread(
            target=client_loop, args=(port, method, paths, headers, stop, tally, n * 7)
        )
        for method, paths, count, tally in groups
        for n in range(count)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    return time.perf_counter() - began


def beside_readers(
    port: int, posts: Sequence[str], reads: list[str], clients: int, headers, seconds: float
) -> tuple[Tally, Tally, float]:
    """``clients`` posting ``posts`` while as many read ``reads``: both tallies, the seconds."""
    posted, read = Tally(), Tally()
    groups = [("POST", posts, clients, posted), ("GET", reads, clients, read)]
    return posted, read, run_clients(port, groups, headers, seconds)


def report(label: str, tally: Tally, elapsed: float, target: float | None) -> bool:
    ordered = sorted(tally.latencies)
    p50, p95, p99 = (percentile(ordered, q) for q in (0.5, 0.95, 0.99))
    worst = ordered[-1] if ordered else float("nan")
    met = target is None or (tally.errors == 0 and p99 <= target)
    verdict = "" if target is None else f"  target p99 <= {target * 1e3:.0f} ms, 0 errors: "
    verdict += "" if target is None else ("met" if met else "MISSED")
    print(
        f"{label:<38} {len(ordered):>6} ok {tally.errors:>4} err  "
        f"p50 {p50 * 1e3:7.1f}  p95 {p95 * 1e3:7.1f}  p99 {p99 * 1e3:7.1f}  "
        f"max {worst * 1e3:7.1f} ms  {len(ordered) / elapsed:7.1f} req/s{verdict}"
    )
    if tally.errors:
        print(f"{'':<38} statuses: {dict(sorted(tally.statuses.items()))}")
    return met


def prepare(work: Path, model: Path | None) -> tuple[dict[str, str], list[str]]:
    """The store (seed KG + demo cohort) and a model folder; returns the server env and the
    patient ids."""
    from api.engine import Engine
    from data.cohort import load_cohort
    from graph.settings import Settings

    settings = Settings(home=work / "home", db_path=work / "kg.lbug")
    model_dir = work / "model"
    cases = load_cohort()
    with Engine(store="embedded", settings=settings) as engine:
        engine.build_seed_kg()
        engine.ingest(
            [c.patient.model_copy(update={"findings": c.gold_findings}) for c in cases],
            extract=False,
        )
        if model is None:
            began = time.perf_counter()
            engine.train(save_to=model_dir)
            print(
                f"trained a model on {len(cases)} demo patients in {time.perf_counter() - began:.1f} s"
            )
        else:
            shutil.copytree(model, model_dir)
        ids = engine.store.patient_ids()
    env = {
        "KGDX_HOME": str(settings.home),
        "KGDX_DB_PATH": str(settings.db_path),
        "KGDX_MODEL_DIR": str(model_dir),
        "KGDX_EXTRACT_WARMUP": "false",
    }
    return env, ids


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients per kind")
    parser.add_argument("--model", type=Path, default=None, help="a saved model folder")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of warm-up first")
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--paths", type=int, default=2, help="paths per diagnosis")
    parser.add_argument(
        "--no-rewrite", action="store_true", help="skip phase 4 (runs whose rows change)"
    )
    args = parser.parse_args()

    from api.auth import key_entry, new_key

    key = new_key()
    headers = {"Authorization": f"Bearer {key}"}
    with tempfile.TemporaryDirectory(prefix="kgdx-load-") as folder:
        env, ids = prepare(Path(folder), args.model)
        env["KGDX_API_KEYS"] = json.dumps([key_entry("load", "clinician", key).model_dump()])
        query = f"?top_k={args.top_k}&paths_per_diagnosis={args.paths}"
        diagnose_paths = [f"/v1/patients/{pid}/diagnoses{query}" for pid in ids]
        read_paths = [f"/v1/patients/{pid}" for pid in ids]
        with serve(env, keep_keys=True) as (port, _process):
            # the model loads on the first diagnosis, and the model worker process
            # (api/model_worker.py) starts with it: seconds of imports and warm-up, during which
            # diagnoses run in the server process
            warm = Tally()
            run_clients(port, [("POST", diagnose_paths, 2, warm)], headers, args.warmup)
            if not warm.latencies:
                print(f"warm-up failed: statuses {warm.statuses}")
                return 1
            print(
                f"{len(ids)} patients; {args.clients} clients per kind, {args.duration:.0f} s per "
                f"phase; load average before {os.getloadavg()[0]:.2f} "
                f"(cores {os.cpu_count()})"
            )
            fresh = [f"{path}&refresh=true" for path in diagnose_paths]
            alone = Tally()
            elapsed = run_clients(
                port, [("POST", fresh, args.clients, alone)], headers, args.duration
            )
            load_1 = os.getloadavg()[0]
            met = report("POST diagnoses, model runs", alone, elapsed, DIAGNOSE_P99_S)
            mixed, reads, elapsed = beside_readers(
                port, fresh, read_paths, args.clients, headers, args.duration
            )
            load_2 = os.getloadavg()[0]
            met &= report("POST diagnoses, runs, + reads", mixed, elapsed, DIAGNOSE_P99_S)
            met &= report("GET /v1/patients/{id}, + runs", reads, elapsed, READ_P99_S)
            remembered, reads, elapsed = beside_readers(
                port, diagnose_paths, read_paths, args.clients, headers, args.duration
            )
            report("POST diagnoses, memo, + reads", remembered, elapsed, DIAGNOSE_P99_S)
            report("GET /v1/patients/{id}, + memo", reads, elapsed, READ_P99_S)
            load_3 = os.getloadavg()[0]
            if not args.no_rewrite:
                rewrites, reads, elapsed = beside_readers(
                    port, Rewrites(ids), read_paths, args.clients, headers, args.duration
                )
                met &= report(
                    "POST diagnoses, rows change, + reads", rewrites, elapsed, DIAGNOSE_P99_S
                )
                met &= report("GET /v1/patients/{id}, + rewrites", reads, elapsed, READ_P99_S)
            print(
                f"load average after phase 1 {load_1:.2f}, 2 {load_2:.2f}, 3 {load_3:.2f}"
                + ("" if args.no_rewrite else f", 4 {os.getloadavg()[0]:.2f}")
                + " (1-minute; this machine is shared)"
            )
    phases = "1 and 2" if args.no_rewrite else "1, 2 and 4"
    print(f"targets (model runs, phases {phases}):", "met" if met else "MISSED (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
