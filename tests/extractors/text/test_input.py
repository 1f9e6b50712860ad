"""Bad and unusual input: empty, de-identified, undecodable, huge, headerless reports."""

from __future__ import annotations

import pytest

from extractors.text import chunk_offsets, coerce_text
from graph.errors import ConfigError, InputError


@pytest.mark.parametrize("text", ["", "   \n\t ", "XXXX", "XXXX XXXX-XXXX. XXXX, XXXX."])
def test_empty_and_deidentified_reports_give_no_findings(seed_extractor, text):
    assert seed_extractor.extract(text, "empty") == []


def test_invalid_utf8_bytes_raise_input_error(seed_extractor, fixtures):
    data = (fixtures / "text" / "report_latin1.txt").read_bytes()
    with pytest.raises(InputError, match="not valid UTF-8"):
        seed_extractor.extract(data, "latin1")


def test_utf8_bytes_are_accepted(seed_extractor, fixtures):
    data = (fixtures / "text" / "report.txt").read_bytes()
    findings = seed_extractor.extract(data, "report")
    assert {f.provenance.section for f in findings} >= {"findings", "impression"}


def test_non_text_raises_input_error(seed_extractor):
    with pytest.raises(InputError, match="str or bytes"):
        seed_extractor.extract(12345, "number")  # type: ignore[arg-type]


def test_lone_surrogates_are_replaced():
    assert coerce_text("effusion \udcff") == "effusion ?"


def test_report_without_headers_has_no_section(seed_extractor, seed_names):
    findings = seed_extractor.extract("Small right pleural effusion. No pneumothorax.", "plain")
    assert [f.provenance.section for f in findings] == [None, None]  # unknown, not ""
    assert findings[0].concept_id == seed_names["pleural effusion"]


def test_chunk_offsets_cut_at_breaks_and_cover_the_text():
    text = "No effusion. " * 50 + "\n" + "Cardiomegaly. " * 50
    pieces = chunk_offsets(text, 200)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(text)
    assert all(
        end == next_start for (_, end), (next_start, _) in zip(pieces, pieces[1:], strict=False)
    )
    assert all(end - start <= 200 for start, end in pieces)
    assert all(text[end - 1] in " \n" for _, end in pieces[:-1])


def test_unbreakable_text_is_still_chunked():
    assert chunk_offsets("x" * 25, 10) == [(0, 10), (10, 20), (20, 25)]


@pytest.mark.slow
def test_five_megabyte_report_is_chunked_with_exact_offsets(seed_extractor, seed_names):
    unit = (
        "FINDINGS: Small left pleural effusion. The mediastinal contours are within normal "
        "limits for size and appearance. The osseous structures of the thorax are intact and "
        "the soft tissues are unremarkable. No pneumothorax. XXXX XXXX XXXX.\n"
    )
    text = unit * (5_000_000 // len(unit) + 1)
    assert len(text) > 5_000_000 > seed_extractor.chunk_chars
    findings = seed_extractor.extract(text, "huge")
    effusions = [f for f in findings if f.concept_id == seed_names["pleural effusion"]]
    assert len(effusions) == text.count("pleural effusion")
    last = effusions[-1].provenance
    assert text[last.start : last.end] == last.text == "pleural effusion"
    assert last.section == "findings"
    assert all(
        f.assertion.polarity.value == "absent"
        for f in findings
        if f.concept_id == seed_names["pneumothorax"]
    )


def test_extract_many_keeps_order_and_ids(seed_extractor, seed_names):
    results = list(
        seed_extractor.extract_many([("Cardiomegaly.", "a"), "", ("No pneumothorax.", "c")])
    )
    assert len(results) == 3
    assert results[0][0].provenance.doc_id == "a"
    assert results[1] == []
    assert results[2][0].assertion.polarity.value == "absent"


def test_unknown_option_and_empty_vocabulary_raise_config_error():
    from extractors.text import ReportExtractor
    from graph.records import Concept

    with pytest.raises(ConfigError, match="unknown extractor option"):
        ReportExtractor.from_concepts([Concept(id="UMLS:C0018800", name="cardiomegaly")], foo=1)
    with pytest.raises(ConfigError, match="vocabulary is empty"):
        ReportExtractor.from_concepts([Concept(id="HP:0000001", name="All")])
    with pytest.raises(ConfigError, match="assertion mode"):
        ReportExtractor.from_concepts(
            [Concept(id="UMLS:C0018800", name="cardiomegaly")], assertion="magic"
        )
