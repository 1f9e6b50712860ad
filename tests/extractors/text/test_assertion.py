"""Assertions on tricky radiology sentences: negation scope, hedges, history, family."""

from __future__ import annotations

import pytest

from graph.records import Certainty, Experiencer, Polarity, Temporality


def _find(extractor, text: str, concept_id: str):
    findings = [f for f in extractor.extract(text, "t") if f.concept_id == concept_id]
    assert findings, f"{concept_id} not found in {text!r}"
    return findings[0].assertion


P, A = Polarity.PRESENT, Polarity.ABSENT
D, U = Certainty.DEFINITE, Certainty.POSSIBLE
CASES = [
    # negation scope across "or" / "and" / comma lists
    ("No pneumothorax or pleural effusion.", "pleural effusion", A, D),
    ("No pneumothorax, pleural effusion, or focal consolidation.", "consolidation", A, D),
    ("No pneumothorax and no pleural effusion.", "pleural effusion", A, D),
    ("There is no evidence of pneumothorax.", "pneumothorax", A, D),
    ("Negative for pneumonia.", "pneumonia", A, D),
    ("Pneumothorax is not identified.", "pneumothorax", A, D),
    ("Lungs are clear without consolidation.", "consolidation", A, D),
    ("FINDINGS: No pneumothorax.", "pneumothorax", A, D),
    # a negation's scope ends at "but" / a new clause
    ("No pleural effusion, but there is cardiomegaly.", "cardiomegaly", P, D),
    ("No pneumothorax. Cardiomegaly.", "cardiomegaly", P, D),
    # "no change in X" asserts X
    ("No change in the small left effusion.", "pleural effusion", P, D),
    ("No significant interval change in cardiomegaly.", "cardiomegaly", P, D),
    # weak hedges make a finding possible; strong ones leave it asserted
    ("Cannot exclude pneumonia.", "pneumonia", P, U),
    ("Pneumonia cannot be excluded.", "pneumonia", P, U),
    ("The opacity may represent atelectasis.", "atelectasis", P, U),
    ("Findings could reflect early pulmonary edema.", "pulmonary edema", P, U),
    ("Opacity most consistent with atelectasis.", "atelectasis", P, D),
    ("Probable small pleural effusion.", "pleural effusion", P, D),
]


@pytest.mark.parametrize(("text", "name", "polarity", "certainty"), CASES)
def test_polarity_and_certainty(seed_extractor, seed_names, text, name, polarity, certainty):
    assertion = _find(seed_extractor, text, seed_names[name])
    assert assertion.polarity is polarity
    assert assertion.certainty is certainty


def test_resolved_finding_is_historical_and_absent(seed_extractor, seed_names):
    for text in ("Resolved pneumothorax.", "The pneumothorax has resolved."):
        assertion = _find(seed_extractor, text, seed_names["pneumothorax"])
        assert assertion.polarity is Polarity.ABSENT
        assert assertion.temporality is Temporality.HISTORICAL


def test_family_history_is_flagged_not_dropped(seed_extractor, seed_names):
    assertion = _find(seed_extractor, "Family history of lung cancer.", seed_names["lung cancer"])
    assert assertion.experiencer is Experiencer.FAMILY
    assert not assertion.is_current_positive


def test_history_and_comparison_sections_are_historical(seed_extractor, seed_names):
    text = (
        "HISTORY: Pneumonia in 2010.\nCOMPARISON: Prior film showed a pleural effusion.\n"
        "FINDINGS: Cardiomegaly."
    )
    findings = {f.concept_id: f for f in seed_extractor.extract(text, "r1")}
    pneumonia = findings[seed_names["pneumonia"]]
    effusion = findings[seed_names["pleural effusion"]]
    heart = findings[seed_names["cardiomegaly"]]
    assert (pneumonia.provenance.section, effusion.provenance.section) == ("history", "comparison")
    assert pneumonia.assertion.temporality is Temporality.HISTORICAL
    assert effusion.assertion.temporality is Temporality.HISTORICAL
    assert heart.provenance.section == "findings"
    assert heart.assertion.is_current_positive


def test_provenance_points_at_the_mention(seed_extractor, seed_names):
    text = "INDICATION: Cough.\nFINDINGS: Small left pleural effusions. No pneumothorax."
    findings = seed_extractor.extract(text, "doc-7")
    effusion = next(f for f in findings if f.concept_id == seed_names["pleural effusion"])
    span = effusion.provenance
    assert span.doc_id == "doc-7"
    assert text[span.start : span.end] == span.text == "pleural effusions"
    assert span.sentence == "Small left pleural effusions."
    assert effusion.confidence == 1.0


def test_a_doubled_period_ends_a_sentence_and_its_negation(seed_extractor, seed_names):
    """Open-i writes "effusion.. Mild atelectasis": the negation must not run into the next
    sentence."""
    text = (
        "No pneumothorax or pleural effusion.. Mild bibasilar atelectasis... Stable cardiomegaly."
    )
    findings = {f.concept_id: f for f in seed_extractor.extract(text, "t")}
    atelectasis = findings[seed_names["atelectasis"]]
    assert atelectasis.assertion.is_current_positive
    assert atelectasis.provenance.sentence == "Mild bibasilar atelectasis..."
    assert findings[seed_names["cardiomegaly"]].assertion.is_current_positive
    assert not findings[seed_names["pleural effusion"]].assertion.is_current_positive
