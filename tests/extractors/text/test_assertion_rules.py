"""The assertion rule file: the shipped one loads, a bad line fails with file:line, and a rule
file of one's own changes what the extractor reads."""

from __future__ import annotations

import pytest

from extractors.text.rules import (
    ASSERTION_RULES,
    COLUMNS,
    TRIGGER_CATEGORIES,
    expand_first_token,
    load_assertion_rules,
)
from graph.errors import ConfigError

HEADER = "\t".join(COLUMNS)


def _write(tmp_path, *lines: str):
    path = tmp_path / "rules.tsv"
    path.write_text("# a comment\n" + HEADER + "\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_shipped_rules_cover_every_kind_and_category():
    rules = load_assertion_rules()
    assert rules.path == ASSERTION_RULES
    triggers = {rule.category for rule in rules.of_kind("trigger")}
    assert triggers == set(TRIGGER_CATEGORIES)
    assert rules.of_kind("pseudo") and rules.of_kind("terminate")
    assert rules.section_assertions == {
        "past_medical_history": "HISTORICAL",
        "comparison": "HISTORICAL",
        "family_history": "FAMILY",
    }
    # a HISTORY: or INDICATION: header is the presenting problem, not history
    headers = rules.section_headers
    assert "clinical history" in headers["history"] and "indication" in headers["indication"]
    assert {"history", "indication"}.isdisjoint(rules.section_assertions)
    assert all(rule.concept_ids for rule in rules.normal_subjects)
    assert all(rule.notes for rule in rules.rules if rule.kind == "normal_subject")


def test_shipped_rules_build_medspacy_rules():
    from medspacy.context import ConTextRule

    rules = load_assertion_rules()
    context = rules.context_rules()
    normal = rules.context_rules(normal=True)
    assert all(isinstance(rule, ConTextRule) for rule in context + normal)
    assert "NORMAL" not in {rule.category for rule in context}
    assert {rule.category for rule in normal} >= {"NORMAL", "TERMINATE"}
    # a category-scoped terminator ends only its own category's triggers
    family = [rule for rule in context if rule.category == "FAMILY"]
    assert family and all("END_FAMILY" in rule.terminated_by for rule in family)
    negation = [rule for rule in context if rule.category == "NEGATED_EXISTENCE"]
    assert all("END_FAMILY" not in rule.terminated_by for rule in negation)
    assert {rule.category for rule in rules.section_rules()} >= {"findings", "impression"}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("trigger\tno\tNEGATED\tFORWARD", "category 'NEGATED' is not one of"),
        ("trigger\tno\tNEGATED_EXISTENCE\tSIDEWAYS", "direction 'SIDEWAYS' is not one of"),
        ("trigger\tno\tNEGATED_EXISTENCE\t", "direction '' is not one of"),
        ("rule\tno\tNEGATED_EXISTENCE\tFORWARD", "unknown kind 'rule'"),
        ("trigger\t\tNEGATED_EXISTENCE\tFORWARD", "empty literal"),
        ("trigger\tno\tNEGATED_EXISTENCE\tFORWARD\t0", "max_scope '0' must be a positive"),
        ("trigger\tno\tNEGATED_EXISTENCE\tFORWARD\tfew", "max_scope 'few'"),
        ("trigger\tno\tNEGATED_EXISTENCE\tFORWARD\t\t[{LOWER: no}]", "pattern is not valid JSON"),
        ("trigger\tno\tNEGATED_EXISTENCE\tFORWARD\t\t{}", "JSON list of token objects"),
        ('trigger\tno\tNEGATED_EXISTENCE\tFORWARD\t\t[{"LOWR": "no"}]', "unknown token attribute"),
        ('trigger\tno\tNEGATED_EXISTENCE\tFORWARD\t\t[{"LOWER": "no", "OP": "2"}]', "operator"),
        ('trigger\tno\tNEGATED_EXISTENCE\tFORWARD\t\t[{"LOWER": {"IN": "no"}}]', "list of strings"),
        ('trigger\tno\tNEGATED_EXISTENCE\tFORWARD\t\t[{"TEXT": {"REGEX": "("}}]', "REGEX"),
        ('trigger\tno\tNEGATED_EXISTENCE\tFORWARD\t\t[{"LOWER": "no", "OP": "?"}]', "empty string"),
        ("pseudo\tno change\tPSEUDO\tFORWARD", "direction 'FORWARD' is not one of"),
        ("terminate\tbut\tALL\t\t3", "max_scope is for trigger rows only"),
        ("section\tfindings\tFindings", "must be lower_case words"),
        ("section\tfindings\tfindings\tFORWARD", "takes no direction"),
        ("section_assertion\tfindings\tHISTORICAL", "which no section row declares"),
        ("section\tfindings\tfindings\nsection_assertion\tfindings\tPAST", "'PAST' is not one of"),
        ("normal_subject\theart size\tcardiomegaly", "not a CURIE"),
        ("trigger\tno\tNEGATED_EXISTENCE\tFORWARD\t\t\tnote\textra", "8 tab-separated cells"),
        (
            "trigger\tno\tNEGATED_EXISTENCE\tFORWARD\ntrigger\tno\tNEGATED_EXISTENCE\tFORWARD",
            "duplicate",
        ),
    ],
)
def test_a_bad_line_names_file_and_line(tmp_path, line, message):
    path = _write(tmp_path, line)
    with pytest.raises(ConfigError, match=message) as caught:
        load_assertion_rules(path)
    bad_line = 2 + len(line.split("\n"))  # comment, header, then the rows
    assert f"{path.resolve()}:{bad_line}:" in str(caught.value)


def test_missing_header_or_file(tmp_path):
    path = tmp_path / "rules.tsv"
    path.write_text("trigger\tno\tNEGATED_EXISTENCE\tFORWARD\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"rules.tsv:1: the first line must be the header"):
        load_assertion_rules(path)
    with pytest.raises(ConfigError, match="not found"):
        load_assertion_rules(tmp_path / "absent.tsv")


def test_leading_word_lists_expand_to_plain_patterns():
    pattern = [{"LOWER": {"IN": ["is", "are"]}, "OP": "?"}, {"LOWER": "not"}, {"LOWER": "seen"}]
    assert expand_first_token(pattern) == [
        [{"LOWER": "is"}, {"LOWER": "not"}, {"LOWER": "seen"}],
        [{"LOWER": "are"}, {"LOWER": "not"}, {"LOWER": "seen"}],
        [{"LOWER": "not"}, {"LOWER": "seen"}],
    ]
    kept = [{"LOWER": {"IN": ["a"]}, "OP": "*"}, {"LOWER": "b"}]
    assert expand_first_token(kept) == [kept]


def test_an_own_rule_file_changes_the_assertions(tmp_path):
    from extractors.text import ReportExtractor
    from extractors.text.labels import LabelMap

    path = _write(
        tmp_path,
        "trigger\tnix\tNEGATED_EXISTENCE\tFORWARD\t\t\ta made-up negation",
        "section\tfindings\tfindings",
        "section\tnotes\tnotes",
        "section_assertion\tnotes\tHISTORICAL",
    )
    extractor = ReportExtractor.from_concepts(
        (), extra_synonyms=LabelMap.load().extra_synonyms(), assertion_rules=str(path)
    )
    text = "FINDINGS: Nix pneumothorax. No pleural effusion.\nNOTES: Atelectasis."
    by_text = {f.provenance.text.lower(): f.assertion for f in extractor.extract(text)}
    assert by_text["pneumothorax"].status == "absent"
    assert by_text["pleural effusion"].status == "present"  # "no" is not a rule of this file
    assert by_text["atelectasis"].status == "historical"  # the section says so
