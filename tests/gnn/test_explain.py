"""Explanations are real KG walks that exist in the store, with evidence, and are faithful."""

from __future__ import annotations

import pytest

from gnn.explain import attributions, explain, faithfulness
from gnn.predict import diagnose_patient
from graph.errors import InputError
from graph.schema import KG_RELATIONS, inverse_name

INVERSE = {inverse_name(name): name for name in KG_RELATIONS}


@pytest.fixture(scope="module")
def test_diagnoses(trained, cohort_graph):
    return {pid: diagnose_patient(trained, cohort_graph, pid) for pid in trained.splits["test"]}


def test_paths_walk_real_kg_relations_in_the_store(
    store, seed_kg, cohort_patients, trained, test_diagnoses
):
    concepts, relations = seed_kg
    store.upsert_concepts(concepts)
    store.upsert_relations(relations)
    for patient in cohort_patients:
        if patient.id in test_diagnoses:
            store.upsert_patient(patient)
    checked = 0
    for patient_id, diagnoses in test_diagnoses.items():
        assert [d.probability for d in diagnoses] == sorted(
            (d.probability for d in diagnoses), reverse=True
        )
        for diagnosis in diagnoses:
            for path in diagnosis.paths:
                assert path.nodes[0] == patient_id and path.nodes[-1] == diagnosis.concept_id
                assert path.relations[0] == "HAS_FINDING" and path.score > 0
                assert len(path.evidence) == len(path.relations)
                linked = store.query(
                    "MATCH (p:Patient {id: $p})-[:HAS_FINDING]->(c:Concept {id: $c}) "
                    "RETURN count(*)",
                    {"p": patient_id, "c": path.nodes[1]},
                )
                assert linked.rows[0][0] >= 1
                # the first step's evidence is the report sentence the finding was read from
                patient = store.get_patient(patient_id)
                sentences = {
                    f.provenance.sentence for f in patient.findings if f.concept_id == path.nodes[1]
                }
                assert any(s in path.evidence[0] for s in sentences)
                for (a, b), relation in zip(
                    zip(path.nodes[1:], path.nodes[2:], strict=False),
                    path.relations[1:],
                    strict=True,
                ):
                    src, dst, rel = (
                        (a, b, relation) if relation in KG_RELATIONS else (b, a, INVERSE[relation])
                    )
                    # a symmetric relation (ASSOCIATED_WITH) reads the same walked either way
                    arrow = "-" if KG_RELATIONS[rel].inverse == rel else "->"
                    found = store.query(
                        f"MATCH (s:Concept {{id: $s}})-[r:{rel}]{arrow}(d:Concept {{id: $d}}) "
                        "RETURN r.sources",
                        {"s": src, "d": dst},
                    )
                    assert found.rows, (src, rel, dst)
                    assert path.evidence[path.relations.index(relation)].startswith("KG: ")
                checked += 1
    assert checked >= 10
    rendered = next(p for ds in test_diagnoses.values() for d in ds for p in d.paths).render()
    assert rendered.startswith("patient P") and " -HAS_FINDING-> " in rendered


def test_explained_findings_matter_more_than_random_ones(trained, cohort_graph, test_diagnoses):
    scores = faithfulness(trained, cohort_graph, test_diagnoses, seed=0)
    assert scores["n"] >= 10
    assert scores["explained_drop"] > 0
    assert scores["explained_drop"] > scores["random_drop"]


def test_attributions_cover_positive_findings_only(trained, cohort_graph, cohort_patients):
    patient = next(p for p in cohort_patients if p.id == trained.splits["test"][0])
    scores = attributions(trained, cohort_graph, patient.id, trained.candidate_ids[0])
    present = {
        f.concept_id
        for f in patient.findings
        if f.assertion.polarity.value == "present" and f.assertion.temporality.value == "current"
    }
    assert set(scores) == present
    with pytest.raises(InputError):
        explain(trained, cohort_graph, patient.id, "UMLS:C0018787")  # heart: not a candidate
    with pytest.raises(InputError):
        explain(trained, cohort_graph, "NOPE", trained.candidate_ids[0])
