"""kgdx's diagnosis model: diseases scored through the KG, so unseen diseases rank too.

``logit(p, D) = mlp(evidence(p, D)) - excluded_evidence(p, D)
+ <W_o pool(h_observed(p)), h_D> - softplus(<W_e pool(h_excluded(p)), h_D>)``

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
  more frequent the excluded feature the more it does.
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
    ) -> None:
        super().__init__()
        kwargs = {"heads": heads} if encoder == "hgt" else {}
        self.encoder = ENCODERS[encoder](num_terms, hidden, num_layers, dropout, **kwargs)
        self.register_buffer("feature_mean", torch.zeros(num_features))
        self.register_buffer("feature_std", torch.ones(num_features))
        keep = [i for i in range(num_features) if i not in EXCLUDED_FEATURES]
        self.register_buffer("kept", torch.tensor(keep, dtype=torch.long))
        self.mlp = nn.Sequential(nn.Linear(len(keep), 32), nn.ReLU(), nn.Linear(32, 1))
        self.linear = nn.Linear(len(keep), 1)
        self.excluded_weight = nn.Parameter(torch.zeros(len(EXCLUDED_FEATURES)))
        self.observed_map = nn.Linear(hidden, hidden, bias=False)
        self.excluded_map = nn.Linear(hidden, hidden, bias=False)
        nn.init.zeros_(self.observed_map.weight)
        nn.init.zeros_(self.excluded_map.weight)

    def encode(self, graph) -> dict[str, Tensor]:
        return self.encoder(graph)

    def score(
        self, embeddings: dict[str, Tensor], batch: PatientBatch, candidates: Tensor
    ) -> Tensor:
        x = batch.features
        z = (x - self.feature_mean) / self.feature_std
        kept = z[..., self.kept]
        evidence = self.mlp(kept).squeeze(-1) + self.linear(kept).squeeze(-1)
        # raw excluded evidence: column 4 sums f, column 5 sums (1 - f) over excluded terms
        frequency, considered = x[..., EXCLUDED_FEATURES[0]], x[..., EXCLUDED_FEATURES[1]]
        against = nn.functional.softplus(self.excluded_weight[0]) * frequency
        against = against - self.excluded_weight[1] * considered
        h_disease = embeddings["disease"][candidates]  # [B, K, h]
        p_obs = self.observed_map(pool(embeddings["term"], batch.observed))
        p_exc = self.excluded_map(pool(embeddings["term"], batch.excluded))
        support = torch.einsum("bh,bkh->bk", p_obs, h_disease)
        # excluded findings' embeddings can only count against a disease
        contradiction = nn.functional.softplus(torch.einsum("bh,bkh->bk", p_exc, h_disease))
        contradiction = contradiction * (batch.excluded >= 0).any(dim=1, keepdim=True)
        return evidence - against + support - contradiction
