"""Diagnosis records of a patient subgraph: ranked, calibrated, with KG paths whose evidence
names the sentence, the relation and its source, and absent findings that count against."""

from __future__ import annotations

import re

import pytest

from gnn.reasoning.diagnoses import diagnose_subgraph, explain_subgraph
from graph.errors import InputError
from graph.subgraph import PatientSubgraph, patient_from_terms, patient_subgraph

CHF, EFFUSION = "UMLS:C0018802", "UMLS:C0032227"


def _diagnose(run, store, subgraph, **kwargs):
    return diagnose_subgraph(
        run.reasoner,
        subgraph,
        index=run.index,
        labels=run.labels,
        store=store,
        model_id=run.model_id,
        sections=run.sections,
        **kwargs,
    )


def test_diagnoses_come_ranked_with_evidenced_paths(chest_run, chest_store, cohort_patients):
    by_id = {p.id: p for p in cohort_patients}
    explained = 0
    for patient_id in chest_run.splits["test"][:5]:
        subgraph = patient_subgraph(chest_store, patient_id)
        diagnoses = _diagnose(chest_run, chest_store, subgraph, top_k=3, paths_per_diagnosis=3)
        probabilities = [d.probability for d in diagnoses]
        assert len(diagnoses) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert {d.model_id for d in diagnoses} == {chest_run.model_id}
        sentences = {f.provenance.sentence for f in by_id[patient_id].findings}
        for diagnosis in diagnoses:
            assert diagnosis.concept_id in chest_run.candidate_ids
            for path in diagnosis.paths:
                explained += 1
                assert path.nodes[0] == patient_id and path.nodes[-1] == diagnosis.concept_id
                assert len(path.relations) == len(path.nodes) - 1 == len(path.evidence)
                assert path.relations[0] in ("HAS_FINDING", "HAS_FINDING_ABSENT")
                assert path.evidence[0].startswith(("observed: ", "excluded: "))
                quoted = re.findall(r'"([^"]+)"', path.evidence[0])
                assert quoted and set(quoted) <= sentences
                # the last step names the KG relation and its source as stored
                assert re.match(
                    r"KG: HAS_(FINDING|SYMPTOM) \((kgdx-chest-seed|DO:)", path.evidence[-1]
                )
                assert "annotation frequency 0.50" in path.evidence[-1]
                assert path.node_names[0] == f"patient {patient_id}"
    assert explained > 0


def test_an_absent_finding_is_shown_counting_against(chest_run, chest_store):
    """Heart failure's pleural effusion, excluded in a report: a path against heart failure."""
    patient = patient_from_terms(["UMLS:C0018800"], [EFFUSION], patient_id="Q1")  # cardiomegaly
    subgraph = PatientSubgraph.from_patient(patient, concepts=None)
    diagnosis = explain_subgraph(
        chest_run.reasoner,
        subgraph,
        CHF,
        index=chest_run.index,
        labels=chest_run.labels,
        store=chest_store,
        model_id=chest_run.model_id,
        sections=chest_run.sections,
        k=5,
    )
    assert diagnosis.concept_id == CHF
    (against,) = [p for p in diagnosis.paths if p.relations[0] == "HAS_FINDING_ABSENT"]
    assert against.nodes[1] == EFFUSION and against.score < 0
    assert "counts against" in against.evidence[0] and "term UMLS:C0032227" in against.evidence[0]
    # without the excluded finding heart failure is more probable
    alone = PatientSubgraph.from_patient(patient_from_terms(["UMLS:C0018800"]), concepts=None)
    ranked = {
        d.concept_id: d.probability
        for d in _diagnose(chest_run, chest_store, alone, top_k=21, paths_per_diagnosis=0)
    }
    assert ranked[CHF] > diagnosis.probability


def test_bad_input_is_named(chest_run, chest_store):
    subgraph = PatientSubgraph.from_patient(patient_from_terms(["UMLS:C9999999"]))
    with pytest.raises(InputError, match="no present or absent finding"):
        _diagnose(chest_run, chest_store, subgraph)
    good = PatientSubgraph.from_patient(patient_from_terms(["UMLS:C0018800"]))
    with pytest.raises(InputError, match="not a candidate disease"):
        explain_subgraph(
            chest_run.reasoner,
            good,
            "UMLS:C0000001",
            index=chest_run.index,
            labels=chest_run.labels,
            store=chest_store,
            model_id="m",
            sections=None,
        )
