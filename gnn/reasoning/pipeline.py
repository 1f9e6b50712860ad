"""One keyword-only ``train_reasoner(...)``: kgdx's model and every baseline on one split.

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
never the test part.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from gnn.models import PatientBatch, kg_graph, resolve_model
from gnn.reasoning.knowledge import PhenotypeKG
from gnn.reasoning.memory import CaseMemory
from gnn.reasoning.similarity import FEATURES, Similarity
from gnn.reasoning.simulate import SimulationConfig, simulate_patient
from gnn.tasks import Case, RankingEvaluator, ranks_of
from graph.errors import InputError

log = logging.getLogger("kgdx")
METHODS = ("kgdx", "phenomizer", "no_kg", "knn")
MEMORY_FEATURE = len(FEATURES)  # similarity to the disease's training cases
PRIOR_FEATURES = ("seen_prior_log_probability", "seen_in_training")
PRIOR_FEATURE = MEMORY_FEATURE + 1
NUM_FEATURES = len(FEATURES) + 1 + len(PRIOR_FEATURES)
PRIOR_FLOOR = -20.0  # log-probability given to a disease the prior never saw
EVIDENCE_BATCH = 128  # training instances per batched evidence computation
MEMORY_WEIGHT_GRID = (0.0, 0.5, 1.0, 2.0, 3.0, 4.0)  # x the validation temperature


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
        """Calibrated ``[C]`` probabilities (softmax with the validation temperature)."""
        logits = self.scores("kgdx", patient) / self.temperature
        logits = logits - logits.max()
        p = np.exp(logits)
        return p / p.sum()

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


def train_reasoner(
    *,
    kg: PhenotypeKG,
    train_cases: Sequence[Case],
    val_cases: Sequence[Case],
    config: TrainConfig | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> tuple[Reasoner, dict]:
    """Train kgdx's model and the baselines on ``train_cases``; select on ``val_cases``.

    Returns:
        ``(reasoner, report)``: the report holds timings, counts and validation metrics.

    Raises:
        InputError: no training case resolves to a candidate disease of the KG.
    """
    config = config or TrainConfig()
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(config.threads)
    try:
        return _train(kg, train_cases, val_cases, config, rng, progress or (lambda *_: None))
    finally:
        torch.set_num_threads(previous_threads)


def _train(kg, train_cases, val_cases, config, rng, progress):
    started = time.perf_counter()
    sim = Similarity(kg)
    train, train_report = resolve_cases(kg, train_cases)
    train = [p for p in train if p.disease >= 0 and p.observed]
    if not train:
        raise InputError(
            "no training case has an observed finding and a candidate disease of the KG"
        )
    val, _ = resolve_cases(kg, val_cases)
    val = [p for p in val if p.disease >= 0 and (p.observed or p.excluded)]
    memory = CaseMemory(sim, [p.observed for p in train], [p.disease for p in train])
    reasoner = Reasoner(kg, sim, memory, config)
    timings = {"similarity_s": time.perf_counter() - started}

    # the supervised no-KG models: baseline (b), the seen-disease prior and its fold models
    t0 = time.perf_counter()
    no_kg_epochs = _fit_free(reasoner.no_kg, train, val, config, rng, observed_only=False)
    folds, fold_priors, prior_epochs = _fit_prior(reasoner.prior, kg, train, val, config, rng)
    timings["no_kg_fit_s"] = time.perf_counter() - t0
    log.info("no-KG epochs kept: baseline %d, seen-disease prior %d", no_kg_epochs, prior_epochs)
    progress("no-KG models", 1, 1)

    # training instances: real cases (cross-fitted prior; memory left out for themselves, and
    # for their whole disease where the fold's prior never saw it) + simulated patients
    instances: list[tuple[Patient, int, int]] = []
    for i, p in enumerate(train):
        seen_k = fold_priors[folds[i]][1]
        instances.append((p, i, -1 if seen_k[p.disease] else p.disease))
    simulation = SimulationConfig()
    diseases = np.repeat(np.arange(kg.num_diseases), config.simulated_per_disease)
    if config.max_simulated is not None and len(diseases) > config.max_simulated:
        diseases = rng.choice(diseases, size=config.max_simulated, replace=False)
    for d in diseases:
        observed, excluded = simulate_patient(sim, int(d), rng, simulation)
        if observed:
            instances.append((Patient(f"sim-{d}", observed, excluded, int(d)), -1, -1))
    k = 1 + config.hard_negatives + config.random_negatives
    features = np.zeros((len(instances), k, NUM_FEATURES), np.float32)
    candidates = np.zeros((len(instances), k), np.int64)
    t0 = time.perf_counter()
    for start in range(0, len(instances), EVIDENCE_BATCH):
        chunk = instances[start : start + EVIDENCE_BATCH]
        evidence = reasoner.evidence_batch(
            [p for p, _, _ in chunk],
            drop_case=[case for _, case, _ in chunk],
            drop_disease=[drop for _, _, drop in chunk],
            priors=[fold_priors[folds[case]] if case >= 0 else None for _, case, _ in chunk],
        )
        for j, (p, _, _) in enumerate(chunk):
            candidates[start + j] = _candidates(evidence[j], p.disease, config, rng)
            features[start + j] = evidence[j][candidates[start + j]]
        progress("evidence", start + len(chunk), len(instances))
    timings["evidence_s"] = time.perf_counter() - t0
    progress("evidence", len(instances), len(instances))
    flat = features.reshape(-1, NUM_FEATURES)
    reasoner.model.feature_mean.copy_(torch.as_tensor(flat.mean(axis=0)))
    reasoner.model.feature_std.copy_(torch.as_tensor(flat.std(axis=0) + 1e-6))

    val_evidence = [
        e
        for start in range(0, len(val), EVIDENCE_BATCH)
        for e in reasoner.evidence_batch(val[start : start + EVIDENCE_BATCH])
    ]
    t0 = time.perf_counter()
    history = _fit_kgdx(
        reasoner, instances, features, candidates, val, val_evidence, config, rng, progress
    )
    timings["kgdx_fit_s"] = time.perf_counter() - t0
    memory_weight = fit_memory_weight(reasoner, val, val_evidence, config.memory_weight)
    log.info("case-memory weight %.3f", memory_weight)
    reasoner.temperature = _fit_temperature(reasoner, val, val_evidence)
    timings["total_s"] = time.perf_counter() - started
    report = {
        "config": asdict(config),
        "timings": timings,
        "counts": {
            "train_cases": len(train),
            "val_cases": len(val),
            "simulated": len(instances) - len(train),
            "candidates": kg.num_diseases,
        },
        "resolution": train_report,
        "history": history,
        "no_kg_epochs": {"baseline": no_kg_epochs, "prior": prior_epochs},
        "memory_weight": memory_weight,
    }
    return reasoner, report


def _candidates(evidence: np.ndarray, disease: int, config: TrainConfig, rng) -> np.ndarray:
    """The right disease first, then the hardest by Phenomizer + memory, then random ones."""
    hardness = evidence[:, 0] + evidence[:, MEMORY_FEATURE] * 3.0 + evidence[:, 1]
    if config.prior_hardness:  # the diseases the seen-disease prior favours
        hardness = hardness + (evidence[:, PRIOR_FEATURE] - PRIOR_FLOOR) * config.prior_hardness
    hardness[disease] = -np.inf
    hard = np.argpartition(-hardness, config.hard_negatives)[: config.hard_negatives]
    pool = np.setdiff1d(np.arange(len(evidence)), np.append(hard, disease))
    random = rng.choice(pool, size=config.random_negatives, replace=False)
    return np.concatenate([[disease], hard, random])


def _fit_kgdx(reasoner, instances, features, candidates, val, val_evidence, config, rng, progress):
    """Stage 1: the evidence scorer alone (cheap steps, embedding term held at zero);
    stage 2: jointly with the GNN encoder in large batches (one full-graph pass per step).
    The epoch kept is the one with the best validation MRR."""
    model = reasoner.model
    patients = [p for p, _, _ in instances]
    feats, cands = torch.as_tensor(features), torch.as_tensor(candidates)
    zero = {
        "term": torch.zeros(reasoner.kg.num_terms, config.hidden),
        "disease": torch.zeros(reasoner.kg.num_diseases, config.hidden),
    }
    scorer = [
        p
        for n, p in model.named_parameters()
        if not n.startswith(("encoder", "observed_map", "excluded_map"))
    ]
    history: list[dict] = []
    best = {"mrr": -1.0, "state": None}

    def keep_best(stage: str, epoch: int, loss: float) -> None:
        reasoner._embeddings = None
        mrr = _val_mrr(reasoner, val, val_evidence)
        history.append({"stage": stage, "epoch": epoch, "train_loss": loss, "val_mrr": mrr})
        log.info("kgdx %s epoch %d: loss %.4f, validation MRR %.4f", stage, epoch, loss, mrr)
        if mrr > best["mrr"]:
            best.update(
                mrr=mrr, state={k: v.detach().clone() for k, v in model.state_dict().items()}
            )

    def run_epoch(optimiser, batch_size: int, logits_of) -> float:
        """One pass over the instances in a seeded order; the mean training loss."""
        model.train()
        order, total = rng.permutation(len(instances)), 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            batch = _batch([patients[i] for i in idx], feats[idx])
            loss = torch.nn.functional.cross_entropy(
                logits_of(batch, cands[idx]), torch.zeros(len(idx), dtype=torch.long)
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(idx)
        return total / len(order)

    # stage 1: the evidence scorer alone (no GNN: zero embeddings); stage 2: scorer + encoder
    optimiser = torch.optim.AdamW(scorer, lr=config.lr, weight_decay=config.weight_decay)
    for epoch in range(config.epochs):
        loss = run_epoch(optimiser, config.batch_size, lambda b, c: model.score(zero, b, c))
        progress("scorer epoch", epoch + 1, config.epochs)
        keep_best("scorer", epoch, loss)
    optimiser = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    for epoch in range(config.joint_epochs):
        loss = run_epoch(
            optimiser, config.joint_batch_size, lambda b, c: model(reasoner.graph, b, c)
        )
        progress("joint epoch", epoch + 1, config.joint_epochs)
        keep_best("joint", epoch, loss)
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    reasoner._embeddings = None
    return history


def _val_mrr(reasoner: Reasoner, val, val_evidence) -> float:
    if not val:
        return 0.0
    ranks = [
        ranks_of(np.array([p.disease]), reasoner.scores("kgdx", p, e)[None, :])[0]
        for p, e in zip(val, val_evidence, strict=True)
    ]
    return float(np.mean(1.0 / np.asarray(ranks, dtype=float)))


def _val_logits(reasoner: Reasoner, val, val_evidence) -> np.ndarray:
    return np.stack([reasoner.scores("kgdx", p, e) for p, e in zip(val, val_evidence, strict=True)])


def fit_memory_weight(reasoner: Reasoner, val, val_evidence, fixed: float | None = None) -> float:
    """Set and return kgdx's case-memory weight (``KGDiagnosisModel.memory_weight``).

    kgdx's scorer trains on patients simulated from every disease's annotations besides the real
    cases, so it learns a lower base rate of diseases with training cases than real patients
    have: on the patient split it trailed the no-KG model on seen diseases. Adding
    ``w * memory(p, D)`` (the best cosine to D's training cases, 0 for a disease without cases)
    restores it, at a cost for patients whose disease has no training case: seen diseases that
    resemble them rise. ``w`` is chosen from :data:`MEMORY_WEIGHT_GRID` (in units of the
    validation temperature) to maximise the mean of two validation MRRs, each counting equally:
    the cases of seen diseases, and *unseen* ones, the validation cases of unseen diseases plus
    every seen-disease case again with its disease hidden (:func:`_as_unseen`: its memory and
    prior columns as if no training case had it), so the cost is measured on hundreds of cases,
    not on the few unseen ones a patient split has. The smallest weight on ties. ``fixed``: use
    that weight instead (0 turns the term off). 0 without validation cases.
    """
    model = reasoner.model
    if getattr(model, "memory_column", -1) < 0:
        return 0.0
    if fixed is not None or not val:
        weight = float(fixed or 0.0)
        model.memory_weight.fill_(weight)
        return weight
    model.memory_weight.zero_()
    seen_mask = reasoner.memory.seen
    y_true = np.array([p.disease for p in val], dtype=np.int64)
    seen = seen_mask[y_true]
    unseen = [(p, e) for p, e, s in zip(val, val_evidence, seen, strict=True) if not s]
    unseen += [
        (p, _as_unseen(e, p.disease, seen_mask))
        for p, e, s in zip(val, val_evidence, seen, strict=True)
        if s
    ]
    parts = []
    for members in ([(p, e) for p, e, s in zip(val, val_evidence, seen, strict=True) if s], unseen):
        if members:
            patients, evidence = zip(*members, strict=True)
            logits = _val_logits(reasoner, patients, evidence)
            memory = np.stack([e[:, model.memory_column] for e in evidence])
            parts.append((logits, memory, np.array([p.disease for p in patients])))
    scale = _temperature_of(
        np.concatenate([part[0] for part in parts]), np.concatenate([part[2] for part in parts])
    )
    best = (-1.0, 0.0)
    for g in MEMORY_WEIGHT_GRID:
        balanced = float(
            np.mean([np.mean(1.0 / ranks_of(y, z + g * scale * m)) for z, m, y in parts])
        )
        if balanced > best[0] + 1e-9:
            best = (balanced, g * scale)
    model.memory_weight.fill_(best[1])
    return float(best[1])


def _as_unseen(evidence: np.ndarray, disease: int, seen: np.ndarray) -> np.ndarray:
    """A seen-disease case's evidence as if no training case had its disease: the case-memory
    similarity to it 0 (all its cases dropped), the seen flag 0, and the seen-disease prior a
    softmax over the other seen diseases (the disease at :data:`PRIOR_FLOOR`, the others'
    log-probabilities renormalised without it)."""
    out = evidence.copy()
    out[disease, MEMORY_FEATURE] = 0.0
    prior = out[:, PRIOR_FEATURE]
    dropped = float(np.exp(prior[disease]))
    others = seen.copy()
    others[disease] = False
    if dropped < 1.0:
        prior[others] = np.maximum(prior[others] - np.log1p(-dropped), PRIOR_FLOOR)
    prior[disease] = PRIOR_FLOOR
    out[disease, PRIOR_FEATURE + 1] = 0.0
    return out


def _fit_temperature(reasoner: Reasoner, val, val_evidence) -> float:
    """The softmax temperature that minimises the validation NLL (Guo et al., ICML 2017)."""
    if not val:
        return 1.0
    return _temperature_of(
        _val_logits(reasoner, val, val_evidence),
        np.array([p.disease for p in val], dtype=np.int64),
    )


def _temperature_of(logits: np.ndarray, y_true: np.ndarray) -> float:
    right = logits[np.arange(len(y_true)), y_true]
    best_t, best_nll = 1.0, np.inf
    for t in np.exp(np.linspace(np.log(0.1), np.log(10.0), 61)):
        z = logits / t
        m = z.max(axis=1)
        nll = float(np.mean(m + np.log(np.exp(z - m[:, None]).sum(axis=1)) - right / t))
        if nll < best_nll:
            best_t, best_nll = float(t), nll
    return best_t


def _fit_free(
    model,
    train: list[Patient],
    val: list[Patient],
    config: TrainConfig,
    rng,
    *,
    observed_only: bool,
    epochs: int | None = None,
) -> int:
    """Softmax over the diseases of ``train`` (the others never get a gradient and keep their
    random embeddings: a free-embedding model has no other way to know them).

    With validation cases of those diseases, training stops after ``no_kg_patience`` epochs
    without a better validation loss and the best epoch is kept; otherwise (or with ``epochs``)
    it runs a fixed number of epochs. ``observed_only``: excluded findings are left out (the
    seen-disease prior). Returns the epochs kept."""
    seen = sorted({p.disease for p in train})
    column = {d: j for j, d in enumerate(seen)}
    diseases = torch.as_tensor(seen)

    def batch_of(patients):
        if observed_only:
            patients = [Patient(p.id, p.observed, [], p.disease) for p in patients]
        return _batch(patients, None), torch.as_tensor([column[p.disease] for p in patients])

    val = [p for p in val if p.disease in column and p.observed]
    val_batch = batch_of(val) if val and epochs is None else None
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=config.weight_decay)
    best = (np.inf, 0, None)
    for epoch in range(epochs or config.no_kg_epochs):
        model.train()
        order = rng.permutation(len(train))
        for start in range(0, len(order), config.no_kg_batch_size):
            batch, target = batch_of(
                [train[i] for i in order[start : start + config.no_kg_batch_size]]
            )
            loss = torch.nn.functional.cross_entropy(
                model.score_all(model.encode(), batch, diseases), target
            )
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if val_batch is None:
            continue
        model.eval()
        with torch.no_grad():
            logits = model.score_all(model.encode(), val_batch[0], diseases)
            val_loss = float(torch.nn.functional.cross_entropy(logits, val_batch[1]))
        if val_loss < best[0]:
            best = (val_loss, epoch + 1, {k: v.clone() for k, v in model.state_dict().items()})
        elif epoch + 1 - best[1] >= config.no_kg_patience:
            break
    if best[2] is None:
        return epochs or config.no_kg_epochs
    model.load_state_dict(best[2])
    return best[1]


def _fit_prior(prior, kg: PhenotypeKG, train: list[Patient], val, config: TrainConfig, rng):
    """The seen-disease prior (all training cases) and its cross-fitting fold models.

    Fold assignment: a disease with one case, and ``unseen_rate`` of the others, put all their
    cases in one fold (that fold's model never sees the disease); the other diseases spread their
    cases over the folds. Returns each case's fold, ``(model, seen)`` per fold and the epochs."""
    epochs = _fit_free(prior, train, val, config, rng, observed_only=True)
    k = max(config.prior_folds, 2)
    by_disease: dict[int, list[int]] = {}
    for i, p in enumerate(train):
        by_disease.setdefault(p.disease, []).append(i)
    folds = np.zeros(len(train), np.int64)
    for d in sorted(by_disease):
        members = by_disease[d]
        if len(members) == 1 or rng.random() < config.unseen_rate:
            folds[members] = rng.integers(k)
        else:
            folds[members] = rng.permutation(np.arange(len(members)) % k)
    fold_priors = []
    num = kg.num_diseases
    for fold in range(k):
        rest = [p for p, f in zip(train, folds, strict=True) if f != fold]
        model = resolve_model(
            "free", hidden=config.hidden, num_terms=kg.num_terms, num_diseases=num
        )
        seen = np.zeros(num, bool)
        if rest:
            _fit_free(model, rest, [], config, rng, observed_only=True, epochs=epochs)
            seen[[p.disease for p in rest]] = True
        fold_priors.append((model, seen))
    return folds, fold_priors, epochs


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
