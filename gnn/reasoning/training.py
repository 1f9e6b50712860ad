"""Training kgdx's model and the baselines on one split: :func:`train_reasoner`.

The evidence of every training instance (real cases, cross-fitted; patients simulated from every
candidate disease's annotations), then the scorer alone and jointly with the GNN encoder, the epoch
kept by validation MRR; the no-KG models and the seen-disease prior come from
:mod:`gnn.reasoning.free_fit`, the case-memory weight and the temperature from
:mod:`gnn.reasoning.calibration`. The methods and the data types are in
:mod:`gnn.reasoning.pipeline`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict

import numpy as np
import torch

from gnn.reasoning.calibration import fit_memory_weight, fit_temperature
from gnn.reasoning.free_fit import fit_free, fit_prior
from gnn.reasoning.knowledge import PhenotypeKG
from gnn.reasoning.memory import CaseMemory
from gnn.reasoning.pipeline import (
    MEMORY_FEATURE,
    NUM_FEATURES,
    PRIOR_FEATURE,
    PRIOR_FLOOR,
    Patient,
    Reasoner,
    TrainConfig,
    _batch,
    resolve_cases,
)
from gnn.reasoning.similarity import Similarity
from gnn.reasoning.simulate import SimulationConfig, simulate_patient
from gnn.tasks import Case, ranks_of
from graph.errors import InputError

log = logging.getLogger("kgdx")
EVIDENCE_BATCH = 128  # training instances per batched evidence computation


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
    no_kg_epochs = fit_free(reasoner.no_kg, train, val, config, rng, observed_only=False)
    folds, fold_priors, prior_epochs = fit_prior(reasoner.prior, kg, train, val, config, rng)
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
    reasoner.temperature = fit_temperature(reasoner, val, val_evidence)
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
