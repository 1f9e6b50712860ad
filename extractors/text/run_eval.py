"""``evaluate_text``: score kgdx and two comparison extractors on the same labelled reports."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from extractors.text.evaluation import (
    SystemScore,
    predict_labels,
    read_gold,
    read_reports,
    score_labels,
)
from extractors.text.labels import CHESTXRAY14_TEXT_MAP, LabelMap
from graph.errors import InputError
from graph.log import track
from graph.records import Concept, Record

if TYPE_CHECKING:
    from graph.store import GraphStore

# name -> pipeline options; the two baselines share everything but the assertion step.
SYSTEMS: dict[str, dict[str, object]] = {
    "kgdx": {"assertion": "context"},
    "negation_blind": {"assertion": "none"},
    "negspacy_negex": {"assertion": "negex"},
}


class SystemRun(Record):
    """One extractor's scores and speed on the evaluated reports."""

    score: SystemScore
    seconds: float
    reports_per_s: float
    words_per_s: float


class TextEvalResult(Record):
    """Scores of every system on the same reports, with what was evaluated."""

    reports_csv: str
    labels_csv: str
    label_map: str
    vocabulary_terms: int
    runs: tuple[SystemRun, ...]

    def save_json(self, path: str | Path) -> Path:
        """Write the result as JSON (parent folders are created)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.model_dump(mode="json"), indent=2), encoding="utf-8")
        return path


def default_concepts(store: GraphStore | None) -> Iterable[Concept]:
    """The KG concepts the extractor reads with besides the label lexicon: the store's, if any."""
    return store.iter_concepts() if store is not None else ()


def evaluate_text(
    *,
    reports_csv: str | Path,
    labels_csv: str | Path,
    label_map_path: str | Path = CHESTXRAY14_TEXT_MAP,
    store: GraphStore | None = None,
    concepts: Iterable[Concept] | None = None,
    systems: Iterable[str] = tuple(SYSTEMS),
    count_possible: bool = False,
    limit: int | None = None,
) -> TextEvalResult:
    """Run each system over the reports and score its labels against the gold labels.

    Args:
        reports_csv: reports in the ``indiana_reports.csv`` layout.
        labels_csv: gold labels in the ``openi_gld_std14.csv`` layout.
        label_map_path: label -> concept ids TSV (with its radiology lexicon).
        store: graph store whose concepts join the vocabulary and whose ``IS_A`` descendants
            widen each label; without one the vocabulary is the label map's lexicon alone.
        concepts: explicit vocabulary concepts (overrides ``store`` for the vocabulary).
        systems: names from :data:`SYSTEMS`.
        count_possible: a possible (hedged) finding makes its label positive; off by default,
            as the Open-i expert labels mark findings the report asserts.
        limit: evaluate only the first ``limit`` reports that have gold labels.

    Raises:
        InputError: unreadable files, no overlap between reports and labels, unknown system.
    """
    from extractors.text.extractor import ReportExtractor

    label_map = LabelMap.load(label_map_path)
    vocabulary_concepts = list(concepts if concepts is not None else default_concepts(store))
    if store is not None:
        # label ids the crosswalk merged away (DOID:9675) name their node; then descendants
        label_map = label_map.resolve(vocabulary_concepts).expand(store)
    reports = read_reports(reports_csv)
    gold = read_gold(labels_csv, label_map.labels)
    report_ids = [report_id for report_id in gold if report_id in reports]
    if not report_ids:
        raise InputError(
            f"no report of {reports_csv} has a gold label row in {labels_csv}; "
            "label 'filename' values must be CXR<uid>"
        )
    if limit is not None:
        report_ids = report_ids[:limit]
    gold = {report_id: gold[report_id] for report_id in report_ids}
    texts = [(reports[report_id], report_id) for report_id in report_ids]
    words = sum(len(text.split()) for text, _ in texts)
    label_of = label_map.label_of()
    runs = []
    terms = 0
    for name in systems:
        if name not in SYSTEMS:
            raise InputError(f"unknown system {name!r}; expected some of {sorted(SYSTEMS)}")
        extractor = ReportExtractor.from_concepts(
            vocabulary_concepts, extra_synonyms=label_map.extra_synonyms(), **SYSTEMS[name]
        )
        terms = len(extractor.vocabulary)
        predicted = {}
        started = time.perf_counter()
        stream = extractor.extract_many(texts)
        for report_id, findings in zip(
            report_ids, track(stream, total=len(texts), description=name), strict=True
        ):
            predicted[report_id] = predict_labels(findings, label_of, count_possible=count_possible)
        seconds = time.perf_counter() - started
        runs.append(
            SystemRun(
                score=score_labels(name, predicted, gold, label_map.labels),
                seconds=seconds,
                reports_per_s=len(texts) / seconds,
                words_per_s=words / seconds,
            )
        )
    return TextEvalResult(
        reports_csv=str(reports_csv),
        labels_csv=str(labels_csv),
        label_map=str(label_map_path),
        vocabulary_terms=terms,
        runs=tuple(runs),
    )
