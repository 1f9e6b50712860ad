"""Ablation (b): the same scorer without the KG: patient–finding edges only.

Terms and diseases are free embeddings (no IS_A, no annotations, no KG similarity), trained on
the training cases alone, so a disease no training case has keeps its random embedding: what it
ranks on unseen diseases is what kgdx's model owes to the KG.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from gnn.models.base import DiagnosisModel, PatientBatch, pool


class FreeEmbeddingModel(DiagnosisModel):
    """``logit(p, D) = <pool(e_observed) - W pool(e_excluded), e_D> + b_D``."""

    def __init__(self, *, num_terms: int, num_diseases: int, hidden: int = 32, **_: object) -> None:
        super().__init__()
        self.term = nn.Embedding(num_terms, hidden)
        self.disease = nn.Embedding(num_diseases, hidden)
        nn.init.normal_(self.term.weight, std=0.1)
        nn.init.normal_(self.disease.weight, std=0.1)
        self.bias = nn.Parameter(torch.zeros(num_diseases))
        self.excluded_map = nn.Linear(hidden, hidden, bias=False)

    def encode(self, graph=None) -> dict[str, Tensor]:
        return {"term": self.term.weight, "disease": self.disease.weight}

    def score(
        self, embeddings: dict[str, Tensor], batch: PatientBatch, candidates: Tensor
    ) -> Tensor:
        patient = pool(embeddings["term"], batch.observed) - self.excluded_map(
            pool(embeddings["term"], batch.excluded)
        )
        return (
            torch.einsum("bh,bkh->bk", patient, embeddings["disease"][candidates])
            + self.bias[candidates]
        )

    def score_all(
        self, embeddings: dict[str, Tensor], batch: PatientBatch, diseases: Tensor
    ) -> Tensor:
        """Logits ``[B, len(diseases)]`` against one shared candidate list: the same values
        as :meth:`score` with ``diseases`` repeated per patient, as one matrix product (no
        ``[B, K, h]`` gather), which makes a softmax over thousands of diseases cheap."""
        patient = pool(embeddings["term"], batch.observed) - self.excluded_map(
            pool(embeddings["term"], batch.excluded)
        )
        return patient @ embeddings["disease"][diseases].T + self.bias[diseases]
