"""Labels and splits over a :class:`graph.subgraph.PatientGraph` (patient node classification)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from graph.errors import InputError
from graph.records import Patient
from graph.subgraph import PatientGraph


@dataclass
class PatientLabels:
    """Multi-label targets: ``y[i, j] = 1`` when patient ``i`` carries candidate ``j``."""

    candidate_ids: list[str]
    y: torch.Tensor
    labelled: torch.Tensor  # bool per patient: has at least one candidate label


def candidate_diagnoses(patients: Sequence[Patient], graph: PatientGraph) -> list[str]:
    """Diseases that label at least one patient and are disease nodes of the graph, sorted."""
    diseases = set(graph.vocabulary.concept_ids.get("disease", []))
    found = sorted({label for p in patients for label in p.labels if label in diseases})
    if not found:
        raise InputError("no patient carries a label that is a disease node of the KG")
    return found


def patient_labels(
    patients: Sequence[Patient], graph: PatientGraph, candidate_ids: list[str]
) -> PatientLabels:
    """The label matrix of ``patients`` (in graph order) over ``candidate_ids``."""
    by_id = {p.id: p for p in patients}
    column = {cid: j for j, cid in enumerate(candidate_ids)}
    y = torch.zeros((len(graph.patient_ids), len(candidate_ids)))
    for i, pid in enumerate(graph.patient_ids):
        for label in by_id[pid].labels if pid in by_id else ():
            if label in column:
                y[i, column[label]] = 1.0
    return PatientLabels(candidate_ids=candidate_ids, y=y, labelled=y.sum(dim=1) > 0)


def stratified_split(
    labels: PatientLabels, *, fractions: tuple[float, float, float] = (0.7, 0.1, 0.2), seed: int = 0
) -> dict[str, torch.Tensor]:
    """Boolean train / val / test masks, stratified by each patient's first label.

    Raises:
        InputError: fractions that do not sum to 1.
    """
    if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
        raise InputError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    rng = random.Random(seed)
    groups: dict[int, list[int]] = {}
    for i in torch.nonzero(labels.labelled).flatten().tolist():
        groups.setdefault(int(labels.y[i].argmax()), []).append(i)
    n = labels.y.size(0)
    masks = {name: torch.zeros(n, dtype=torch.bool) for name in ("train", "val", "test")}
    for members in groups.values():
        rng.shuffle(members)
        n_val = round(len(members) * fractions[1])
        n_test = round(len(members) * fractions[2])
        n_train = len(members) - n_val - n_test
        masks["train"][members[:n_train]] = True
        masks["val"][members[n_train : n_train + n_val]] = True
        masks["test"][members[n_train + n_val :]] = True
    return masks
