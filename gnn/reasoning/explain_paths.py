"""Ranked diagnoses of one patient with simple KG paths (first version, not attributions).

Each observed finding ``q`` gives the path
``patient -HAS_FINDING-> q -IS_A*-> a <-IS_A*- d <-HAS_PHENOTYPE- disease`` through its most
informative common ancestor ``a`` with the disease's best-matching annotation ``d``; its
contribution is ``IC(a) / |observed|``, its share of the Resnik best-match average. An excluded
finding ``e`` at or above an annotation of the disease gives a path against it, weighted by the
annotated frequency. Paths are ranked by absolute contribution. Attribution through the trained
model (fidelity+ / fidelity-) is still to come (docs/reasoning.md, "Gaps").
"""

from __future__ import annotations

import numpy as np

from gnn.reasoning.knowledge import require_terms
from gnn.reasoning.pipeline import Patient, Reasoner


def _hpo_names(reasoner: Reasoner) -> list[str]:
    kg = reasoner.kg
    labels = list(kg.term_ids)
    # a node's primary HP id: not an alt_id, then the smallest
    best: dict[int, tuple[bool, str]] = {}
    for code, index in kg.hpo_index.items():
        key = (code in kg.alt_ids, code)
        if index not in best or key < best[index]:
            best[index] = key
    for index, (_, code) in best.items():
        labels[index] = code
    return labels


def diagnose(
    reasoner: Reasoner, observed: list[str], excluded: list[str], *, top: int = 5, paths: int = 3
) -> dict:
    """``{"diagnoses": [{id, name, probability, paths}], "notes": [...]}`` for HPO ids.

    Raises:
        InputError: no finding is an HPO term of the KG.
    """
    kg = reasoner.kg
    obs, exc, unknown = require_terms(kg, observed, excluded)
    exc = [e for e in exc if e not in obs]
    notes = [f"unknown HPO id ignored: {u}" for u in unknown]
    patient = Patient("query", obs, exc, -1)
    probabilities = reasoner.probabilities(patient)
    order = np.argsort(-probabilities, kind="stable")[:top]
    labels = _hpo_names(reasoner)
    diagnoses = []
    for d in order.tolist():
        diagnoses.append(
            {
                "id": kg.disease_label(d),
                "kg_id": kg.disease_ids[d],
                "name": kg.disease_names[d],
                "probability": float(probabilities[d]),
                "paths": disease_paths(reasoner, patient, d, labels)[:paths],
            }
        )
    return {"diagnoses": diagnoses, "notes": notes}


def disease_paths(
    reasoner: Reasoner, patient: Patient, disease: int, labels: list[str]
) -> list[dict]:
    """Paths from the patient's findings to ``disease``, strongest first."""
    kg, sim = reasoner.kg, reasoner.sim
    row = sim.frequency.getrow(disease)
    annotations, frequency = row.indices, row.data
    name = lambda t: f"{labels[t]} {kg.term_names[t]}"  # noqa: E731
    target = f"{kg.disease_label(disease)} {kg.disease_names[disease]}"
    out = []
    n = max(len(patient.observed), 1)
    for q in patient.observed:
        anc_q = set(sim.ancestors_of(q).tolist())
        best = (0.0, -1, -1, 0.0)
        for d, f in zip(annotations.tolist(), frequency.tolist(), strict=True):
            common = [a for a in sim.ancestors_of(d).tolist() if a in anc_q]
            if common:
                a = max(common, key=lambda t: sim.ic[t])
                if (float(sim.ic[a]), f) > (best[0], best[3]):
                    best = (float(sim.ic[a]), a, d, f)
        ic, a, d, f = best
        if a < 0:
            continue
        steps = [f"patient -HAS_FINDING-> {name(q)}"]
        if a != q:
            steps.append(f"-IS_A*-> {name(a)}")
        if d != a:
            steps.append(f"<-IS_A*- {name(d)}")
        steps.append(f"<-HAS_PHENOTYPE (frequency {f:.2f})- {target}")
        out.append(
            {
                "finding": labels[q],
                "polarity": "present",
                "via": labels[a],
                "annotation": labels[d],
                "frequency": f,
                "contribution": ic / n,
                "text": " ".join(steps),
            }
        )
    below = sim.max_frequency_below
    for e in patient.excluded:
        f = float(below[disease, e])
        if f > 0:
            out.append(
                {
                    "finding": labels[e],
                    "polarity": "absent",
                    "via": labels[e],
                    "annotation": None,
                    "frequency": f,
                    "contribution": -f,
                    "text": f"patient -HAS_FINDING (absent)-> {name(e)} <-IS_A*- annotation "
                    f"of {target} (frequency {f:.2f}): counts against",
                }
            )
    return sorted(out, key=lambda p: -abs(p["contribution"]))
