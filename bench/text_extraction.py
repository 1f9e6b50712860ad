"""Benchmark of the report extractor: accuracy and throughput against two peers, in one run.

Systems (same tokenizer, sections and KG matcher; only the assertion step differs):
``kgdx`` (medspaCy ConText + radiology rules, fuzzy linking on), ``negation_blind`` (every
mention present) and ``negspacy_negex`` (negspacy's default NegEx termset).

Prints, on the Open-i reports in ``../shared/data``: per-label P/R/F1, micro / macro F1, and
reports/s and words/s measured in CPU time of this process (one core) and in wall time, with
the machine's load average (the machine may be shared). Secondary: disease-mention F1 (exact
and overlapping spans) on the NCBI-disease devel split, with the KG vocabulary given by the
corpus' own training-split mentions (a dictionary baseline of the matcher + linker).

Cold start (no ``../shared/data`` needed): seconds to the first report of ``kgdx extract report``
in a fresh process, with an empty extractor cache (it builds and saves) and with a warm one
(it reads the cache), for the seed KG and a full KG, beside the steady state; and the REST
service's time to /healthz and the latency of its first POST /v1/patients, on a real ``kgdx serve``.
The full default KG is built into a temporary folder unless ``--kg-home`` names a built one.

    .venv/bin/python bench/text_extraction.py            # all 3,080 reports, full KG built
    .venv/bin/python bench/text_extraction.py --quick    # 300 reports, CI size, seed KG only
    .venv/bin/python bench/text_extraction.py --cold-only --kg-home /tmp/kgdx/fullkg
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = ROOT.parent / "shared" / "data"
REPORTS = SHARED / "reports" / "iu_xray" / "indiana_reports.csv"
LABELS = SHARED / "reports" / "iu_xray" / "openi_gld_std14.csv"
NCBI = SHARED / "nlp" / "ncbi_disease"
COLD_REPORT = (
    "FINDINGS: Small right-sided pleural effusion. No pneumothorax. Mild cardiomegaly.\n"
    "IMPRESSION: Cannot exclude early pneumonia in the left lower lobe."
)
COLD_RUNS = 3  # warm-cache starts timed (the median is shown)


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


# ---------------------------------------------------------------- cold start
def _env(home: Path, cache: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KGDX_")}
    env.update(KGDX_HOME=str(home), KGDX_EXTRACT_CACHE_DIR=str(cache), PYTHONPATH=str(ROOT))
    return {**env, **extra}


def _timed_cli(env: dict[str, str], kg: str) -> tuple[float, float]:
    """Wall and CPU seconds of one ``kgdx extract report`` in a fresh process."""
    command = [sys.executable, "-m", "api.cli", "extract", "report", "--json", "--kg", kg]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run = subprocess.run(
        [*command, "--text", COLD_REPORT], cwd=ROOT, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if run.returncode != 0 or not json.loads(run.stdout)["findings"]:
        raise SystemExit(f"kgdx extract report failed:\n{run.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def cold_start(kg_homes: dict[str, Path]) -> None:
    """First report of ``kgdx extract report`` in a fresh process: empty vs warm cache."""
    rows = [["KG", "cache", "wall s", "cpu s", "x empty", "load avg"]]
    for label, home in kg_homes.items():
        kg = "store" if (home / "kg.lbug").exists() else "seed"
        with tempfile.TemporaryDirectory(prefix="kgdx-cold-") as folder:
            env = _env(home, Path(folder) / "cache")
            load = os.getloadavg()[0]
            empty_wall, empty_cpu = _timed_cli(env, kg)
            warm = sorted(_timed_cli(env, kg) for _ in range(COLD_RUNS))
            warm_wall, warm_cpu = warm[len(warm) // 2]
            rows.append(
                [label, "empty", f"{empty_wall:.2f}", f"{empty_cpu:.2f}", "1.00", f"{load:.1f}"]
            )
            rows.append(
                [
                    label,
                    f"warm (median of {COLD_RUNS})",
                    f"{warm_wall:.2f}",
                    f"{warm_cpu:.2f}",
                    f"{empty_wall / warm_wall:.1f}",
                    f"{os.getloadavg()[0]:.1f}",
                ]
            )
    print("\n== cold start: kgdx extract report, first report in a fresh process ==")
    _print_rows(rows)
    print("(cpu = user+sys of the process: what the wall time is on an idle machine)")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _request(url: str, body: dict | None = None, timeout: float = 600) -> int:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return response.status


def service_cold_start(kg_homes: dict[str, Path]) -> None:
    """A real ``kgdx serve``: time to /healthz, then the latency of the first POST /v1/patients
    sent as soon as /healthz answers (the warm-up may still run) and of a later one."""
    rows = [["KG", "cache", "to /healthz s", "1st POST s", "POST after warm-up s"]]
    for label, home in kg_homes.items():
        if not (home / "kg.lbug").exists():
            continue
        with tempfile.TemporaryDirectory(prefix="kgdx-serve-") as folder:
            served = Path(folder) / "home"
            served.mkdir()
            shutil.copy2(home / "kg.lbug", served / "kg.lbug")  # the POSTs write patients
            cache = Path(folder) / "cache"
            for state in ("empty", "warm"):
                rows.append([label, state, *_serve_once(_env(served, cache), state)])
    if len(rows) > 1:
        print("\n== cold start: kgdx serve, first POST /v1/patients ==")
        _print_rows(rows)


def _serve_once(env: dict[str, str], state: str) -> list[str]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "api.cli", "serve", "--port", str(port)]
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log, text=True)
        try:
            while True:
                try:
                    _request(f"{base}/healthz", timeout=5)
                    break
                except OSError:
                    if server.poll() is not None or time.perf_counter() - started > 300:
                        log.seek(0)
                        raise SystemExit(
                            f"kgdx serve did not start:\n{log.read()[-2000:]}"
                        ) from None
                    time.sleep(0.05)
            to_health = time.perf_counter() - started
            posted = time.perf_counter()
            _request(f"{base}/v1/patients", {"id": f"COLD-{state}", "reports": [COLD_REPORT]})
            first_post = time.perf_counter() - posted
            posted = time.perf_counter()
            _request(f"{base}/v1/patients", {"id": f"COLD-{state}-2", "reports": [COLD_REPORT]})
            later_post = time.perf_counter() - posted
        finally:
            server.terminate()
            server.wait(timeout=60)
    return [f"{to_health:.2f}", f"{first_post:.2f}", f"{later_post:.3f}"]


def _full_kg(kg_home: Path | None, keep: list[tempfile.TemporaryDirectory]) -> Path | None:
    """A built full default KG: ``kg_home``, or one built now into a temporary folder."""
    if kg_home is not None:
        return kg_home
    folder = tempfile.TemporaryDirectory(prefix="kgdx-fullkg-")
    keep.append(folder)
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "api.cli", "kg", "build", "--sources", "default", "--json"],
        cwd=ROOT,
        env=_env(Path(folder.name), Path(folder.name) / "cache"),
        capture_output=True,
        text=True,
    )
    if run.returncode != 0:
        print(f"(full KG build failed; cold start on the seed only)\n{run.stderr[-1000:]}")
        return None
    print(f"(full default KG built in {time.perf_counter() - started:.0f} s for the cold start)")
    return Path(folder.name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 reports (CI size)")
    parser.add_argument("--limit", type=int, default=None, help="evaluate the first N reports")
    parser.add_argument("--skip-ncbi", action="store_true", help="skip the NCBI-disease part")
    parser.add_argument("--kg-home", type=Path, help="a KGDX_HOME with a built full KG")
    parser.add_argument("--cold-only", action="store_true", help="only the cold-start part")
    args = parser.parse_args()
    keep: list[tempfile.TemporaryDirectory] = []
    with tempfile.TemporaryDirectory(prefix="kgdx-seed-") as seed_home:
        homes = {"seed": Path(seed_home)}
        full = args.kg_home if args.quick else _full_kg(args.kg_home, keep)
        if full is not None:
            homes["full default"] = full
        cold_start(homes)
        service_cold_start(homes)
    if args.cold_only:
        return
    if not REPORTS.is_file():
        print(f"{REPORTS} not found: the accuracy and throughput parts need ../shared/data")
        return
    accuracy_and_speed(300 if args.quick else args.limit)
    if not args.skip_ncbi:
        ncbi_disease()


if __name__ == "__main__":
    main()
