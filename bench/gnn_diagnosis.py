"""Diagnosis GNNs vs the logistic-regression baseline on the demo cohort, over several seeds.

Findings come from the text extractor run on the cohort's reports (as in ``kgdx demo``); each
seed draws its own stratified 70/10/20 split, and every model and the baseline are measured on
that same split. Prints held-out AUROC / top-1 accuracy (mean and min-max over seeds), training
time per model, and the GNN / baseline ratio.

    .venv/bin/python bench/gnn_diagnosis.py            # 5 seeds, hgt + rgcn + sage
    .venv/bin/python bench/gnn_diagnosis.py --quick    # 2 seeds, rgcn only, fewer epochs
    .venv/bin/python bench/gnn_diagnosis.py --sections all   # the impression in the input too

The model reads the findings of every report section but the impression by default
(graph.sections.FEATURE_SECTIONS): the impression often names the diagnosis, and reading it
measures how well the model reads the label back. ``--sections all`` shows that gap.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI-sized run")
    parser.add_argument("--seeds", type=int, default=None)
    parser.add_argument(
        "--sections", default="default", help="report sections the models read (default, all, ...)"
    )
    args = parser.parse_args()

    from data.cohort import load_cohort
    from extractors.text import ReportExtractor
    from gnn.baseline import logistic_baseline
    from gnn.dataset import candidate_diagnoses, patient_labels, stratified_split
    from gnn.train import train
    from graph.sections import parse_sections
    from graph.subgraph import build_patient_graph
    from kg_loaders.seed import read_seed_concepts, read_seed_relations

    seeds = args.seeds or (2 if args.quick else 5)
    models = ["rgcn"] if args.quick else ["hgt", "rgcn", "sage"]
    epochs = 60 if args.quick else 150
    concepts = read_seed_concepts()
    relations = read_seed_relations(concepts=concepts)
    extractor = ReportExtractor.from_concepts(concepts)
    patients = []
    for case in load_cohort():
        report = case.patient.reports[0]
        findings = tuple(extractor.extract(report.text, report.id))
        patients.append(case.patient.model_copy(update={"findings": findings}))
    sections = parse_sections(args.sections)
    graph = build_patient_graph(patients, concepts, relations, sections=sections)
    labels = patient_labels(patients, graph, candidate_diagnoses(patients, graph))

    scores: dict[str, dict[str, list[float]]] = {}
    for seed in range(seeds):
        masks = stratified_split(labels, seed=seed)
        started = time.perf_counter()
        base = logistic_baseline(graph, labels, masks, seed=seed)["test"]
        row = scores.setdefault(
            "baseline (logistic regression)", {"auroc": [], "top1": [], "s": []}
        )
        row["auroc"].append(base["auroc"])
        row["top1"].append(base["top1_accuracy"])
        row["s"].append(time.perf_counter() - started)
        for model in models:
            result = train(
                graph=graph, patients=patients, model=model, seed=seed, split=masks, epochs=epochs
            )
            row = scores.setdefault(f"GNN {model}", {"auroc": [], "top1": [], "s": []})
            row["auroc"].append(result.metrics["test"]["auroc"])
            row["top1"].append(result.metrics["test"]["top1_accuracy"])
            row["s"].append(result.metrics["timing"]["train_seconds"])

    baseline_auroc = statistics.mean(scores["baseline (logistic regression)"]["auroc"])
    print(
        f"demo cohort: {len(patients)} patients, {labels.y.size(1)} diagnoses, {seeds} seeds, "
        f"{epochs} epochs, held-out test split per seed; input: {sections.describe()}"
    )
    header = f"{'model':32} {'AUROC mean [min-max]':>24} {'top-1 mean':>11} {'fit s':>7} {'AUROC / baseline':>17}"
    print(header)
    print("-" * len(header))
    for name, row in scores.items():
        auroc = row["auroc"]
        print(
            f"{name:32} {statistics.mean(auroc):>8.3f} [{min(auroc):.3f}-{max(auroc):.3f}] "
            f"{statistics.mean(row['top1']):>11.3f} {statistics.mean(row['s']):>7.1f} "
            f"{statistics.mean(auroc) / baseline_auroc:>17.3f}"
        )


if __name__ == "__main__":
    main()
