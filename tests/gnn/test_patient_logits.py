"""One patient's probabilities and its findings' occlusion from one batch (the chest KG's small
candidate set, ``gnn/reasoning/logits.py``): the same values as the patient alone and as each
variant scored on its own, the same bits wherever a probability is asked for, and the patient
alone when it has too many findings."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.reasoning import logits as logits_module
from gnn.reasoning.diagnoses import explain_subgraph, score_patient
from gnn.reasoning.fidelity import FidelityConfig, patient_fidelity
from gnn.reasoning.logits import (
    disease_logits,
    leaves_out_together,
    occlusion,
    patient_logits,
    variant_logits,
    without,
)
from gnn.reasoning.patients import resolved_patients
from gnn.reasoning.pipeline import Patient
from graph.subgraph import patient_subgraph


@pytest.fixture(scope="module")
def patients(chest_run, chest_store):
    ids = chest_run.splits["test"][:6]
    found = resolved_patients(chest_run, [patient_subgraph(chest_store, i) for i in ids])
    assert all(p.observed and p.excluded for p in found[:3])  # present and absent findings
    return found


def _softmax(values: np.ndarray) -> np.ndarray:
    shifted = np.exp(values - values.max())
    return shifted / shifted.sum()


def test_one_batch_gives_the_patients_own_probabilities(chest_run, patients):
    reasoner = chest_run.reasoner
    for patient in patients:
        assert leaves_out_together(reasoner, patient)
        computed = patient_logits(reasoner, patient)
        findings = set(patient.observed) | set(patient.excluded)
        assert set(computed.left_out) == findings
        alone = reasoner.scores("kgdx", patient) / reasoner.temperature
        assert np.allclose(computed.logits, alone, atol=1e-5)
        assert np.allclose(reasoner.probabilities(patient), _softmax(alone), atol=1e-6)
        # a finding's left-out row is that variant scored on its own
        for term in sorted(findings)[:3]:
            variant = reasoner.scores("kgdx", without(patient, term)) / reasoner.temperature
            assert np.allclose(computed.left_out[term], variant, atol=1e-5)


def test_occlusion_read_from_the_batch_equals_the_variants_scored_apart(chest_run, patients):
    reasoner = chest_run.reasoner
    for patient in patients[:4]:
        terms = [*patient.observed, *patient.excluded][:6]
        diseases = [int(d) for d in np.argsort(-reasoner.probabilities(patient))[:3]]
        read = occlusion(reasoner, patient, diseases, terms, patient_logits(reasoner, patient))
        apart = np.stack(
            [
                disease_logits(reasoner, patient, diseases)
                - disease_logits(reasoner, without(patient, t), diseases)
                for t in terms
            ]
        )
        assert read.shape == (len(terms), len(diseases))
        assert np.allclose(read, apart, atol=1e-5)
        assert np.abs(read).max() > 1e-3  # the findings matter to the model
        # the same without the patient's logits given (computed), and 0 for a term it lacks
        assert np.array_equal(occlusion(reasoner, patient, diseases, terms), read)
        has = {*patient.observed, *patient.excluded}
        absent = next(t for t in range(reasoner.kg.num_terms) if t not in has)
        assert not occlusion(reasoner, patient, diseases, [absent]).any()


def test_every_route_reads_the_same_probabilities(chest_run, chest_store, patients):
    """A diagnosis, the explanation of one disease and ``Reasoner.probabilities`` agree to the
    last bit (one computation), and a second computation gives the same bits."""
    reasoner = chest_run.reasoner
    for patient in patients[:3]:
        scored = score_patient(reasoner, patient, chest_run.labels.labels, 3, 2)
        probabilities = reasoner.probabilities(patient)
        assert np.array_equal(probabilities, reasoner.probabilities(patient))
        assert scored.probabilities == {d: float(probabilities[d]) for d in scored.order}
        top = scored.order[0]
        explained = explain_subgraph(
            reasoner,
            patient_subgraph(chest_store, patient.id),
            reasoner.kg.disease_ids[top],
            k=2,
            index=chest_run.index,
            labels=chest_run.labels,
            store=chest_store,
            model_id=chest_run.model_id,
            sections=chest_run.sections,
        )
        assert explained.probability == scored.probabilities[top]
        fidelity = patient_fidelity(
            reasoner,
            patient,
            config=FidelityConfig(ks=(1,), draws=1),
            labels=chest_run.labels.labels,
        )
        assert fidelity.probability == float(probabilities.max())


def test_a_patient_with_many_findings_is_scored_alone(chest_run, patients, monkeypatch):
    reasoner = chest_run.reasoner
    patient = patients[0]
    findings = len(set(patient.observed) | set(patient.excluded))
    monkeypatch.setattr(logits_module, "LEFT_OUT_AT_ONCE", findings)
    assert leaves_out_together(reasoner, patient)  # exactly as many: together
    monkeypatch.setattr(logits_module, "LEFT_OUT_AT_ONCE", findings - 1)
    assert not leaves_out_together(reasoner, patient)
    computed = patient_logits(reasoner, patient)
    assert computed.left_out is None
    alone = reasoner.scores("kgdx", patient) / reasoner.temperature
    assert np.array_equal(computed.logits, alone)
    terms = patient.observed[:2]
    diseases = [0, 1]
    variants = [patient] + [without(patient, t) for t in terms]
    by_hand = variant_logits(reasoner, variants, diseases)
    expected = by_hand[0][None, :] - by_hand[1:]
    assert np.array_equal(occlusion(reasoner, patient, diseases, terms, computed), expected)


def test_without_removes_a_term_from_both_lists():
    patient = Patient("p", [1, 2, 3, 2], [4, 5], 7)
    assert without(patient, 2) == Patient("p", [1, 3], [4, 5], 7)
    assert without(patient, 5) == Patient("p", [1, 2, 3, 2], [4], 7)


def test_repeated_and_contradictory_findings_are_left_out_whole(chest_run, patients):
    """A finding listed twice counts once among the variants and leaves with both copies; a
    term both observed and excluded leaves both lists; the attributions read from the batch
    equal those variants scored apart."""
    reasoner = chest_run.reasoner
    first = patients[0]
    both = first.excluded[0]
    patient = Patient("odd", [*first.observed, first.observed[0], both], first.excluded, -1)
    computed = patient_logits(reasoner, patient)
    assert set(computed.left_out) == set(patient.observed) | set(patient.excluded)
    terms = [patient.observed[0], both]
    diseases = list(range(reasoner.kg.num_diseases))
    read = occlusion(reasoner, patient, diseases, terms, computed)
    for row, term in zip(read, terms, strict=True):
        gone = without(patient, term)
        assert term not in gone.observed and term not in gone.excluded
        apart = disease_logits(reasoner, patient, diseases) - disease_logits(
            reasoner, gone, diseases
        )
        assert np.allclose(row, apart, atol=1e-5)
