"""Label map, label scoring, and the evaluation against expert labels (fixtures and Open-i)."""

from __future__ import annotations

import pytest

from extractors.text.evaluation import predict_labels, read_gold, read_reports, score_labels
from extractors.text.labels import LabelMap, expand_form
from graph.errors import InputError
from graph.records import Assertion, Certainty, Concept, Finding, Polarity, Relation, TextSpan


def test_shipped_label_map_covers_the_14_labels_with_curies():
    label_map = LabelMap.load()
    assert len(label_map.labels) == 14
    assert label_map.concepts["Effusion"][0] == "UMLS:C0032227"
    assert label_map.concepts["Cardiomegaly"][0] == "UMLS:C0018800"
    assert "pleural effusion" in label_map.lexicon["Effusion"]
    assert "heart is mildly enlarged" in label_map.lexicon["Cardiomegaly"]


def test_expand_form_alternatives():
    assert expand_form("heart is {mildly|} enlarged") == [
        "heart is mildly enlarged",
        "heart is enlarged",
    ]
    with pytest.raises(InputError, match="expands to more than"):
        expand_form("{a|b}" * 20, limit=100)


def test_bad_label_map_raises_input_error(tmp_path):
    path = tmp_path / "map.tsv"
    path.write_text("label\tids\n", encoding="utf-8")
    with pytest.raises(InputError, match="header must be"):
        LabelMap.load(path)
    path.write_text("label\tconcept_ids\tlexicon\tnote\nEffusion\tnot a curie\t\t\n")
    with pytest.raises(InputError, match="CURIE"):
        LabelMap.load(path)
    with pytest.raises(InputError, match="not found"):
        LabelMap.load(tmp_path / "missing.tsv")


def test_expand_adds_is_a_descendants_from_the_store(store):
    store.upsert_concepts(
        [
            Concept(id="UMLS:C0032227", name="pleural effusion"),
            Concept(id="DOID:0060646", name="congenital chylothorax"),
            Concept(id="KGDX:0000099", name="loculated effusion"),
        ]
    )
    store.upsert_relations(
        [
            Relation(src="KGDX:0000099", dst="UMLS:C0032227", type="IS_A"),
            Relation(src="DOID:0060646", dst="KGDX:0000099", type="IS_A"),
        ]
    )
    expanded = LabelMap.load().expand(store)
    assert {"KGDX:0000099", "DOID:0060646"} <= set(expanded.concepts["Effusion"])
    assert "KGDX:0000099" not in expanded.concepts["Cardiomegaly"]


def test_resolve_follows_label_ids_the_crosswalk_merged_into_a_node():
    """DOID:9675 (pulmonary emphysema) is an xref of its merged node in a built KG; the label
    map's Emphysema then names that node too. An xref two nodes share names neither."""
    concepts = [
        Concept(id="UMLS:C0029607", name="pulmonary emphysema", xrefs=("DOID:9675",)),
        Concept(id="UMLS:C0034067", name="Emphysema", xrefs=("HP:0002097",)),
        Concept(id="UMLS:C1", name="a", xrefs=("HP:0002206",)),
        Concept(id="UMLS:C2", name="b", xrefs=("HP:0002206",)),
    ]
    resolved = LabelMap.load().resolve(concepts)
    emphysema = resolved.concepts["Emphysema"]
    assert emphysema[:3] == ["UMLS:C0034067", "HP:0002097", "DOID:9675"]
    assert "UMLS:C0029607" in emphysema
    assert emphysema.count("UMLS:C0034067") == 1  # already a label id: not added twice
    assert not {"UMLS:C1", "UMLS:C2"} & set(resolved.concepts["Fibrosis"])


def _finding(concept_id: str, section: str, **assertion) -> Finding:
    span = TextSpan(doc_id="d", section=section, start=0, end=1, text="x")
    return Finding(concept_id=concept_id, assertion=Assertion(**assertion), provenance=span)


def test_predict_labels_reads_present_current_findings_of_scored_sections():
    label_of = {"UMLS:C0032227": ["Effusion"], "UMLS:C0018800": ["Cardiomegaly"]}
    findings = [
        _finding("UMLS:C0032227", "findings", polarity=Polarity.ABSENT),
        _finding("UMLS:C0018800", "indication"),
        _finding("UMLS:C0018800", "impression", certainty=Certainty.POSSIBLE),
    ]
    assert predict_labels(findings, label_of) == set()
    assert predict_labels(findings, label_of, count_possible=True) == {"Cardiomegaly"}
    assert predict_labels([_finding("UMLS:C0032227", "findings")], label_of) == {"Effusion"}


def test_score_labels_counts_and_leaves_unannotated_labels_out_of_averages():
    gold = {"r1": {"A"}, "r2": {"B"}, "r3": set()}
    predicted = {"r1": {"A"}, "r2": {"A"}, "r3": {"C"}}
    score = score_labels("s", predicted, gold, ["A", "B", "C"])
    a, b, c = score.labels
    assert (a.tp, a.fp, a.fn, b.fn, c.fp, c.support) == (1, 1, 0, 1, 1, 0)
    assert a.f1 == pytest.approx(2 / 3) and b.f1 == 0.0
    assert score.micro_f1 == pytest.approx(2 * 1 / (2 * 1 + 1 + 1))
    assert score.macro_f1 == pytest.approx((2 / 3 + 0.0) / 2)


def test_readers_join_reports_and_labels_on_uid(fixtures):
    reports = read_reports(fixtures / "text" / "reports.csv")
    gold = read_gold(fixtures / "text" / "labels.csv", LabelMap.load().labels)
    assert set(reports) == set(gold) == {f"CXR{i}" for i in range(1, 11)}
    assert reports["CXR1"].startswith("INDICATION: Cough.\nFINDINGS: The heart")
    assert "COMPARISON" not in reports["CXR1"]  # "None." is no comparison
    assert gold["CXR2"] == {"Cardiomegaly", "Effusion"}


def test_readers_reject_wrong_layouts(tmp_path, fixtures):
    bad = tmp_path / "bad.csv"
    bad.write_text("id,text\n1,No effusion.\n", encoding="utf-8")
    with pytest.raises(InputError, match="lacks column"):
        read_reports(bad)
    with pytest.raises(InputError, match="filename"):
        read_gold(bad, ["Effusion"])


def test_evaluate_fixture_reports_beats_both_baselines(fixtures):
    from extractors.text.run_eval import evaluate_text

    result = evaluate_text(
        reports_csv=fixtures / "text" / "reports.csv",
        labels_csv=fixtures / "text" / "labels.csv",
    )
    scores = {run.score.system: run.score for run in result.runs}
    assert scores["kgdx"].micro_f1 == 1.0
    assert scores["negation_blind"].micro_f1 < 0.75
    assert scores["negspacy_negex"].micro_f1 < scores["kgdx"].micro_f1


@pytest.mark.shared_data
@pytest.mark.slow
def test_open_i_reports_meet_the_targets(shared_data, tmp_path):
    from extractors.text.run_eval import TextEvalResult, evaluate_text

    iu = shared_data / "reports" / "iu_xray"
    result = evaluate_text(
        reports_csv=iu / "indiana_reports.csv",
        labels_csv=iu / "openi_gld_std14.csv",
        systems=("kgdx", "negspacy_negex"),
    )
    kgdx, negex = (run.score for run in result.runs)
    assert kgdx.reports == 3080
    assert kgdx.micro_f1 >= 0.90 and kgdx.macro_f1 >= 0.85
    assert kgdx.micro_f1 - negex.micro_f1 >= 0.05
    saved = TextEvalResult.model_validate_json(result.save_json(tmp_path / "r.json").read_text())
    assert saved == result
