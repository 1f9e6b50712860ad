"""Patient graph -> HeteroData: edge types by assertion, reverse edges, labels never edges."""

from __future__ import annotations

import pytest
import torch

from graph.errors import InputError
from graph.records import Assertion, Finding, Patient, TextSpan
from graph.schema import metagraph, node_types
from graph.subgraph import build_patient_graph, patient_graph_from_store

CARDIOMEGALY, PNEUMOTHORAX, EFFUSION = "UMLS:C0018800", "UMLS:C0032326", "UMLS:C0032227"
CHF = "UMLS:C0018802"


def _finding(concept_id: str, **assertion: str) -> Finding:
    span = TextSpan(doc_id="r1", sentence="s", start=0, end=1, text="x")
    return Finding(concept_id=concept_id, assertion=Assertion(**assertion), provenance=span)


def _edges(graph, edge_type) -> set[tuple[int, int]]:
    edge_index = graph.data[edge_type].edge_index
    return {tuple(pair) for pair in edge_index.t().tolist()}


def test_present_absent_possible_and_family_findings_are_different_edges(seed_kg):
    concepts, relations = seed_kg
    patient = Patient(
        id="P1",
        findings=(
            _finding(CARDIOMEGALY),
            _finding(PNEUMOTHORAX, polarity="absent"),
            _finding(EFFUSION, certainty="possible"),
            _finding("UMLS:C0034079", experiencer="family"),  # lung nodule in a relative
        ),
        labels=(CHF,),
    )
    graph = build_patient_graph([patient], concepts, relations)
    _, cardio = graph.concept_node(CARDIOMEGALY)
    _, ptx = graph.concept_node(PNEUMOTHORAX)
    _, effusion = graph.concept_node(EFFUSION)
    present = ("patient", "has_finding_present", "finding")
    absent = ("patient", "has_finding_absent", "finding")
    possible = ("patient", "has_finding_possible", "finding")
    assert _edges(graph, present) == {(0, cardio)}
    assert _edges(graph, absent) == {(0, ptx)}
    assert _edges(graph, possible) == {(0, effusion)}
    assert _edges(graph, ("finding", "rev_has_finding_absent", "patient")) == {(ptx, 0)}
    # the family finding and the known diagnosis do not link the patient
    patient_edges = [et for et in graph.data.edge_types if et[0] == "patient"]
    assert sum(graph.data[et].num_edges for et in patient_edges) == 3
    _, chf = graph.concept_node(CHF)
    for edge_type in (et for et in patient_edges if et[2] == "disease"):
        assert chf not in graph.data[edge_type].edge_index[1].tolist()
    assert set(graph.findings["P1"]) == {CARDIOMEGALY, PNEUMOTHORAX, EFFUSION}
    assert set(graph.data.node_types) <= set(node_types())
    assert set(graph.data.edge_types) <= set(metagraph())


def test_kg_edges_and_reverse_edges_mirror_each_other(cohort_graph, seed_kg):
    _, relations = seed_kg
    data = cohort_graph.data
    kg_types = [et for et in data.edge_types if et[0] != "patient" and et[2] != "patient"]
    assert sum(data[et].num_edges for et in kg_types if not et[1].startswith("rev_")) == len(
        relations
    )
    for src, rel, dst in data.edge_types:
        if not rel.startswith("rev_"):
            forward = data[(src, rel, dst)].edge_index
            backward = data[(dst, f"rev_{rel}", src)].edge_index
            assert _edges(cohort_graph, (src, rel, dst)) == {
                (b, a) for a, b in backward.t().tolist()
            }
            assert forward.size(1) == backward.size(1)
    # every node type has features, patients also their finding bag
    for node_type in data.node_types:
        assert data[node_type].x.size(0) == data[node_type].num_nodes
    assert data["patient"].x.size(1) > 10


def test_vocabulary_fixes_node_order_for_new_patients(cohort_graph, seed_kg):
    concepts, relations = seed_kg
    newcomer = Patient(id="NEW", findings=(_finding(CARDIOMEGALY),))
    graph = build_patient_graph([newcomer], concepts, relations, vocabulary=cohort_graph.vocabulary)
    assert graph.data.edge_types == cohort_graph.data.edge_types
    assert graph.concept_node(CARDIOMEGALY) == cohort_graph.concept_node(CARDIOMEGALY)
    for node_type in graph.data.node_types:
        assert graph.data[node_type].x.size(1) == cohort_graph.data[node_type].x.size(1)


def test_bad_graph_input(seed_kg):
    concepts, relations = seed_kg
    with pytest.raises(InputError):
        build_patient_graph([], concepts, relations)
    with pytest.raises(InputError, match="duplicate"):
        build_patient_graph([Patient(id="A"), Patient(id="A")], concepts, relations)
    graph = build_patient_graph([Patient(id="A")], concepts, relations)
    with pytest.raises(InputError):
        graph.concept_node("UMLS:C9999999")


def test_graph_from_store_matches_graph_from_records(store, seed_kg, cohort_patients):
    concepts, relations = seed_kg
    store.upsert_concepts(concepts)
    store.upsert_relations(relations)
    patients = cohort_patients[:5]
    for patient in patients:
        store.upsert_patient(patient)
    from_records = build_patient_graph(patients, concepts, relations)
    from_store = patient_graph_from_store(store, vocabulary=from_records.vocabulary)
    assert from_store.patient_ids == from_records.patient_ids
    for edge_type in from_records.data.edge_types:
        assert torch.equal(
            from_store.data[edge_type].edge_index, from_records.data[edge_type].edge_index
        ), edge_type
    neighbourhood = patient_graph_from_store(store, hops=1)
    assert set(neighbourhood.patient_ids) == {p.id for p in patients}
    assert len(neighbourhood.concepts) <= len(concepts)
