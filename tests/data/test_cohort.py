"""The synthetic demo cohort: loader, gold spans, reproducibility, originality."""

from __future__ import annotations

import csv
import json

import pytest

from data.cohort import COHORT_FILE, load_cohort
from data.cohort.generate import generate
from graph.errors import InputError
from graph.records import Polarity, Temporality
from kg_loaders.seed import read_seed_concepts


def test_cohort_has_labelled_patients_with_present_and_negated_findings():
    cases = load_cohort()
    concepts = {c.id: c for c in read_seed_concepts()}
    assert len(cases) >= 30
    assert len({c.patient.id for c in cases}) == len(cases)
    labels = {label for c in cases for label in c.patient.labels}
    assert len(labels) >= 8 and labels <= set(concepts)
    assert all(concepts[label].kind == "disease" for label in labels)
    polarities = {f.assertion.polarity for c in cases for f in c.gold_findings}
    assert polarities == {Polarity.PRESENT, Polarity.ABSENT}
    assert any(
        f.assertion.temporality is Temporality.HISTORICAL for c in cases for f in c.gold_findings
    )
    for case in cases:
        (report,) = case.patient.reports
        assert {"INDICATION:", "FINDINGS:", "IMPRESSION:"} <= set(report.text.split())
        for finding in case.gold_findings:
            span = finding.provenance
            assert report.text[span.start : span.end] == span.text
            assert span.text in span.sentence
            terms = {concepts[finding.concept_id].name, *concepts[finding.concept_id].synonyms}
            assert span.text.lower() in {t.lower() for t in terms}


def test_generator_reproduces_the_shipped_file():
    rows = generate()
    shipped = [json.loads(line) for line in COHORT_FILE.read_text().splitlines()]
    assert [r["report"]["text"] for r in rows] == [r["report"]["text"] for r in shipped]
    assert len({r["report"]["text"] for r in rows}) == len(rows)  # no two reports alike


@pytest.mark.shared_data
def test_reports_are_not_copied_from_shared_reports(shared_data):
    path = shared_data / "reports/iu_xray/indiana_reports.csv"
    with path.open(encoding="utf-8") as handle:
        corpus = " ".join(" ".join(row.values()) for row in csv.DictReader(handle)).lower()
    sentences = {f.provenance.sentence.lower() for c in load_cohort() for f in c.gold_findings}
    long_sentences = [s for s in sentences if len(s) > 45]
    assert long_sentences
    assert not [s for s in long_sentences if s in corpus]


def test_bad_cohort_files_raise_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_cohort(tmp_path / "missing.jsonl")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "P1", "labels": []}\n{not json\n')
    with pytest.raises(InputError, match=":1: bad cohort row"):
        load_cohort(broken)
    bad_span = tmp_path / "span.jsonl"
    row = json.loads(COHORT_FILE.read_text().splitlines()[0])
    row["mentions"][0]["start"] += 1
    bad_span.write_text(json.dumps(row) + "\n")
    with pytest.raises(InputError, match="gold span"):
        load_cohort(bad_span)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(InputError, match="no patients"):
        load_cohort(empty)
