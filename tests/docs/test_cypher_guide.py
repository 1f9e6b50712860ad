"""docs/cypher.md: the schema section equals the generated one, and every example runs.

The examples run on the embedded store loaded with the curated seed KG (``data/kg``) and the
guide's demo patients (``tests/fixtures/cypher/guide_patients.json``), through the same
read-only ``store.query`` path researchers use.
"""

from __future__ import annotations

import shutil

import pytest

from graph.cypher_docs import (
    BEGIN,
    END,
    GUIDE_PATH,
    generated_section,
    guide_queries,
    schema_markdown,
    write_schema,
)
from graph.cypher_guard import check_read_only
from graph.errors import InputError
from graph.schema import KG_RELATIONS, NODE_LABELS, PATIENT_RELATIONS

QUERIES = guide_queries()


def test_schema_section_is_generated_from_the_schema_module() -> None:
    section = generated_section(GUIDE_PATH.read_text(encoding="utf-8"))
    assert section == schema_markdown(), "run: python -m graph.cypher_docs"
    for name in (*NODE_LABELS, *KG_RELATIONS, *PATIENT_RELATIONS):
        assert f"`{name}`" in section


def test_write_schema_repairs_a_stale_section(tmp_path) -> None:
    guide = tmp_path / "cypher.md"
    shutil.copy(GUIDE_PATH, guide)
    text = guide.read_text(encoding="utf-8")
    stale = text.replace("`IS_A`", "`IS_KIND_OF`", 1)
    guide.write_text(stale, encoding="utf-8")
    assert write_schema(guide) is True
    assert guide.read_text(encoding="utf-8") == text
    assert write_schema(guide) is False


def test_guide_without_markers_is_an_input_error(tmp_path) -> None:
    with pytest.raises(InputError, match="GENERATED"):
        generated_section("# a guide\n" + END + BEGIN)


def test_guide_has_at_least_twelve_examples_each_with_expectations() -> None:
    assert len(QUERIES) >= 12
    assert all(q.expect for q in QUERIES), "every example names values it must return"
    assert sum(q.neo4j is not None for q in QUERIES) >= 3


@pytest.mark.parametrize("query", QUERIES, ids=[q.name for q in QUERIES])
def test_guide_example_runs_on_the_embedded_store(guide_store, query) -> None:
    result = guide_store.query(query.cypher, query.params)
    assert result.rows, f"{query.name} returned nothing on the demo data"
    text = repr(result.rows)
    for value in query.expect:
        assert value in text, f"{query.name}: {value!r} not in {text[:500]}"


@pytest.mark.parametrize(
    "query", [q for q in QUERIES if q.neo4j], ids=[q.name for q in QUERIES if q.neo4j]
)
def test_neo4j_forms_are_read_only_and_differ(query) -> None:
    assert check_read_only(query.neo4j)
    assert query.neo4j != query.cypher
    assert "label(" not in query.neo4j and "list_transform" not in query.neo4j


def test_negated_finding_query_selects_exactly_the_matching_patients(guide_store) -> None:
    query = next(q for q in QUERIES if q.name == "negated_finding_with_diagnosis")
    rows = guide_store.query(query.cypher, query.params).rows
    # P003 also has heart failure, but its effusion is present; P004/P005 deny effusion but
    # are not labelled with heart failure.
    assert rows == (("P001", "pleural effusion", "congestive heart failure"),)


def test_disagreement_query_compares_rank_one_with_labels(guide_store) -> None:
    query = next(q for q in QUERIES if q.name == "prediction_disagrees_with_label")
    records = guide_store.query(query.cypher, query.params).records()
    assert [(r["patient"], r["predicted"]) for r in records] == [("P003", "pneumonia")]


def test_three_hop_walk_stays_on_concepts(guide_store) -> None:
    query = next(q for q in QUERIES if q.name == "diseases_within_3_hops")
    diseases = {r["id"] for r in guide_store.query(query.cypher, query.params).records()}
    kinds = guide_store.get_concepts(diseases)
    assert diseases and all(kinds[i].kind.value == "disease" for i in diseases)
    # Heart failure has pleural effusion as a finding: one hop.
    assert "UMLS:C0018802" in diseases


def test_mention_spans_match_the_report_text(guide_store) -> None:
    query = next(q for q in QUERIES if q.name == "mentions_with_sentences")
    spans = {r["span"] for r in guide_store.query(query.cypher, query.params).records()}
    assert spans == {"pleural effusion"}
