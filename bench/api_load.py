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
   another one of the same patient sent later. Skipped with ``--no-rewrite``;
5. phase 2 again while ``--ingest-clients`` (2) more clients store patients with
   ``POST /v1/patients`` (under a key of the ``ingest`` role: a clinician's key cannot store),
   the cohort's report texts under new ids (``ingest-<n>``, 40 of them, replaced in turn),
   their findings extracted by the server, ``--ingest-rate`` (5) patients a second from all of
   them together, evenly spaced (0: each client as fast as it is answered): diagnoses and
   reads beside a hospital's feed. ``--ingest-clients 0`` skips it.

For each it prints p50/p95/p99/max latency, throughput and the error count (any answer but 200,
or 200/201 for a stored patient, replaced or new; or a failed connection) and the CPU the
server and its model worker used (cores, ms per answer: steadier than latency on a shared
machine), with the load average before and after and the speed of a pure-Python loop before
(machines differ and this one is shared: read the figures against both). Targets:
diagnose p99 <= 300 ms with 20 clients and 0 errors; reads p99 <= 50 ms under the same load.

    .venv/bin/python bench/api_load.py                 # 5 x 60 s
    .venv/bin/python bench/api_load.py --duration 10   # a quick look
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help``: the module's docstring as written (the phases), each option's default."""


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.load_clients import Clients, Tally, report, run_clients  # noqa: E402
from bench.local_server import request, serve, tree_cpu_by_process  # noqa: E402

DIAGNOSE_P99_S = 0.300
READ_P99_S = 0.050
# phase 5: patients stored per second (a busy hospital's feed is a report every few seconds;
# this is several times that)
INGEST_RATE = 5.0
# phase 4, in the order each patient goes through them: paths_per_diagnosis alternates, so each
# save changes every row (other top_k alone would change only the last rows)
REWRITE_COMBINATIONS = [(2, 1), (3, 2), (4, 1), (5, 2), (3, 1), (2, 2), (5, 1), (4, 2)]


class ServerCpu:
    """The CPU time the server and its model worker used over a phase, per second and per
    answer: on a shared machine whose speed changes from run to run, a steadier figure for
    comparing two versions of the code than latency."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.mark()

    def mark(self) -> None:
        self._at = tree_cpu_by_process(self.pid)

    def report(self, elapsed: float, *tallies: Tally) -> None:
        now = tree_cpu_by_process(self.pid)
        # the server itself, and its children (the model worker) that lived through the phase
        server = now.get(self.pid, math.nan) - self._at.get(self.pid, math.nan)
        children = sum(now[p] - self._at[p] for p in now if p != self.pid and p in self._at)
        used = server + children
        answers = max(sum(len(t.latencies) + t.errors for t in tallies), 1)
        print(
            f"{'':<38} server + worker CPU {used / elapsed:.2f} cores, "
            f"{used / answers * 1e3:.2f} ms per answer (server {server / elapsed:.2f} cores, "
            f"{server / answers * 1e3:.2f} ms; worker {children / elapsed:.2f} cores, "
            f"{children / answers * 1e3:.2f} ms)"
        )
        if set(now) != set(self._at):
            print(f"{'':<38} (a worker started or exited during the phase: its CPU is left out)")
        self.mark()


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


def beside_readers(
    port: int, posts: Sequence[str], reads: list[str], clients: int, headers, seconds: float
) -> tuple[Tally, Tally, float]:
    """``clients`` posting ``posts`` while as many read ``reads``: both tallies, the seconds."""
    posted, read = Tally(), Tally()
    groups = [Clients("POST", posts, clients, posted), Clients("GET", reads, clients, read)]
    return posted, read, run_clients(port, groups, headers, seconds)


def beside_ingests(
    port: int, posts, reads, args, headers, ingest_headers, cpu: ServerCpu
) -> bool | None:
    """Phase 5: model runs and reads while ``args.ingest_clients`` store patients from report
    text (extraction in the server: scispaCy, the linker, the context rules); whether the
    diagnoses and reads met their targets, None when the first ingest failed and the phase
    could not run. The extractor loads on the first ingest (seconds), before the phase."""
    bodies = ingests()
    began = time.perf_counter()
    status, answer = request(
        port, "POST", bodies[0][0], json.loads(bodies[0][1]), timeout=180, headers=ingest_headers
    )
    if status not in (200, 201):
        print(f"phase 5 could not run: the first ingest answered {status}: {answer[:300]!r}")
        return None
    print(f"the extractor loaded with the first ingest in {time.perf_counter() - began:.1f} s")
    diagnosed, read, stored = Tally(), Tally(), Tally(ok=frozenset({200, 201}))
    period = args.ingest_clients / args.ingest_rate if args.ingest_rate > 0 else 0.0
    groups = [
        Clients("POST", posts, args.clients, diagnosed),
        Clients("GET", reads, args.clients, read),
        Clients("POST", bodies, args.ingest_clients, stored, ingest_headers, period),
    ]
    cpu.mark()
    elapsed = run_clients(port, groups, headers, args.duration)
    met = report("POST diagnoses, runs, + reads + ingest", diagnosed, elapsed, DIAGNOSE_P99_S)
    met &= report("GET /v1/patients/{id}, + runs + ingest", read, elapsed, READ_P99_S)
    pace = f"target {args.ingest_rate:g}/s" if period else "unpaced"
    report(f"POST /v1/patients ({args.ingest_clients} clients, {pace})", stored, elapsed, None)
    cpu.report(elapsed, diagnosed, read, stored)
    return met


def ingests(count: int = 40) -> list[tuple[str, bytes]]:
    """Phase 5's ``POST /v1/patients`` bodies: the demo cohort's report texts, each under a new
    patient id (``ingest-<n>``, ``count`` of them, so later rounds replace stored ones); the
    server extracts their findings."""
    from data.cohort import load_cohort

    cases = load_cohort()
    bodies = []
    for n in range(count):
        patient = cases[n % len(cases)].patient
        body = {"id": f"ingest-{n}", "reports": [r.text for r in patient.reports]}
        bodies.append(("/v1/patients", json.dumps(body).encode()))
    return bodies


def machine_speed(steps: int = 2_000_000) -> float:
    """Milliseconds per million steps of a pure-Python loop, best of 5 (one core, the
    interpreter alone): the figures of runs on different machines are read against it."""
    best = float("inf")
    for _ in range(5):
        began, total = time.perf_counter(), 0
        for i in range(steps):
            total += i
        best = min(best, time.perf_counter() - began)
    return best / steps * 1e9


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per phase")
    parser.add_argument(
        "--clients",
        type=int,
        default=20,
        help="concurrent clients per kind (diagnoses, reads; phase 5's are --ingest-clients)",
    )
    parser.add_argument("--model", type=Path, default=None, help="a saved model folder")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds of warm-up first")
    parser.add_argument("--top-k", type=int, default=3, help="diagnoses per answer")
    parser.add_argument("--paths", type=int, default=2, help="paths per diagnosis")
    parser.add_argument(
        "--no-rewrite", action="store_true", help="skip phase 4 (runs whose rows change)"
    )
    parser.add_argument(
        "--ingest-clients", type=int, default=2, help="phase 5's clients storing patients (0: skip)"
    )
    parser.add_argument(
        "--ingest-rate",
        type=float,
        default=INGEST_RATE,
        help="phase 5's patients stored per second, all its clients together (0: unpaced)",
    )
    args = parser.parse_args()
    for name in ("duration", "clients", "ingest_clients", "ingest_rate", "warmup"):
        if getattr(args, name) < 0:
            parser.error(f"--{name.replace('_', '-')} must not be negative")
    if args.duration == 0 or args.clients == 0:
        parser.error("--duration and --clients must be positive")

    from api.auth import key_entry, new_key

    key, ingest_key = new_key(), new_key()
    headers = {"Authorization": f"Bearer {key}"}
    ingest_headers = {"Authorization": f"Bearer {ingest_key}"}
    with tempfile.TemporaryDirectory(prefix="kgdx-load-") as folder:
        env, ids = prepare(Path(folder), args.model)
        speed = machine_speed()
        entries = [key_entry("load", "clinician", key), key_entry("ingest", "ingest", ingest_key)]
        env["KGDX_API_KEYS"] = json.dumps([entry.model_dump() for entry in entries])
        query = f"?top_k={args.top_k}&paths_per_diagnosis={args.paths}"
        diagnose_paths = [f"/v1/patients/{pid}/diagnoses{query}" for pid in ids]
        read_paths = [f"/v1/patients/{pid}" for pid in ids]
        with serve(env, keep_keys=True) as (port, process):
            # the model loads on the first diagnosis, and the model worker process
            # (api/model_worker.py) starts with it: seconds of imports and warm-up, during which
            # diagnoses run in the server process
            warm = Tally()
            run_clients(port, [Clients("POST", diagnose_paths, 2, warm)], headers, args.warmup)
            if not warm.latencies:
                print(f"warm-up failed: statuses {warm.statuses}")
                return 1
            print(
                f"{len(ids)} patients; {args.clients} clients per kind, {args.duration:.0f} s per "
                f"phase; load average before {os.getloadavg()[0]:.2f} "
                f"(cores {os.cpu_count()}); a Python loop {speed:.0f} ms per million steps"
            )
            fresh = [f"{path}&refresh=true" for path in diagnose_paths]
            alone = Tally()
            cpu = ServerCpu(process.pid)
            elapsed = run_clients(
                port, [Clients("POST", fresh, args.clients, alone)], headers, args.duration
            )
            load_1 = os.getloadavg()[0]
            met = report("POST diagnoses, model runs", alone, elapsed, DIAGNOSE_P99_S)
            cpu.report(elapsed, alone)
            mixed, reads, elapsed = beside_readers(
                port, fresh, read_paths, args.clients, headers, args.duration
            )
            load_2 = os.getloadavg()[0]
            met &= report("POST diagnoses, runs, + reads", mixed, elapsed, DIAGNOSE_P99_S)
            met &= report("GET /v1/patients/{id}, + runs", reads, elapsed, READ_P99_S)
            cpu.report(elapsed, mixed, reads)
            remembered, reads, elapsed = beside_readers(
                port, diagnose_paths, read_paths, args.clients, headers, args.duration
            )
            report("POST diagnoses, memo, + reads", remembered, elapsed, DIAGNOSE_P99_S)
            report("GET /v1/patients/{id}, + memo", reads, elapsed, READ_P99_S)
            cpu.report(elapsed, remembered, reads)
            load_3 = os.getloadavg()[0]
            if not args.no_rewrite:
                cpu.mark()
                rewrites, reads, elapsed = beside_readers(
                    port, Rewrites(ids), read_paths, args.clients, headers, args.duration
                )
                met &= report(
                    "POST diagnoses, rows change, + reads", rewrites, elapsed, DIAGNOSE_P99_S
                )
                met &= report("GET /v1/patients/{id}, + rewrites", reads, elapsed, READ_P99_S)
                cpu.report(elapsed, rewrites, reads)
            load_4 = os.getloadavg()[0]
            fed = None  # phase 5: whether it met its targets; None: not run
            if args.ingest_clients:
                fed = beside_ingests(port, fresh, read_paths, args, headers, ingest_headers, cpu)
                met &= fed is True  # a feed that cannot store a patient misses
            print(
                f"load average after phase 1 {load_1:.2f}, 2 {load_2:.2f}, 3 {load_3:.2f}"
                + ("" if args.no_rewrite else f", 4 {load_4:.2f}")
                + (f", 5 {os.getloadavg()[0]:.2f}" if args.ingest_clients else "")
                + " (1-minute; this machine is shared)"
            )
    phases = (
        ["1", "2"] + ([] if args.no_rewrite else ["4"]) + (["5"] if args.ingest_clients else [])
    )
    phases = ", ".join(phases[:-1]) + " and " + phases[-1]
    print(f"targets (model runs, phases {phases}):", "met" if met else "MISSED (see above)")
    if args.ingest_clients and fed is None:
        print("phase 5 could not run: its first patient was not stored (see above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
