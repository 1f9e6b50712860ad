"""Speed of the reasoning engine: one new patient (all candidates + 3 paths) and batch ranking.

``python bench/reasoning.py --run RUN --db KG.lbug`` measures a trained run on its KG; with
``--quick`` (what ``python -m bench`` runs) it builds the HPO KG from ``../shared/data`` into a
temporary folder and trains a quick run on a slice first. Prints p50/p95 latency of
``diagnose`` (rank all ~8,000 candidates + 3 paths for each of the top 3) against the issue's
50 ms target, patients/s of batch ranking against 500/s, and peak RSS.
"""

from __future__ import annotations

import argparse
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
    parser.add_argument("--patients", type=int, default=300)
    args = parser.parse_args()
    if not (SHARED / "phenopackets").is_dir():
        print("../shared/data is not available: skipped")
        return 0
    import numpy as np
    import torch

    from gnn.reasoning.explain_paths import diagnose
    from gnn.reasoning.pipeline import TrainConfig, resolve_cases, train_reasoner
    from gnn.reasoning.run import load_run
    from gnn.tasks import get_task

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
    reasoner.embeddings()
    hpo_of = {i: c for c, i in kg.hpo_index.items()}
    latencies = []
    for p in patients[:100]:
        observed = [hpo_of[t] for t in p.observed]
        excluded = [hpo_of[t] for t in p.excluded]
        started = time.perf_counter()
        diagnose(reasoner, observed, excluded, top=3, paths=3)
        latencies.append(time.perf_counter() - started)
    started = time.perf_counter()
    for p in patients:
        reasoner.scores("kgdx", p)
    rate = len(patients) / (time.perf_counter() - started)
    p50, p95 = np.percentile(latencies, [50, 95]) * 1000
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"candidates: {kg.num_diseases}; torch threads: 1")
    print(
        f"diagnose (rank all + 3 paths for top 3): p50 {p50:.1f} ms, p95 {p95:.1f} ms "
        f"(target 50 ms: {50 / p50:.2f}x)"
    )
    print(f"batch ranking: {rate:.0f} patients/s (target 500/s: {rate / 500:.2f}x)")
    print(f"peak RSS: {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
