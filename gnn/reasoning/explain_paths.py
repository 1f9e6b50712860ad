"""Ranked diagnoses of one patient with KG paths ranked by the trained model (occlusion).

Each observed finding ``q`` gives the path
``patient -HAS_FINDING-> q -IS_A*-> a <-IS_A*- d <-HAS_PHENOTYPE- disease`` through its most
informative common ancestor ``a`` with the disease's best-matching annotation ``d``; its
``contribution`` is ``IC(a) / |observed|``, its share of the Resnik best-match average. An
excluded finding ``e`` at or above an annotation of the disease gives a path against it, weighted
by the annotated frequency.

Paths are ranked by the finding's **occlusion attribution** on kgdx's trained model: the
disease's (temperature-scaled) logit with all findings minus its logit with that one finding left
out (:func:`occlusion`); the Resnik share breaks ties and stays as shown evidence. A finding
with a negative attribution lowers the model's score of the disease: the path says it counts
against. Only the findings on candidate paths are occluded and only the explained diseases'
logits are scored (the evidence rows of the explained diseases only, once per left-out finding,
shared by all explained diseases); on a small candidate set (the chest KG) every finding's
variant is scored with the patient's probabilities, in one batch (:mod:`gnn.reasoning.logits`).
See docs/reasoning.md, "Explanation fidelity".
"""

from __future__ import annotations

import weakref

import numpy as np

from gnn.reasoning.knowledge import require_terms
from gnn.reasoning.logits import PatientLogits, occlusion, patient_logits
from gnn.reasoning.pipeline import Patient, Reasoner

# at most this many findings are occluded per call (one evidence computation of the explained
# diseases' rows each, ~1.6 ms): those with the largest Resnik share on the explained diseases'
# paths; the others keep their Resnik order after them (keeps `kgdx diagnose` near 50 ms)
OCCLUDED = 6


def _hpo_names(reasoner: Reasoner) -> list[str]:
    """Each term's primary HP id (not an alt_id, then the smallest), indexed by term; built
    once per KG (~25 ms for the default KG: it was half of ``kgdx diagnose``'s time)."""
    kg = reasoner.kg
    cached = _LABELS.get(id(kg))
    if cached is not None and cached[0]() is kg:
        return list(cached[1])
    labels = list(kg.term_ids)
    best: dict[int, tuple[bool, str]] = {}
    for code, index in kg.hpo_index.items():
        key = (code in kg.alt_ids, code)
        if index not in best or key < best[index]:
            best[index] = key
    for index, (_, code) in best.items():
        labels[index] = code
    _LABELS[id(kg)] = (weakref.ref(kg), labels)
    return list(labels)


_LABELS: dict[int, tuple[weakref.ref, list[str]]] = {}  # id(kg) -> (the kg, its labels)


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
    logits = patient_logits(reasoner, patient)
    probabilities = logits.probabilities()
    order = np.argsort(-probabilities, kind="stable")[:top].tolist()
    labels = _hpo_names(reasoner)
    candidates = [_candidate_paths(reasoner, patient, d, labels) for d in order]
    terms = _occluded(candidates)
    attribution = occlusion(reasoner, patient, order, terms, logits)
    diagnoses = []
    for j, (d, found) in enumerate(zip(order, candidates, strict=True)):
        scores = {t: float(attribution[i, j]) for i, t in enumerate(terms)}
        diagnoses.append(
            {
                "id": kg.disease_label(d),
                "kg_id": kg.disease_ids[d],
                "name": kg.disease_names[d],
                "probability": float(probabilities[d]),
                "paths": _ranked(found, scores)[:paths],
            }
        )
    return {"diagnoses": diagnoses, "notes": notes}


def disease_paths(
    reasoner: Reasoner,
    patient: Patient,
    disease: int,
    labels: list[str],
    logits: PatientLogits | None = None,
) -> list[dict]:
    """Paths from the patient's findings to ``disease``, ranked by occlusion attribution
    (``logits``: the patient's :func:`~gnn.reasoning.logits.patient_logits`, when its
    probabilities were computed from them)."""
    found = _candidate_paths(reasoner, patient, disease, labels)
    terms = _occluded([found])
    attribution = occlusion(reasoner, patient, [disease], terms, logits)[:, 0]
    return _ranked(found, {t: float(a) for t, a in zip(terms, attribution, strict=True)})


def _occluded(candidates: list[list[dict]], limit: int = OCCLUDED) -> list[int]:
    """The findings to occlude: on some candidate path, largest Resnik share (absolute) on any
    explained disease first, at most ``limit`` (ties by term index: deterministic)."""
    share: dict[int, float] = {}
    for found in candidates:
        for p in found:
            share[p["term"]] = max(share.get(p["term"], 0.0), abs(p["contribution"]))
    return sorted(share, key=lambda t: (-share[t], t))[:limit]


def model_role(attribution: float | None) -> str | None:
    """What an occlusion attribution says of a path's finding: ``supports``, ``counts
    against`` or ``no effect on`` the diagnosis (rounded to 4 places, so float32 noise reads as
    no effect); ``None`` when the finding was not occluded."""
    if attribution is None:
        return None
    rounded = round(attribution, 4)
    return "supports" if rounded > 0 else "counts against" if rounded < 0 else "no effect on"


def _ranked(found: list[dict], attribution: dict[int, float]) -> list[dict]:
    """Paths with their finding's attribution (``None`` when not occluded), highest first."""
    out = []
    for path in found:
        path = dict(path)
        a = attribution.get(path.pop("term"))
        path["attribution"] = a
        role = model_role(a)
        if role is not None:
            text = path["text"]
            if path["polarity"] == "absent":
                text = text.removesuffix(": counts against")
            path["text"] = f"{text} [model: {role} the diagnosis, occlusion {a:+.2f}]"
        out.append(path)

    # occluded findings first, by attribution (rounded: float32 noise does not reorder ties),
    # then the others; the Resnik share, then the label, break ties
    def key(p: dict) -> tuple:
        a = p["attribution"]
        return (a is None, -round(a or 0.0, 4), -abs(p["contribution"]), p["finding"])

    return sorted(out, key=key)


def _candidate_paths(
    reasoner: Reasoner, patient: Patient, disease: int, labels: list[str]
) -> list[dict]:
    """The Resnik path of each finding to ``disease`` (unranked; ``term`` = finding index)."""
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
                "term": q,
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
                    "term": e,
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
    return out
