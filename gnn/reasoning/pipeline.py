"""kgdx's model and every baseline behind one :class:`Reasoner`, its data types
(:class:`TrainConfig`, :class:`Patient`) and :func:`evaluate_methods`; training them on one split
is :func:`gnn.reasoning.training.train_reasoner` (keyword-only).

Methods (all rank every candidate disease of the KG, same cases, same evaluator):

- ``kgdx``: :class:`~gnn.models.kgdx.KGDiagnosisModel` (GNN encoder by name) trained with a
  listwise softmax loss over hard + random candidates, on the training cases plus patients
  simulated from every candidate's annotations (:mod:`gnn.reasoning.simulate`). Its evidence
  includes a *seen-disease prior*: the log-probability of a supervised no-KG model (free
  embeddings, observed findings only) over the diseases with training cases, plus a seen flag.
  For the training cases that prior is cross-fitted (each case scored by a fold model that never
  saw it; for about ``unseen_rate`` of the diseases with several cases and every disease with
  one, the fold model never saw the disease at all, and the case-memory feature drops it too), so
  the scorer learns how far to trust the prior on seen diseases without learning to ignore
  unseen ones;
- ``phenomizer``: one-way Resnik best-match average (our implementation,
  :meth:`~gnn.reasoning.similarity.Similarity.resnik`), baseline (a);
- ``no_kg``: :class:`~gnn.models.free.FreeEmbeddingModel`, training cases only, baseline (b);
- ``knn``: best cosine to a disease's training cases (:class:`~gnn.reasoning.memory.CaseMemory`),
  baseline (c).

Model selection (epoch) and the softmax temperature use a validation part carved from training,
never the test part (:mod:`gnn.reasoning.training`, :mod:`gnn.reasoning.calibration`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from gnn.models import PatientBatch, kg_graph, resolve_model
from gnn.reasoning.knowledge import PhenotypeKG
from gnn.reasoning.memory import CaseMemory
from gnn.reasoning.similarity import FEATURES, Similarity
from gnn.tasks import Case, RankingEvaluator
from graph.errors import InputError

METHODS = ("kgdx", "phenomizer", "no_kg", "knn")
MEMORY_FEATURE = len(FEATURES)  # similarity to the disease's training cases
PRIOR_FEATURES = ("seen_prior_log_probability", "seen_in_training")
PRIOR_FEATURE = MEMORY_FEATURE + 1
NUM_FEATURES = len(FEATURES) + 1 + len(PRIOR_FEATURES)
PRIOR_FLOOR = -20.0  # log-probability given to a disease the prior never saw


@dataclass
class TrainConfig:
    """Settings of :func:`train_reasoner` (saved in the model card)."""

    model: str = "sage"
    hidden: int = 32
    num_layers: int = 2
    dropout: float = 0.1
    heads: int = 2
    epochs: int = 12  # stage 1: evidence scorer alone (the best validation epoch is kept)
    batch_size: int = 128
    joint_epochs: int = 2  # stage 2: scorer + GNN encoder
    joint_batch_size: int = 1024
    lr: float = 5e-3
    weight_decay: float = 1e-4
    seed: int = 0
    simulated_per_disease: int = 1
    hard_negatives: int = 48
    random_negatives: int = 32
    # a disease with several training cases is held out whole from one fold of the seen-disease
    # prior (and its memory dropped) this often: its cases then train the scorer as unseen
    unseen_rate: float = 0.5
    max_simulated: int | None = None  # quick mode: fewer simulated patients
    no_kg_epochs: int = 30  # most epochs of the no-KG models (early stop on validation)
    no_kg_batch_size: int = 256
    no_kg_patience: int = 3
    prior_folds: int = 3  # cross-fitting folds of the seen-disease prior
    seen_prior: bool = True  # False: the prior columns stay constant (ablation)
    prior_hardness: float = 0.0  # weight of the prior in picking hard negatives
    threads: int = 2
    # weight of the case-memory term of kgdx's logits (KGDiagnosisModel.memory_weight): None
    # fits it on the validation cases (fit_memory_weight); a number fixes it (0: off)
    memory_weight: float | None = None

    @classmethod
    def quick(cls, **overrides) -> TrainConfig:
        """Settings for a quick run on a slice (tests, benches, ``--quick``): one epoch per
        stage, few simulated patients and negatives, one thread."""
        settings = dict(
            epochs=1,
            joint_epochs=1,
            joint_batch_size=512,
            max_simulated=300,
            hard_negatives=16,
            random_negatives=16,
            no_kg_epochs=3,
            threads=1,
        )
        return cls(**{**settings, **overrides})


@dataclass
class Patient:
    """A case resolved to term and candidate indices."""

    id: str
    observed: list[int]
    excluded: list[int]
    disease: int  # -1: unknown to the KG


def resolve_cases(kg: PhenotypeKG, cases: Sequence[Case]) -> tuple[list[Patient], dict[str, int]]:
    """Cases as term / candidate indices, with counts of what did not resolve."""
    patients, report = [], {"unknown_terms": 0, "replaced_terms": 0, "unknown_diseases": 0}
    unknown: set[str] = set()
    for case in cases:
        observed, u1, r1 = kg.resolve_terms(list(case.observed))
        excluded, u2, r2 = kg.resolve_terms(list(case.excluded))
        excluded = [t for t in excluded if t not in observed]
        unknown.update(u1 + u2)
        report["unknown_terms"] += len(u1) + len(u2)
        report["replaced_terms"] += len(r1) + len(r2)
        disease = next((kg.omim_index[d] for d in case.diseases if d in kg.omim_index), -1)
        report["unknown_diseases"] += disease < 0
        patients.append(Patient(case.id, observed, excluded, disease))
    report["distinct_unknown_terms"] = len(unknown)
    return patients, report


class Reasoner:
    """Everything needed to score a new patient: KG similarity, case memory, trained models.

    Scores of one patient depend on that patient and the trained state only (inductive).
    """

    def __init__(self, kg: PhenotypeKG, sim: Similarity, memory: CaseMemory, config: TrainConfig):
        self.kg, self.sim, self.memory, self.config = kg, sim, memory, config
        self.graph = kg_graph(kg)
        common = {"num_terms": kg.num_terms, "num_diseases": kg.num_diseases}
        self.model = resolve_model(
            config.model,
            num_features=NUM_FEATURES,
            hidden=config.hidden,
            num_layers=config.num_layers,
            dropout=config.dropout,
            heads=config.heads,
            memory_column=MEMORY_FEATURE,
            **common,
        )
        self.no_kg = resolve_model("free", hidden=config.hidden, **common)
        self.prior = resolve_model("free", hidden=config.hidden, **common)
        self.temperature = 1.0
        self._embeddings: dict[str, torch.Tensor] | None = None

    def evidence(
        self,
        patient: Patient,
        *,
        drop_case: int = -1,
        drop_disease: int = -1,
        prior: tuple[torch.nn.Module, np.ndarray] | None = None,
        rows: Sequence[int] | None = None,
    ) -> np.ndarray:
        """``[C, NUM_FEATURES]`` KG + memory + seen-prior evidence of one patient.

        ``prior``: ``(model, seen)`` instead of the trained prior and the memory's seen
        diseases (the cross-fitted fold models while training). ``rows``: the evidence of those
        candidates only (``[len(rows), NUM_FEATURES]``, cheaper for a few: the occlusion of
        ``kgdx diagnose``). :meth:`evidence_batch` gives the same for many patients at once."""
        features = self.sim.features(patient.observed, patient.excluded, rows=rows)
        memory = self.memory.similarity(
            patient.observed, drop_case=drop_case, drop_disease=drop_disease, rows=rows
        )
        prior_model, seen = prior or (self.prior, self.memory.seen)
        prior_features = self.prior_features(patient, prior_model, seen)
        if rows is not None:
            prior_features = prior_features[np.asarray(rows, dtype=np.int64)]
        return np.concatenate([features, memory[:, None], prior_features], axis=1)

    def evidence_batch(
        self,
        patients: Sequence[Patient],
        *,
        drop_case: Sequence[int] | None = None,
        drop_disease: Sequence[int] | None = None,
        priors: Sequence[tuple[torch.nn.Module, np.ndarray] | None] | None = None,
    ) -> np.ndarray:
        """``[B, C, NUM_FEATURES]``: :meth:`evidence` of each patient (the same values, tested),
        computed together (:mod:`gnn.reasoning.batch`). ``drop_case[b]`` / ``drop_disease[b]``
        / ``priors[b]``: patient ``b``'s ``drop_case`` / ``drop_disease`` / ``prior``."""
        observed = [p.observed for p in patients]
        features = self.sim.features_batch(observed, [p.excluded for p in patients])
        memory = self.memory.similarity_batch(
            observed, drop_case=drop_case, drop_disease=drop_disease
        )
        prior_features = np.zeros((len(patients), self.kg.num_diseases, 2), np.float32)
        groups: dict[int, tuple[tuple | None, list[int]]] = {}
        for b, prior in enumerate(priors if priors is not None else [None] * len(patients)):
            groups.setdefault(id(prior[0]) if prior else 0, (prior, []))[1].append(b)
        for prior, members in groups.values():
            model, seen = prior or (self.prior, self.memory.seen)
            prior_features[members] = self.prior_features_batch(
                [patients[b] for b in members], model, seen
            )
        return np.concatenate([features, memory[..., None], prior_features], axis=2)

    @torch.no_grad()
    def prior_features(
        self, patient: Patient, model: torch.nn.Module | None = None, seen: np.ndarray | None = None
    ) -> np.ndarray:
        """``[C, 2]``: the seen-disease prior's log-probability (softmax over the ``seen``
        diseases, from the observed findings only, so an excluded finding can never raise a
        disease through it; :data:`PRIOR_FLOOR` for the others) and the seen flag."""
        model = self.prior if model is None else model
        seen = self.memory.seen if seen is None else seen
        out = np.zeros((self.kg.num_diseases, 2), np.float32)
        out[:, 0] = PRIOR_FLOOR
        if not self.config.seen_prior or not seen.any():
            return out
        out[:, 1] = seen
        if not patient.observed:
            return out
        diseases = torch.as_tensor(np.flatnonzero(seen))
        inference_mode(model)
        batch = PatientBatch(
            observed=torch.as_tensor([patient.observed]),
            excluded=torch.full((1, 1), -1, dtype=torch.long),
            features=torch.zeros(0),
        )
        logp = torch.log_softmax(model.score_all(model.encode(), batch, diseases)[0], dim=0)
        out[diseases.numpy(), 0] = logp.clamp(min=PRIOR_FLOOR).numpy()
        return out

    @torch.no_grad()
    def prior_features_batch(
        self, patients: Sequence[Patient], model: torch.nn.Module, seen: np.ndarray
    ) -> np.ndarray:
        """``[B, C, 2]``: :meth:`prior_features` of each patient, one model call."""
        out = np.zeros((len(patients), self.kg.num_diseases, 2), np.float32)
        out[..., 0] = PRIOR_FLOOR
        if not self.config.seen_prior or not seen.any():
            return out
        out[..., 1] = seen
        some = [b for b, p in enumerate(patients) if p.observed]
        if not some:
            return out
        diseases = torch.as_tensor(np.flatnonzero(seen))
        inference_mode(model)
        batch = PatientBatch(
            observed=_pad([patients[b].observed for b in some]),
            excluded=torch.full((len(some), 1), -1, dtype=torch.long),
            features=torch.zeros(0),
        )
        logp = torch.log_softmax(model.score_all(model.encode(), batch, diseases), dim=1)
        out[np.asarray(some)[:, None], diseases.numpy()[None, :], 0] = logp.clamp(
            min=PRIOR_FLOOR
        ).numpy()
        return out

    def embeddings(self) -> dict[str, torch.Tensor]:
        if self._embeddings is None:
            inference_mode(self.model)
            with torch.no_grad():
                self._embeddings = self.model.encode(self.graph)
        return self._embeddings

    @torch.no_grad()
    def scores(
        self, method: str, patient: Patient, evidence: np.ndarray | None = None
    ) -> np.ndarray:
        """``[C]`` scores of ``method`` for one patient (higher = more likely)."""
        if method == "phenomizer":
            return self.sim.resnik(patient.observed)
        if method == "knn":
            return self.memory.similarity(patient.observed)
        batch = _batch([patient], None)
        candidates = torch.arange(self.kg.num_diseases).unsqueeze(0)
        if method == "no_kg":
            inference_mode(self.no_kg)
            return self.no_kg.score_all(self.no_kg.encode(), batch, candidates[0])[0].numpy()
        if method != "kgdx":
            raise InputError(f"unknown method {method!r}; expected one of {METHODS}")
        evidence = self.evidence(patient) if evidence is None else evidence
        batch.features = torch.as_tensor(evidence).unsqueeze(0)
        inference_mode(self.model)
        return self.model.score(self.embeddings(), batch, candidates)[0].numpy()

    def probabilities(self, patient: Patient) -> np.ndarray:
        """Calibrated ``[C]`` probabilities (softmax with the validation temperature; on a
        small KG computed with the patient's leave-one-out variants:
        :func:`gnn.reasoning.logits.patient_logits`)."""
        from gnn.reasoning.logits import patient_logits

        return patient_logits(self, patient).probabilities()

    def rank_all(
        self,
        patients: Sequence[Patient],
        methods: Sequence[str] = METHODS,
        progress: Callable[[int], None] | None = None,
    ) -> dict[str, np.ndarray]:
        """Pessimistic rank of each patient's disease under each method (batched:
        :func:`gnn.reasoning.batch.rank_batch`, the same ranks as :meth:`scores` one by one)."""
        from gnn.reasoning.batch import rank_batch

        return rank_batch(self, patients, methods, progress=progress)


def inference_mode(model: torch.nn.Module) -> None:
    """Put ``model`` in eval mode unless it is there: ``eval()`` walks every submodule (0.2 ms a
    call on the chest model, three calls a diagnosis)."""
    if model.training:
        model.eval()


def _pad(rows: Sequence[Sequence[int]]) -> torch.Tensor:
    width = max([len(r) for r in rows] + [1])
    out = torch.full((len(rows), width), -1, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.as_tensor(list(r), dtype=torch.long)
    return out


def _batch(patients: Sequence[Patient], features: torch.Tensor | None) -> PatientBatch:
    return PatientBatch(
        observed=_pad([p.observed for p in patients]),
        excluded=_pad([p.excluded for p in patients]),
        features=features if features is not None else torch.zeros(0),
    )


def evaluate_methods(
    reasoner: Reasoner,
    patients: Sequence[Patient],
    *,
    seen: np.ndarray,
    methods: Sequence[str] = METHODS,
    progress=None,
) -> dict[str, dict]:
    """Metrics of every method (overall / seen / unseen) through :class:`RankingEvaluator`."""
    evaluator = RankingEvaluator(reasoner.kg.num_diseases)
    ranks = reasoner.rank_all(patients, methods, progress)
    y_true = np.array([p.disease for p in patients], dtype=np.int64)
    return {m: evaluator.eval({"y_true": y_true, "rank": ranks[m], "seen": seen}) for m in methods}
