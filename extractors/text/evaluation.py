"""Report-level label evaluation of text extractors against expert labels (Open-i layout).

Reports follow ``indiana_reports.csv`` (``uid, ..., indication, comparison, findings,
impression``); gold labels follow ``openi_gld_std14.csv`` (``filename`` = ``CXR<uid>``, one 0/1
column per label). A label is predicted positive when a present, current finding of the
patient, linked to one of the label's concepts, is read in the findings or impression section.
"""

from __future__ import annotations

import csv
import math
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from graph.errors import InputError
from graph.records import Certainty, Finding, Record

# Sections the label decision reads: what the radiologist saw, not why the film was taken.
SCORED_SECTIONS = ("findings", "impression")
REPORT_SECTIONS = ("indication", "comparison", "findings", "impression")
_EMPTY = {"", "nan", "none", "none."}


class LabelScore(Record):
    """Precision, recall and F1 of one label (``support`` = gold positives)."""

    label: str
    tp: int
    fp: int
    fn: int
    support: int
    precision: float
    recall: float
    f1: float


class SystemScore(Record):
    """Per-label scores and their micro / macro averages for one extractor."""

    system: str
    labels: tuple[LabelScore, ...]
    micro_precision: float
    micro_recall: float
    micro_f1: float
    macro_f1: float
    reports: int


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def score_labels(
    system: str,
    predicted: dict[str, set[str]],
    gold: dict[str, set[str]],
    labels: Sequence[str],
) -> SystemScore:
    """Compare predicted and gold label sets of the same reports.

    Labels without a single gold positive in ``gold`` are reported (with their false
    positives) but left out of both averages: a gold set in which nobody marked a label (Open-i
    has no "Hernia" although reports mention hiatal hernias) did not annotate it, and its
    recall is undefined. Where the gold set has positives for a label, it is scored.
    """
    rows = []
    for label in labels:
        tp = fp = fn = 0
        for report_id, gold_labels in gold.items():
            is_pred = label in predicted.get(report_id, set())
            is_gold = label in gold_labels
            tp += is_pred and is_gold
            fp += is_pred and not is_gold
            fn += is_gold and not is_pred
        precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        rows.append(
            LabelScore(
                label=label,
                tp=tp,
                fp=fp,
                fn=fn,
                support=tp + fn,
                precision=precision,
                recall=recall,
                f1=f1,
            )
        )
    scored = [row for row in rows if row.support]
    total_tp = sum(row.tp for row in scored)
    total_fp = sum(row.fp for row in scored)
    total_fn = sum(row.fn for row in scored)
    supported = [row.f1 for row in scored]
    return SystemScore(
        system=system,
        labels=tuple(rows),
        micro_precision=_ratio(total_tp, total_tp + total_fp),
        micro_recall=_ratio(total_tp, total_tp + total_fn),
        micro_f1=_ratio(2 * total_tp, 2 * total_tp + total_fp + total_fn),
        macro_f1=sum(supported) / len(supported) if supported else 0.0,
        reports=len(gold),
    )


def _clean(value: str | None) -> str:
    value = (value or "").strip()
    return "" if value.lower() in _EMPTY else value


def report_text(row: dict[str, str]) -> str:
    """A report as text with section headers (``FINDINGS: ...``) from the CSV's columns."""
    parts = []
    for section in REPORT_SECTIONS:
        value = _clean(row.get(section))
        if value:
            parts.append(f"{section.upper()}: {value}")
    return "\n".join(parts)


def _open_csv(path: str | Path) -> tuple[csv.DictReader, object]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"CSV not found: {path}; pass an existing file")
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    handle = path.open(encoding="utf-8", newline="", errors="replace")
    return csv.DictReader(handle), handle


def read_reports(path: str | Path) -> dict[str, str]:
    """Report id (``CXR<uid>``) -> report text, from an ``indiana_reports.csv``-style file.

    Raises:
        InputError: missing file, or no ``uid`` / ``findings`` / ``impression`` column.
    """
    reader, handle = _open_csv(path)
    with handle:
        columns = set(reader.fieldnames or ())
        missing = {"uid", "findings", "impression"} - columns
        if missing:
            raise InputError(f"{path}: report CSV lacks column(s) {sorted(missing)}")
        return {f"CXR{row['uid'].strip()}": report_text(row) for row in reader}


def read_gold(path: str | Path, labels: Sequence[str]) -> dict[str, set[str]]:
    """Report id -> gold positive labels, from an ``openi_gld_std14.csv``-style file.

    Raises:
        InputError: missing file, no ``filename`` column, or a label column missing.
    """
    reader, handle = _open_csv(path)
    with handle:
        columns = list(reader.fieldnames or ())
        if "filename" not in columns:
            raise InputError(f"{path}: label CSV lacks the 'filename' column (CXR<uid>)")
        missing = [label for label in labels if label not in columns]
        if missing:
            raise InputError(f"{path}: label CSV lacks column(s) {missing}")
        gold = {}
        for row in reader:
            gold[row["filename"].strip()] = {
                label for label in labels if _clean(row[label]) in {"1", "1.0"}
            }
        return gold


def predict_labels(
    findings: Iterable[Finding],
    label_of: dict[str, list[str]],
    *,
    count_possible: bool = False,
    sections: Sequence[str] = SCORED_SECTIONS,
) -> set[str]:
    """Labels made positive by the present, current, patient findings of the scored sections."""
    labels: set[str] = set()
    for finding in findings:
        if finding.provenance.kind != "text" or finding.provenance.section not in sections:
            continue
        if not finding.assertion.is_current_positive:
            continue
        if not count_possible and finding.assertion.certainty is Certainty.POSSIBLE:
            continue
        labels.update(label_of.get(finding.concept_id, ()))
    return labels


def format_table(scores: Sequence[SystemScore]) -> list[list[str]]:
    """Rows ``label, support, P/R/F1 per system`` plus micro and macro rows (for printing)."""
    header = ["label", "support"] + [f"{s.system} P/R/F1" for s in scores]
    rows = [header]
    for index, first in enumerate(scores[0].labels):
        cells = [first.label, str(first.support) if first.support else "0 (not scored)"]
        for score in scores:
            row = score.labels[index]
            cells.append(f"{row.precision:.2f}/{row.recall:.2f}/{row.f1:.2f}")
        rows.append(cells)
    rows.append(
        ["micro", ""]
        + [f"{s.micro_precision:.2f}/{s.micro_recall:.2f}/{s.micro_f1:.3f}" for s in scores]
    )
    rows.append(["macro F1", ""] + [f"{s.macro_f1:.3f}" for s in scores])
    return rows


def finite(value: float) -> float:
    """``value`` or 0.0 when it is not finite (JSON has no NaN)."""
    return value if math.isfinite(value) else 0.0
