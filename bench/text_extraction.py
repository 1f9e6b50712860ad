"""Benchmark of the report extractor: accuracy and throughput against two peers, in one run.

Systems (same tokenizer, sections and KG matcher; only the assertion step differs):
``kgdx`` (medspaCy ConText + radiology rules, fuzzy linking on), ``negation_blind`` (every
mention present) and ``negspacy_negex`` (negspacy's default NegEx termset).

Prints, on the Open-i reports in ``../shared/data``: per-label P/R/F1, micro / macro F1, and
reports/s and words/s measured in CPU time of this process (one core) and in wall time, with
the machine's load average (the machine may be shared). Secondary: disease-mention F1 (exact
and overlapping spans) on the NCBI-disease devel split, with the KG vocabulary given by the
corpus' own training-split mentions (a dictionary baseline of the matcher + linker).

    .venv/bin/python bench/text_extraction.py            # all 3,080 reports
    .venv/bin/python bench/text_extraction.py --quick    # 300 reports, CI size
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
REPORTS = SHARED / "reports" / "iu_xray" / "indiana_reports.csv"
LABELS = SHARED / "reports" / "iu_xray" / "openi_gld_std14.csv"
NCBI = SHARED / "nlp" / "ncbi_disease"


def _print_rows(rows: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))


def accuracy_and_speed(limit: int | None) -> None:
    """Open-i labels: the three systems, their scores and speeds, ratios against kgdx."""
    from extractors.text.evaluation import (
        SCORED_SECTIONS,
        format_table,
        predict_labels,
        read_gold,
        read_reports,
        score_labels,
    )
    from extractors.text.extractor import ReportExtractor
    from extractors.text.labels import LabelMap
    from extractors.text.run_eval import SYSTEMS

    label_map = LabelMap.load()
    reports = read_reports(REPORTS)
    gold = read_gold(LABELS, label_map.labels)
    ids = [report_id for report_id in gold if report_id in reports][:limit]
    texts = [(reports[report_id], report_id) for report_id in ids]
    words = sum(len(text.split()) for text, _ in texts)
    label_of = label_map.label_of()
    scores, speeds = [], []
    for name, options in SYSTEMS.items():
        extractor = ReportExtractor.from_concepts(
            (), extra_synonyms=label_map.extra_synonyms(), **options
        )
        list(extractor.extract_many(texts[:20]))  # warm-up: first-call allocations
        load = os.getloadavg()[0]
        cpu, wall = time.process_time(), time.perf_counter()
        predicted = {
            report_id: predict_labels(findings, label_of, sections=SCORED_SECTIONS)
            for report_id, findings in zip(ids, extractor.extract_many(texts), strict=True)
        }
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        scores.append(score_labels(name, predicted, {i: gold[i] for i in ids}, label_map.labels))
        speeds.append((name, cpu, wall, load))
    print(f"\n== Open-i ({len(ids)} reports, {words:,} words; findings + impression) ==")
    _print_rows(format_table(scores))
    print("\n== throughput (linking and ConText on for kgdx) ==")
    rows = [["system", "reports/s cpu", "words/s cpu", "reports/s wall", "load avg", "x kgdx"]]
    kgdx_cpu = speeds[0][1]
    for name, cpu, wall, load in speeds:
        rows.append(
            [
                name,
                f"{len(ids) / cpu:.0f}",
                f"{words / cpu:,.0f}",
                f"{len(ids) / wall:.0f}",
                f"{load:.1f}",
                f"{kgdx_cpu / cpu:.2f}",
            ]
        )
    _print_rows(rows)
    print(f"(cpu = process CPU time, one core; {os.cpu_count()} cores, shared machine)")


def _read_pubtator(path: Path) -> list[tuple[str, str, list[tuple[int, int, str]]]]:
    """Documents of a PubTator file: (id, title + abstract, disease mention spans)."""
    docs, text, spans, doc_id = [], "", [], None
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        if not line.strip():
            if doc_id is not None:
                docs.append((doc_id, text, spans))
            text, spans, doc_id = "", [], None
            continue
        if "|t|" in line or "|a|" in line:
            doc_id, _, part = line.split("|", 2)
            text = (text + " " + part) if text else part
            continue
        fields = line.split("\t")
        if len(fields) >= 4 and fields[1].isdigit():
            spans.append((int(fields[1]), int(fields[2]), fields[3]))
    return docs


def ncbi_disease() -> None:
    """Disease-mention F1 on NCBI-disease devel with a vocabulary from the training mentions."""
    from extractors.text.extractor import ReportExtractor
    from graph.records import Concept

    train = next((NCBI / "original" / "train").glob("*.txt"), None)
    devel = next((NCBI / "original" / "devel").glob("*.txt"), None)
    if train is None or devel is None:
        print("\n(NCBI-disease PubTator files not found; skipped)")
        return
    surfaces = sorted({text.lower() for _, _, spans in _read_pubtator(train) for *_, text in spans})
    concepts = [Concept(id=f"NCBI:{i}", name=surface) for i, surface in enumerate(surfaces)]
    extractor = ReportExtractor.from_concepts(concepts, assertion="none")
    docs = _read_pubtator(devel)
    exact = overlap_pred = overlap_gold = n_pred = n_gold = 0
    for (_, _, gold_spans), findings in zip(
        docs, extractor.extract_many([(text, doc_id) for doc_id, text, _ in docs]), strict=True
    ):
        predicted = {(f.provenance.start, f.provenance.end) for f in findings}
        gold = {(start, end) for start, end, _ in gold_spans}
        n_pred, n_gold = n_pred + len(predicted), n_gold + len(gold)
        exact += len(predicted & gold)
        overlap_pred += sum(any(s < ge and gs < e for gs, ge in gold) for s, e in predicted)
        overlap_gold += sum(any(s < ge and gs < e for s, e in predicted) for gs, ge in gold)
    p, r = exact / max(n_pred, 1), exact / max(n_gold, 1)
    op, orr = overlap_pred / max(n_pred, 1), overlap_gold / max(n_gold, 1)
    print(
        f"\n== NCBI-disease devel ({len(docs)} abstracts; vocabulary: {len(surfaces)} train terms) =="
    )
    _print_rows(
        [
            ["match", "P", "R", "F1"],
            ["exact", f"{p:.3f}", f"{r:.3f}", f"{2 * p * r / max(p + r, 1e-9):.3f}"],
            ["overlap", f"{op:.3f}", f"{orr:.3f}", f"{2 * op * orr / max(op + orr, 1e-9):.3f}"],
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 reports (CI size)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N reports")
    parser.add_argument("--skip-ncbi", action="store_true", help="skip the NCBI-disease part")
    args = parser.parse_args()
    if not REPORTS.is_file():
        print(f"{REPORTS} not found: this benchmark needs ../shared/data")
        return
    accuracy_and_speed(300 if args.quick else args.limit)
    if not args.skip_ncbi:
        ncbi_disease()


if __name__ == "__main__":
    main()
