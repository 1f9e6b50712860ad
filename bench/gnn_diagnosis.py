"""The inductive reasoner on the chest demo cohort vs its baselines, over several seeds.

Findings come from the text extractor run on the cohort's reports (as in ``kgdx demo``), stored
in a fresh embedded store with the seed KG; each seed draws its own 60/20/20 split by diagnosis
(``Engine.train``), and kgdx's model and every baseline (Phenomizer-style Resnik, kNN over
training patients, the no-KG ablation) are measured on that same held-out part. Prints top-1 /
MRR (mean and min-max over seeds), training time, and the kgdx / Phenomizer ratio.

    .venv/bin/python bench/gnn_diagnosis.py            # 5 seeds, sage + rgcn + hgt
    .venv/bin/python bench/gnn_diagnosis.py --quick    # 2 seeds, sage only
    .venv/bin/python bench/gnn_diagnosis.py --sections all   # the impression in the input too

The model reads the findings of every report section but the impression by default
(graph.sections.FEATURE_SECTIONS): the impression often names the diagnosis, and reading it
measures how well the model reads the label back. ``--sections all`` shows that gap.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

METHODS = ("kgdx", "phenomizer", "knn", "no_kg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument(
        "--sections", default="default", help="report sections the models read (default, all, ...)"
    )
    args = parser.parse_args()

    import torch

    from api.engine import Engine
    from data.cohort import load_cohort
    from gnn.reasoning.patients import chest_config
    from graph.settings import Settings

    torch.set_num_threads(1)
    seeds = args.seeds or (2 if args.quick else 5)
    models = ["sage"] if args.quick else ["sage", "rgcn", "hgt"]
    sections = None if args.sections == "default" else args.sections
    folder = Path(tempfile.mkdtemp(prefix="kgdx-bench-"))
    settings = Settings(home=folder, db_path=folder / "bench.lbug")
    figures: dict[tuple[str, str], list[tuple[float, float]]] = {}
    seconds: dict[str, list[float]] = {}
    with Engine(store="embedded", settings=settings) as engine:
        engine.build_seed_kg()
        engine.ingest([c.patient for c in load_cohort()])
        candidates = engine.knowledge("chest").num_diseases
        for model in models:
            for seed in range(seeds):
                started = time.perf_counter()
                result = engine.train(
                    config=chest_config(candidates, model=model), seed=seed, sections=sections
                )
                seconds.setdefault(model, []).append(time.perf_counter() - started)
                test = result.evaluation["test"]
                for method in METHODS:
                    overall = test[method]["overall"]
                    key = (model if method == "kgdx" else "-", method)
                    figures.setdefault(key, []).append((overall["top1"], overall["mrr"]))
    print(
        f"chest demo cohort, {seeds} seeds, held-out test part of each seed's split; "
        f"{candidates} candidate diseases (chance top-1 ~{1 / candidates:.2f})"
    )
    print(f"{'encoder':8} {'method':11} {'top-1 mean (min-max)':24} {'MRR mean (min-max)':24}")
    for (model, method), values in figures.items():
        top1 = [v[0] for v in values]
        mrr = [v[1] for v in values]
        print(
            f"{model:8} {method:11} {_spread(top1):24} {_spread(mrr):24}"
            + (
                f" train {statistics.mean(seconds[model]):.1f} s"
                if method == "kgdx" and model in seconds
                else ""
            )
        )
    phenomizer = statistics.mean(v[1] for v in figures[("-", "phenomizer")])
    for model in models:
        kgdx = statistics.mean(v[1] for v in figures[(model, "kgdx")])
        print(f"kgdx ({model}) / Phenomizer MRR ratio: {kgdx / phenomizer:.2f}")


def _spread(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ({min(values):.3f}-{max(values):.3f})"


if __name__ == "__main__":
    main()
