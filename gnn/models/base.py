"""The small interface every diagnosis model of the reasoning engine implements.

A model ``encode``s the KG once (term and disease embeddings; no patient takes part, so a new
patient needs no rebuild and no retrain), then ``score``s a batch of patients against candidate
diseases. A patient is only its own findings: scores of one patient never depend on which
other patients are batched or stored.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from torch import Tensor, nn


@dataclass
class PatientBatch:
    """Findings of ``B`` patients as padded term indices (``-1`` = padding).

    Attributes:
        observed: ``[B, Lo]`` present findings. excluded: ``[B, Le]`` absent findings.
        features: ``[B, K, F]`` KG evidence of each patient against its ``K`` candidates
            (:meth:`gnn.reasoning.similarity.Similarity.features` plus memory features).
    """

    observed: Tensor
    excluded: Tensor
    features: Tensor


class DiagnosisModel(nn.Module, ABC):
    """``encode(graph) -> embeddings``, ``score(embeddings, batch, candidates) -> [B, K]``."""

    @abstractmethod
    def encode(self, graph) -> dict[str, Tensor]:
        """Node embeddings of the KG (``{"term": [T, h], "disease": [C, h]}``)."""

    @abstractmethod
    def score(
        self, embeddings: dict[str, Tensor], batch: PatientBatch, candidates: Tensor
    ) -> Tensor:
        """Logits ``[B, K]`` of each patient for its candidates ``[B, K]`` (disease indices)."""

    def forward(self, graph, batch: PatientBatch, candidates: Tensor) -> Tensor:
        return self.score(self.encode(graph), batch, candidates)


def pool(embeddings: Tensor, indices: Tensor) -> Tensor:
    """Mean of ``embeddings[indices]`` per row of padded ``indices`` (``-1`` padding);
    zeros for a row with no index."""
    mask = (indices >= 0).unsqueeze(-1).float()
    gathered = embeddings[indices.clamp(min=0)] * mask
    return gathered.sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
