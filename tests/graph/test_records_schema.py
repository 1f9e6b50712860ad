"""Records validate their input; the schema derives the store tables and the GNN metagraph."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from graph.cypher_guard import check_read_only
from graph.errors import QueryError, SchemaError
from graph.records import (
    Assertion,
    Concept,
    ExplanationPath,
    Finding,
    ImageEvidence,
    Relation,
    TextSpan,
)
from graph.schema import (
    KG_RELATIONS,
    check_label,
    check_relation_type,
    finding_edge_relation,
    inverse_name,
    metagraph,
    relation_tables,
)


def test_records_reject_unknown_fields_and_bad_ids():
    with pytest.raises(ValidationError):
        Concept(id="C0018800", name="cardiomegaly")  # not a CURIE
    with pytest.raises(ValidationError):
        Concept(id="UMLS:C0018800", name="cardiomegaly", colour="red")
    with pytest.raises(ValidationError):
        Relation(src="UMLS:C1", dst="UMLS:C2", type="LIKES")
    with pytest.raises(ValidationError):
        ImageEvidence(image_id="i", model_id="m", probability=1.5)
    concept = Concept(id="UMLS:C0018800", name="cardiomegaly")
    with pytest.raises(ValidationError):
        concept.name = "other"  # frozen


def test_finding_provenance_is_discriminated():
    finding = Finding.model_validate(
        {
            "concept_id": "UMLS:C1",
            "provenance": {"kind": "image", "image_id": "i", "model_id": "m", "probability": 0.7},
        }
    )
    assert isinstance(finding.provenance, ImageEvidence)
    text = Finding(
        concept_id="UMLS:C1", provenance=TextSpan(doc_id="d", start=0, end=3, text="abc")
    )
    assert Finding.model_validate_json(text.model_dump_json()) == text


def test_present_and_absent_findings_are_different_edge_types():
    present = finding_edge_relation(Assertion())
    absent = finding_edge_relation(Assertion(polarity="absent"))
    assert present == "has_finding_present" and absent == "has_finding_absent"
    assert finding_edge_relation(Assertion(certainty="possible")) == "has_finding_possible"
    assert finding_edge_relation(Assertion(temporality="historical")) == "has_finding_historical"
    assert finding_edge_relation(Assertion(experiencer="family")) is None


def test_metagraph_has_reverse_edges_for_everything():
    edges = metagraph({("disease", "HAS_FINDING", "finding")})
    assert ("disease", "HAS_FINDING", "finding") in edges
    assert ("finding", "rev_HAS_FINDING", "disease") in edges
    assert ("patient", "has_finding_absent", "finding") in edges
    assert ("finding", "rev_has_finding_absent", "patient") in edges
    assert len(edges) == len(set(edges))


def test_schema_checks_and_tables():
    assert check_label("Concept") == "Concept"
    with pytest.raises(SchemaError):
        check_label("Concept) DETACH DELETE (n")
    with pytest.raises(SchemaError):
        check_relation_type("IS_A]->() DELETE r//")
    assert inverse_name("HAS_FINDING") == "FINDING_OF"
    pairs, props = relation_tables()["HAS_FINDING"]
    assert ("Patient", "Concept") in pairs and ("Concept", "Concept") in pairs
    assert {"polarity", "weight"} <= {name for name, _ in props}
    assert set(KG_RELATIONS) <= set(relation_tables())


def test_explanation_path_renders():
    path = ExplanationPath(
        nodes=("P007", "UMLS:C0018800", "UMLS:C0018802"),
        node_names=("patient P007", "cardiomegaly", "congestive heart failure"),
        relations=("HAS_FINDING", "FINDING_OF"),
        score=0.4,
    )
    assert path.render() == (
        "patient P007 -HAS_FINDING-> cardiomegaly -FINDING_OF-> congestive heart failure"
    )


@pytest.mark.parametrize(
    "cypher",
    [
        "MATCH (m:Report)-[r:MENTIONS]->(c) RETURN r.start, r.`end`, c.name",
        "MATCH (c:Concept {name: 'CREATE TABLE'}) RETURN c",
        "MATCH (c:Concept) // DELETE in a comment\nRETURN c",
        "CALL show_tables() RETURN *",
        "MATCH (c:Concept) RETURN c.id AS setting;",
    ],
)
def test_guard_allows_reads(cypher):
    assert check_read_only(cypher)


@pytest.mark.parametrize(
    "cypher",
    [
        "MATCH (n) SET n.x = 1",
        "MATCH (n) /* unterminated",
        "MATCH (n {name: 'open}) RETURN n",
        "CALL apoc.periodic.iterate('MATCH (n) RETURN n', 'DETACH DELETE n', {})",
        "USE system SHOW USERS",
        "MATCH (n) FOREACH (x IN [1] | SET n.y = x)",
        "EXPORT DATABASE '/tmp/out'",
    ],
)
def test_guard_rejects_writes(cypher):
    with pytest.raises(QueryError):
        check_read_only(cypher)


def test_relation_sources_round_trip_as_json_text():
    from graph.schema import decode_sources, encode_sources

    assert encode_sources(("HPO:2025-01-16",)) == '["HPO:2025-01-16"]'
    assert encode_sources(()) == ""
    odd = ("a;b", 'quote " and ] bracket', "ünïcode")
    assert decode_sources(encode_sources(odd)) == odd
    # what a researcher may have written by hand, or an older store's list
    assert decode_sources("HPO:2025-01-16") == ("HPO:2025-01-16",)
    assert decode_sources("[not json") == ("[not json",)
    assert decode_sources(["A:1", "B:2"]) == ("A:1", "B:2")
    assert decode_sources(None) == decode_sources("") == ()
