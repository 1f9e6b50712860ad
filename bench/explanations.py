"""Faithfulness of ``kgdx diagnose``'s explanation paths under kgdx's trained model.

``python bench/explanations.py --run RUN --db KG.lbug [--patients 200]`` measures a trained run
on its KG over the run's own test patients (the split in its ``card.json``); with ``--quick``
(what ``python -m bench`` runs) it builds the HPO KG from ``../shared/data`` in a temporary
folder, trains a quick run on a slice and measures patients outside that slice. Prints, per k,
mean fidelity+ of the top-k paths' findings against as many random findings (seeded draws), the
ratio (target >= 3) and fidelity- (see :mod:`gnn.reasoning.fidelity`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run", type=Path, help="run folder from `kgdx train`")
    parser.add_argument("--db", type=Path, help="embedded KG database the run was trained on")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--patients", type=int, default=200)
    parser.add_argument("--draws", type=int, default=10, help="random removals per patient")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the summary here")
    args = parser.parse_args()
    if not (SHARED / "phenopackets").is_dir():
        print("../shared/data is not available: skipped")
        return 0
    if not args.quick and (args.run is None or args.db is None):
        parser.error("--run and --db are needed unless --quick")
    import torch

    from bench.reasoning import phenotype_kg
    from gnn.reasoning.fidelity import FidelityConfig, measure_fidelity
    from gnn.reasoning.pipeline import TrainConfig, resolve_cases
    from gnn.reasoning.run import load_run
    from gnn.reasoning.training import train_reasoner
    from gnn.tasks import get_task

    torch.set_num_threads(1)
    started = time.perf_counter()
    cases = get_task("phenopackets").read(SHARED / "phenopackets")
    with tempfile.TemporaryDirectory() as tmp:
        kg = phenotype_kg(None if args.quick else args.db, Path(tmp))
        if args.quick:
            config = TrainConfig.quick()
            train = cases[::10]
            reasoner, _ = train_reasoner(
                kg=kg, train_cases=train, val_cases=cases[1::50], config=config
            )
            used = {c.id for c in train} | {c.id for c in cases[1::50]}
            pool = [c for c in cases[3::7] if c.id not in used]
            source = "quick run (HPO-only KG, 1/10 of the cases); patients outside its training"
            patients_n = min(args.patients, 40)
        else:
            reasoner, card = load_run(args.run, kg)
            test = set(card.get("split", {}).get("test") or [])
            pool = [c for c in cases if c.id in test]
            source = f"{args.run} ({card['split'].get('kind')} split), its test part"
            patients_n = args.patients
    step = max(len(pool) // patients_n, 1)
    patients, _ = resolve_cases(kg, pool[::step][:patients_n])
    patients = [p for p in patients if p.observed or p.excluded]
    reasoner.embeddings()
    fidelity_config = FidelityConfig(ks=(1, 3), draws=args.draws, seed=args.seed)
    t0 = time.perf_counter()
    summary = measure_fidelity(reasoner, patients, config=fidelity_config)
    elapsed = time.perf_counter() - t0
    command = "python bench/explanations.py " + " ".join(sys.argv[1:])
    print(f"command: {command.strip()}")
    print(f"source: {source}; candidates: {kg.num_diseases}")
    print(
        f"patients: {summary['n']} measured, {summary['skipped']} skipped (< 2 findings or no "
        f"path); top diagnosis right for {summary['top1_correct']:.3f}; score: calibrated "
        f"p(top diagnosis); {args.draws} random draws, seed {args.seed}"
    )
    header = (
        "| k paths | n | fidelity+ (top-k) | fidelity+ (random) | ratio (>= 3) | top-k > random "
        "| fidelity- mean | fidelity- median | fidelity- mean, capped at 1 | ratio on the logit |"
    )
    print(header)
    print("|---" * 10 + "|")
    for k in fidelity_config.ks:
        print(
            f"| {k} | {summary['n']} | {summary['plus'][k]:.4f} | "
            f"{summary['plus_random'][k]:.4f} | {summary['ratio'][k]:.2f} | "
            f"{summary['wins'][k]:.3f} | {summary['minus'][k]:.3f} | "
            f"{summary['minus_median'][k]:.3f} | {summary['minus_capped'][k]:.3f} | "
            f"{summary['ratio_logit'][k]:.2f} |"
        )
    print(f"measure: {elapsed:.1f} s; total {time.perf_counter() - started:.1f} s")
    if args.json:
        out = {k: v for k, v in summary.items() if k != "patients"}
        out["command"] = command
        out["source"] = source
        args.json.write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
