"""kgdx's diagnosis model: diseases scored through the KG, so unseen diseases rank too.

``logit(p, D) = mlp(evidence(p, D)) - excluded_evidence(p, D)
+ <W_o pool(h_observed(p)), h_D> - softplus(<W_e pool(h_excluded(p)), h_D>)
+ memory_weight * memory(p, D)``

- ``h`` are term and disease embeddings from a heterogeneous GNN over the HPO IS_A DAG and the
  disease–phenotype annotations (:mod:`gnn.models.encoders`, chosen by name); a disease's
  embedding is built from its annotated phenotypes, never a free per-disease vector;
- ``evidence`` are KG similarity features (:data:`gnn.reasoning.similarity.FEATURES`: Resnik
  best-match averages both ways, IC-weighted overlaps, NOT annotations) plus the similarity to
  training cases of the disease (:class:`gnn.reasoning.memory.CaseMemory`);
- excluded findings enter linearly, per excluded term ``e`` whose disease annotation at or below it
  has frequency ``f``: ``a (1 - f) - softplus(c) f``. Case reports often list as absent the
  features of the disease they discuss, so an excluded *rare* feature may count as mild support
  (``a`` is free); an excluded obligate feature (``f = 1``) always lowers the disease, and the
  more frequent the excluded feature the more it does;
- ``memory_weight * memory(p, D)`` (``memory_column`` of the evidence: the best cosine to the
  disease's training cases, 0 for a disease without cases) is a weight fitted after training on
  the validation cases, not learned: the scorer is trained on simulated patients of every disease
  as well as on real cases, so it learns a lower base rate of seen diseases than real patients
  have; this term restores it (:func:`gnn.reasoning.calibration.fit_memory_weight`). 0 by default.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnn.models.base import DiagnosisModel, PatientBatch, pool
from gnn.models.encoders import ENCODERS

EXCLUDED_FEATURES = (4, 5)  # columns of FEATURES that count excluded findings


class KGDiagnosisModel(DiagnosisModel):
    """Args:
    num_terms: terms of the KG. num_features: evidence columns.
    encoder: ``hgt``, ``rgcn`` or ``sage``. hidden, num_layers, dropout, heads: GNN size.
    memory_column: the evidence column of the case-memory similarity (-1: none), which
    ``memory_weight`` (a buffer, saved with the weights) scales.
    """

    def __init__(
        self,
        *,
        num_terms: int,
        num_features: int,
        encoder: str = "sage",
        hidden: int = 32,
        num_layers: int = 2,
        dropout: float = 0.1,
        heads: int = 2,
        memory_column: int = -1,
    ) -> None:
        super().__init__()
        kwargs = {"heads": heads} if encoder == "hgt" else {}
        self.encoder = ENCODERS[encoder](num_terms, hidden, num_layers, dropout, **kwargs)
        self.register_buffer("feature_mean", torch.zeros(num_features))
        self.register_buffer("feature_std", torch.ones(num_features))
        keep = [i for i in range(num_features) if i not in EXCLUDED_FEATURES]
        self.register_buffer("kept", torch.tensor(keep, dtype=torch.long))
        self.memory_column = memory_column
        self.register_buffer("memory_weight", torch.zeros(()))
        self.mlp = nn.Sequential(nn.Linear(len(keep), 32), nn.ReLU(), nn.Linear(32, 1))
        self.linear = nn.Linear(len(keep), 1)
        self.excluded_weight = nn.Parameter(torch.zeros(len(EXCLUDED_FEATURES)))
        self.observed_map = nn.Linear(hidden, hidden, bias=False)
        self.excluded_map = nn.Linear(hidden, hidden, bias=False)
        nn.init.zeros_(self.observed_map.weight)
        nn.init.zeros_(self.excluded_map.weight)

    def _evidence(self, x: Tensor) -> Tensor:
        """``mlp(z) + linear(z)`` with ``z`` the standardised kept columns of ``x``, as one
        product over the raw features: the standardisation and the column choice are folded into
        the first layers' weights (a ``[33, F]`` matrix, zero on the excluded columns), so the
        ``[B, C, F]`` evidence is read once instead of being standardised, gathered and
        multiplied twice (the same function and gradients; ~2x faster scoring of all
        candidates)."""
        first, final = self.mlp[0], self.linear
        weight = torch.cat([first.weight, final.weight])  # [hidden + 1, kept]
        bias = torch.cat([first.bias, final.bias])
        std = self.feature_std[self.kept]
        scaled = weight / std
        bias = bias - scaled @ self.feature_mean[self.kept]
        full = scaled.new_zeros(weight.shape[0], x.shape[-1]).index_copy(1, self.kept, scaled)
        out = torch.nn.functional.linear(x, full, bias)
        hidden = first.out_features
        return self.mlp[2](torch.relu(out[..., :hidden])).squeeze(-1) + out[..., hidden]

    def encode(self, graph) -> dict[str, Tensor]:
        return self.encoder(graph)

    def score(
        self, embeddings: dict[str, Tensor], batch: PatientBatch, candidates: Tensor
    ) -> Tensor:
        h_disease = embeddings["disease"][candidates]  # [B, K, h]
        return self._logits(embeddings, batch, lambda p: torch.einsum("bh,bkh->bk", p, h_disease))

    def score_all(
        self, embeddings: dict[str, Tensor], batch: PatientBatch, diseases: Tensor
    ) -> Tensor:
        """Logits ``[B, len(diseases)]`` against one shared candidate list (``batch.features``
        is ``[B, len(diseases), F]``): the same values as :meth:`score` with ``diseases``
        repeated per patient, the embedding terms as one matrix product (no ``[B, K, h]``
        gather)."""
        h_disease = embeddings["disease"][diseases]  # [K, h]
        return self._logits(embeddings, batch, lambda p: p @ h_disease.T)

    def _logits(self, embeddings: dict[str, Tensor], batch: PatientBatch, against_diseases):
        x = batch.features
        evidence = self._evidence(x)
        # raw excluded evidence: column 4 sums f, column 5 sums (1 - f) over excluded terms
        frequency, considered = x[..., EXCLUDED_FEATURES[0]], x[..., EXCLUDED_FEATURES[1]]
        against = nn.functional.softplus(self.excluded_weight[0]) * frequency
        against = against - self.excluded_weight[1] * considered
        p_obs = self.observed_map(pool(embeddings["term"], batch.observed))
        p_exc = self.excluded_map(pool(embeddings["term"], batch.excluded))
        support = against_diseases(p_obs)
        # excluded findings' embeddings can only count against a disease
        contradiction = nn.functional.softplus(against_diseases(p_exc))
        contradiction = contradiction * (batch.excluded >= 0).any(dim=1, keepdim=True)
        logits = evidence - against + support - contradiction
        if self.memory_column >= 0:
            logits = logits + self.memory_weight * x[..., self.memory_column]
        return logits
