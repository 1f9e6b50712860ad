"""Explanation paths ranked by occlusion on the trained kgdx model (session's quick run)."""

from __future__ import annotations

import numpy as np
import pytest

from gnn.reasoning.explain_paths import OCCLUDED, _hpo_names, diagnose, disease_paths, occlusion
from gnn.reasoning.logits import disease_logits, evidence_rows, without
from gnn.reasoning.pipeline import Patient, resolve_cases


@pytest.fixture(scope="module")
def explained(small_run, cases):
    """Test patients with >= 2 findings, each with its top diagnosis and its ranked paths."""
    reasoner, _, split = small_run
    by_id = {c.id: c for c in cases}
    patients, _ = resolve_cases(reasoner.kg, [by_id[i] for i in split.test[::80][:8]])
    labels = _hpo_names(reasoner)
    out = []
    for p in patients:
        if len(p.observed) + len(p.excluded) >= 2:
            d = int(np.argmax(reasoner.probabilities(p)))
            out.append((p, d, disease_paths(reasoner, p, d, labels)))
    assert out
    return out


def test_disease_logits_are_the_models_logits(small_run, explained):
    reasoner, _, _ = small_run
    patient, disease, _ = explained[0]
    full = reasoner.scores("kgdx", patient) / reasoner.temperature
    some = [disease, 0, reasoner.kg.num_diseases - 1]
    assert np.allclose(disease_logits(reasoner, patient, some), full[some], atol=1e-5)


def test_evidence_rows_are_the_full_evidence_rows(small_run, explained):
    reasoner, _, _ = small_run
    seen = int(reasoner.memory.diseases[0])  # a disease with a case in the memory
    for patient, disease, _ in explained:
        for p in (patient, Patient("x", patient.observed[:2], [patient.observed[-1]], -1)):
            full = reasoner.evidence(p)
            rows = [disease, seen, 0]
            assert np.allclose(evidence_rows(reasoner, p, rows), full[rows], atol=1e-5)


def test_occlusion_is_the_same_with_batched_evidence(small_run, explained, monkeypatch):
    """Small candidate sets (the chest KG) compute the variants' evidence as one batch; forced
    here on the HPO KG, the attributions equal the rows-only computation's."""
    import gnn.reasoning.logits as logits

    reasoner, _, _ = small_run
    for patient, disease, _ in explained[:3]:
        terms = [*patient.observed, *patient.excluded][:OCCLUDED]
        rows_only = occlusion(reasoner, patient, [disease, 0], terms)
        monkeypatch.setattr(logits, "BATCHED_EVIDENCE_BELOW", 10**9)
        batched = occlusion(reasoner, patient, [disease, 0], terms)
        monkeypatch.undo()
        assert batched.shape == (len(terms), 2)
        assert np.allclose(batched, rows_only, atol=1e-4)


def test_top_path_has_the_largest_occlusion_attribution(small_run, explained):
    reasoner, _, _ = small_run
    labels = _hpo_names(reasoner)
    index_of = {labels[t]: t for p, _, _ in explained for t in (*p.observed, *p.excluded)}
    for patient, disease, paths in explained:
        assert paths
        scored = [p for p in paths if p["attribution"] is not None]
        assert 0 < len({p["finding"] for p in scored}) <= OCCLUDED
        # the attribution is the model's own logit drop when that finding is left out, by hand
        top = paths[0]
        full = reasoner.scores("kgdx", patient)[disease]
        drop = full - reasoner.scores("kgdx", without(patient, index_of[top["finding"]]))[disease]
        assert top["attribution"] == pytest.approx(drop / reasoner.temperature, abs=1e-4)
        assert top["attribution"] >= max(p["attribution"] for p in scored) - 1e-4
        attributions = [p["attribution"] for p in scored]
        assert all(a >= b - 1e-4 for a, b in zip(attributions, attributions[1:], strict=False))
        # occluded paths come before the ones that were not occluded
        flags = [p["attribution"] is None for p in paths]
        assert flags == sorted(flags)


def test_paths_are_deterministic_and_say_what_counts_against(small_run, explained):
    reasoner, _, _ = small_run
    labels = _hpo_names(reasoner)
    patient, disease, paths = explained[0]
    again = disease_paths(reasoner, patient, disease, labels)
    # the same paths in the same order with the same text; attributions equal up to float32
    # rounding (the occlusion batch's matrix products may round differently from call to call)
    assert [{k: v for k, v in p.items() if k != "attribution"} for p in again] == [
        {k: v for k, v in p.items() if k != "attribution"} for p in paths
    ]
    for new, old in zip(again, paths, strict=True):
        assert (new["attribution"] is None) == (old["attribution"] is None)
        if old["attribution"] is not None:
            assert new["attribution"] == pytest.approx(old["attribution"], rel=1e-5, abs=1e-5)
    result = diagnose(reasoner, ["HP:0001191", "HP:0001631"], ["HP:0001199"], top=3)
    again = diagnose(reasoner, ["HP:0001191", "HP:0001631"], ["HP:0001199"], top=3)
    assert result == again
    for d in result["diagnoses"]:
        for p in d["paths"]:
            a = p["attribution"]
            if a is not None and a < -1e-4:
                assert "counts against" in p["text"]
            if a is not None and a > 1e-4:
                assert "supports" in p["text"]


def test_shown_paths_keep_room_for_what_counts_against(small_run, hpo_kg):
    """An excluded hallmark the model counts against Holt-Oram syndrome is shown among its
    paths even when the supporting paths rank above it (REST, the viewer and `kgdx explain`)."""
    from gnn.reasoning.diagnoses import PathLabels, ranked_paths, shown_paths

    reasoner, _, _ = small_run
    disease = hpo_kg.omim_index["OMIM:142900"]
    row = reasoner.sim.frequency.getrow(disease)
    order = np.argsort(-row.data, kind="stable")
    hallmark = int(row.indices[order[0]])
    observed = [int(t) for t in row.indices[order[1:5]]]
    patient = Patient("p", observed, [hallmark], -1)
    ranked = ranked_paths(reasoner, patient, [disease], PathLabels(reasoner))[disease]
    against = [p for p in ranked if p["attribution"] is not None and p["attribution"] < -1e-4]
    assert any(p["polarity"] == "absent" for p in against)
    assert ranked[0] not in against  # the supporting paths rank first
    replaced = 0
    for k in range(2, len(ranked) + 1):
        shown = shown_paths(ranked, k)
        if any(p in against for p in ranked[:k]):
            assert shown == ranked[:k]  # counter-evidence already shown: the plain top k
        else:
            assert shown[:-1] == ranked[: k - 1]
            assert shown[-1] == min(against, key=lambda p: p["attribution"])
            replaced += 1
    assert replaced  # the case this is for happened (k = 2 here)
    assert shown_paths(ranked, 1) == ranked[:1]  # one path: the best, whatever it says
    supporting = [p for p in ranked if p not in against]
    assert shown_paths(supporting, 2) == supporting[:2]  # nothing against: unchanged
