"""Speed of the reasoning engine: one new patient (all candidates + 3 paths) and batch ranking.

``python bench/reasoning.py --run RUN --db KG.lbug`` measures a trained run on its KG; with
``--quick`` (what ``python -m bench`` runs) it builds the HPO KG from ``../shared/data`` into a
temporary folder and trains a quick run on a slice first. For each torch thread count
(``--threads 1,2``) it prints p50/p95 latency of ``diagnose`` (rank all ~8,000 candidates + 3
paths for each of the top 3) against the issue's 50 ms target, and patients/s of ranking every
candidate with kgdx's model, batched (:func:`gnn.reasoning.batch.rank_batch`) and one patient at
a time (``Reasoner.scores``), measured alternately in the same run (their ratio), against 500/s,
per wall-clock and per CPU second of this process (on a shared, loaded machine the CPU figure is
what an idle core would give with one thread); then peak RSS and the load average before and
after. Each pass starts with an empty best-match cache.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def phenotype_kg(db: Path | None, work: Path):
    """The phenotype KG of the embedded store ``db``, or (``db`` None) of an HPO-only KG built
    from ``../shared/data`` into ``work``; read once, read-only."""
    from gnn.reasoning.knowledge import PhenotypeKG
    from graph.settings import Settings
    from graph.stores import open_store

    if db is None:
        from kg_loaders.build import build_kg

        settings = Settings(home=work, db_path=work / "kg.lbug")
        hpo = SHARED / "kg" / "hpo"
        build_kg(
            sources=[f"hpo={hpo / 'hp.obo'}", f"hpoa={hpo / 'phenotype.hpoa'}"], settings=settings
        )
    else:
        settings = Settings(home=db.parent, db_path=db)
    with open_store(settings=settings, read_only=True) as store:
        return PhenotypeKG.from_store(store)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, help="run folder from `kgdx train`")
    parser.add_argument("--db", type=Path, help="embedded KG database the run was trained on")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--patients", type=int, default=1000, help="patients ranked per pass")
    parser.add_argument("--one-by-one", type=int, default=300, help="of those, ranked one by one")
    parser.add_argument("--latency", type=int, default=100, help="patients diagnosed one by one")
    parser.add_argument("--threads", default="1,2", help="torch thread counts, comma-separated")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=2, help="alternating passes per path")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    if not (SHARED / "phenopackets").is_dir():
        print("../shared/data is not available: skipped")
        return 0
    import numpy as np
    import torch

    from gnn.reasoning.batch import rank_batch
    from gnn.reasoning.explain_paths import diagnose
    from gnn.reasoning.pipeline import TrainConfig, resolve_cases
    from gnn.reasoning.run import load_run
    from gnn.reasoning.training import train_reasoner
    from gnn.tasks import get_task, ranks_of

    load_before = os.getloadavg()
    torch.set_num_threads(1)
    cases = get_task("phenopackets").read(SHARED / "phenopackets")
    with tempfile.TemporaryDirectory() as tmp:
        kg = phenotype_kg(None if args.run is None or args.quick else args.db, Path(tmp))
        if args.run is None or args.quick:
            config = TrainConfig.quick()
            reasoner, _ = train_reasoner(
                kg=kg, train_cases=cases[::10], val_cases=cases[1::50], config=config
            )
        else:
            reasoner, _ = load_run(args.run, kg)
    patients, _ = resolve_cases(
        kg, cases[3 :: max(len(cases) // args.patients, 1)][: args.patients]
    )
    patients = [p for p in patients if p.disease >= 0 and (p.observed or p.excluded)]
    reasoner.embeddings()
    hpo_of = {i: c for c, i in kg.hpo_index.items()}

    def one_by_one(some) -> tuple[float, float]:
        """(patients per second, per CPU second) ranking ``some`` one at a time."""
        reasoner.sim._best_cache.clear()
        started, cpu = time.perf_counter(), time.process_time()
        for p in some:
            ranks_of(np.array([p.disease]), reasoner.scores("kgdx", p)[None, :])
        return len(some) / (time.perf_counter() - started), len(some) / (time.process_time() - cpu)

    def batched(some) -> tuple[float, float]:
        reasoner.sim._best_cache.clear()
        started, cpu = time.perf_counter(), time.process_time()
        rank_batch(reasoner, some, ["kgdx"], batch_size=args.batch_size)
        return len(some) / (time.perf_counter() - started), len(some) / (time.process_time() - cpu)

    results = {"candidates": kg.num_diseases, "patients": len(patients), "threads": {}}
    print(
        f"candidates: {kg.num_diseases}; patients: {len(patients)} (one by one: "
        f"{min(args.one_by_one, len(patients))}); load average before: "
        + " ".join(f"{x:.2f}" for x in load_before)
    )
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        reasoner.sim._best_cache.clear()
        latencies, cpu_latencies = [], []
        for p in patients[: args.latency]:
            observed = [hpo_of[t] for t in p.observed]
            excluded = [hpo_of[t] for t in p.excluded]
            started, cpu = time.perf_counter(), time.process_time()
            diagnose(reasoner, observed, excluded, top=3, paths=3)
            latencies.append(time.perf_counter() - started)
            cpu_latencies.append(time.process_time() - cpu)
        old, new = [], []
        for _ in range(args.repeats):
            old.append(one_by_one(patients[: args.one_by_one]))
            new.append(batched(patients))
        p50, p95 = np.percentile(latencies, [50, 95]) * 1000
        cpu_p50 = float(np.percentile(cpu_latencies, 50)) * 1000
        figures = {
            "diagnose_p50_ms": round(float(p50), 1),
            "diagnose_p95_ms": round(float(p95), 1),
            "diagnose_cpu_p50_ms": round(cpu_p50, 1),
            "batched_patients_per_s": [round(r) for r, _ in new],
            "batched_patients_per_cpu_s": [round(c) for _, c in new],
            "one_by_one_patients_per_s": [round(r) for r, _ in old],
            "one_by_one_patients_per_cpu_s": [round(c) for _, c in old],
            "ratio": round(
                float(np.median([r for r, _ in new]) / np.median([r for r, _ in old])), 2
            ),
        }
        results["threads"][threads] = figures
        print(f"torch threads {threads}:")
        print(
            f"  diagnose (rank all + 3 paths for top 3): p50 {p50:.1f} ms, p95 {p95:.1f} ms "
            f"(target 50 ms: {50 / p50:.2f}x); CPU time p50 {cpu_p50:.1f} ms"
        )
        wall_new, wall_old = np.median([r for r, _ in new]), np.median([r for r, _ in old])
        print(
            f"  ranking, batched ({args.batch_size}/batch): "
            + ", ".join(f"{r:.0f}" for r, _ in new)
            + f" patients/s (target 500/s: {wall_new / 500:.2f}x); per CPU second: "
            + ", ".join(f"{c:.0f}" for _, c in new)
        )
        print(
            "  ranking, one by one: "
            + ", ".join(f"{r:.0f}" for r, _ in old)
            + " patients/s; per CPU second: "
            + ", ".join(f"{c:.0f}" for _, c in old)
            + f" (batched / one by one: {wall_new / wall_old:.2f}x)"
        )
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    results["peak_rss_mib"] = round(rss)
    results["load_average_before"] = [round(x, 2) for x in load_before]
    results["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(
        f"peak RSS: {rss:.0f} MiB; load average after: "
        + " ".join(f"{x:.2f}" for x in results["load_average_after"])
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
