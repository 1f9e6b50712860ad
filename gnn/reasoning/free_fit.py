"""The supervised no-KG models: baseline (b) and the seen-disease prior with its cross-fitting
fold models (:func:`fit_free`, :func:`fit_prior`)."""

from __future__ import annotations

import numpy as np
import torch

from gnn.models import resolve_model
from gnn.reasoning.knowledge import PhenotypeKG
from gnn.reasoning.pipeline import Patient, TrainConfig, _batch


def fit_free(
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


def fit_prior(prior, kg: PhenotypeKG, train: list[Patient], val, config: TrainConfig, rng):
    """The seen-disease prior (all training cases) and its cross-fitting fold models.

    Fold assignment: a disease with one case, and ``unseen_rate`` of the others, put all their
    cases in one fold (that fold's model never sees the disease); the other diseases spread their
    cases over the folds. Returns each case's fold, ``(model, seen)`` per fold and the epochs."""
    epochs = fit_free(prior, train, val, config, rng, observed_only=True)
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
            fit_free(model, rest, [], config, rng, observed_only=True, epochs=epochs)
            seen[[p.disease for p in rest]] = True
        fold_priors.append((model, seen))
    return folds, fold_priors, epochs
