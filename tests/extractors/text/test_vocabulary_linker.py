"""Vocabulary terms, plural/lemma matching, longest match, fuzzy links and abbreviations."""

from __future__ import annotations

import pytest

from extractors.text import ReportExtractor, Vocabulary
from extractors.text.linker import words_match
from extractors.text.vocabulary import normalise_word, term_key
from graph.records import Concept

CONCEPTS = [
    Concept(id="UMLS:C0032227", name="Pleural effusion", synonyms=("Fluid around lungs",)),
    Concept(id="HP:0000969", name="Edema"),
    Concept(id="UMLS:C0018800", name="Cardiomegaly"),
    Concept(id="UMLS:C0034079", name="Lung nodule"),
    Concept(id="UMLS:C0032326", name="Pneumothorax"),
    Concept(id="HP:0012835", name="Left"),  # an HPO modifier: never a finding on its own
    Concept(id="HP:0000001", name="All"),
]


@pytest.fixture(scope="module")
def small_extractor():
    return ReportExtractor.from_concepts(CONCEPTS)


@pytest.mark.parametrize(
    ("word", "normal"),
    [
        ("Effusions", "effusion"),
        ("opacities", "opacity"),
        ("atelectasis", "atelectasis"),
        ("Pneumothorax", "pneumothorax"),
        ("masses", "mass"),
        ("process", "process"),
        ("ribs", "rib"),
    ],
)
def test_normalise_word(word, normal):
    assert normalise_word(word) == normal


def test_generic_single_words_are_not_terms():
    assert term_key("Left") is None and term_key("All") is None and term_key("x") is None
    assert term_key("Lung nodules") == "lung nodule"
    vocabulary = Vocabulary.from_concepts(CONCEPTS)
    assert "left" not in vocabulary.terms
    assert vocabulary.terms["pleural effusion"] == ("UMLS:C0032227",)
    assert vocabulary.names["UMLS:C0018800"] == "Cardiomegaly"


def test_plurals_and_case_match(small_extractor):
    findings = small_extractor.extract("BILATERAL PLEURAL EFFUSIONS. Lung nodules.", "p")
    assert [f.concept_id for f in findings] == ["UMLS:C0032227", "UMLS:C0034079"]
    assert all(f.confidence == 1.0 for f in findings)


def test_longest_match_wins(small_extractor):
    findings = small_extractor.extract("Pleural effusion and edema.", "l")
    assert [(f.provenance.text, f.concept_id) for f in findings] == [
        ("Pleural effusion", "UMLS:C0032227"),
        ("edema", "HP:0000969"),
    ]


def test_fuzzy_link_of_a_misspelling_has_its_score_as_confidence(small_extractor):
    findings = small_extractor.extract("Mild cardiomegally.", "f")
    assert [f.concept_id for f in findings] == ["UMLS:C0018800"]
    assert 0.85 <= findings[0].confidence < 1.0
    assert findings[0].provenance.text == "cardiomegally"


def test_fuzzy_linker_off_misses_the_misspelling():
    extractor = ReportExtractor.from_concepts(CONCEPTS, linker=False)
    assert extractor.extract("Mild cardiomegally.", "f") == []


def test_fuzzy_link_needs_every_word_close():
    assert words_match("cardiomegally", "cardiomegaly")
    assert words_match("pleural efusion", "pleural effusion")
    assert not words_match("stable cardiac silhouette", "enlarged cardiac silhouette")
    assert not words_match("pleural", "pleural effusion")


def test_defined_abbreviation_links_like_its_long_form(small_extractor):
    text = "Small right pneumothorax (PTX). The PTX is unchanged."
    findings = small_extractor.extract(text, "a")
    assert [f.provenance.text for f in findings] == ["pneumothorax", "PTX", "PTX"]
    assert {f.concept_id for f in findings} == {"UMLS:C0032326"}


def test_from_store_reads_the_kg(store):
    from graph.records import Relation

    store.upsert_concepts(CONCEPTS)
    store.upsert_relations([Relation(src="UMLS:C0032227", dst="HP:0000969", type="IS_A")])
    extractor = ReportExtractor.from_store(store)
    findings = extractor.extract("No pleural effusion.", "s")
    assert findings[0].concept_id == "UMLS:C0032227"
    assert findings[0].assertion.polarity.value == "absent"


def test_anatomy_is_not_a_finding_by_default():
    heart = Concept(id="UMLS:C0018787", name="heart", kind="anatomy")
    effusion = Concept(id="UMLS:C0032227", name="pleural effusion", kind="finding")
    default = ReportExtractor.from_concepts([heart, effusion])
    assert [f.concept_id for f in default.extract("Heart normal. Pleural effusion.")] == [
        "UMLS:C0032227"
    ]
    everything = ReportExtractor.from_concepts([heart, effusion], exclude_kinds=())
    assert len(everything.extract("Heart normal. Pleural effusion.")) == 2


def test_qualifiers_are_never_terms_whatever_the_kinds_asked_for():
    right = Concept(id="UMLS:C0444532", name="Right", kind="qualifier", synonyms=("Right-sided",))
    focal = Concept(id="UMLS:C0205234", name="Focal", kind="qualifier", synonyms=("focal area",))
    effusion = Concept(id="UMLS:C0032227", name="pleural effusion", kind="finding")
    vocabulary = Vocabulary.from_concepts([right, focal, effusion], exclude_kinds=())
    assert set(vocabulary.terms) == {"pleural effusion"}
    assert "UMLS:C0444532" not in vocabulary.names


def test_terms_of_qualifier_words_only_are_not_terms():
    """The second line, for KGs whose loaders do not type qualifiers."""
    for surface in ("Right-sided", "Left sided", "Mild to moderate", "Focal", "Excluded"):
        assert term_key(surface) is None, surface
    assert term_key("Right-sided heart failure") == "right - sided heart failure"
    assert term_key("Focal seizure") == "focal seizure"


def test_one_concept_per_span_the_best_ranked_first():
    """Two concepts that share a term give one finding: the curated lexicon's, else the node
    merged from more sources, else the one whose own name the term is, else by id."""
    merged = Concept(
        id="UMLS:C0032227",
        name="pleural effusion",
        kind="finding",
        sources=("HPO:2025-01-16", "SYMP:2026-07-30"),
    )
    lone = Concept(id="SYMP:0000107", name="pleural effusion", kind="symptom", sources=("S",))
    named = Concept(id="UMLS:C0006142", name="breast cancer", kind="disease", sources=("D",))
    synonym = Concept(
        id="UMLS:C0678222",
        name="Breast carcinoma",
        kind="finding",
        synonyms=("breast cancer",),
        sources=("H",),
    )
    concepts = [lone, merged, synonym, named]
    vocabulary = Vocabulary.from_concepts(concepts)
    assert vocabulary.terms["pleural effusion"] == ("UMLS:C0032227", "SYMP:0000107")
    assert vocabulary.terms["breast cancer"] == ("UMLS:C0006142", "UMLS:C0678222")
    curated = Vocabulary.from_concepts(
        concepts, extra_synonyms={"UMLS:C0678222": ["breast cancer"]}
    )
    assert curated.terms["breast cancer"][0] == "UMLS:C0678222"
    extractor = ReportExtractor.from_concepts(concepts)
    findings = extractor.extract("Pleural effusion. History of breast cancer. Breast cancer.")
    assert [(f.provenance.text, f.concept_id) for f in findings] == [
        ("Pleural effusion", "UMLS:C0032227"),
        ("breast cancer", "UMLS:C0006142"),
        ("Breast cancer", "UMLS:C0006142"),
    ]
