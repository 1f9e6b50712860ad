"""Diagnosis models, chosen by name.

- The reasoning engine (:mod:`gnn.reasoning`): :class:`~gnn.models.kgdx.KGDiagnosisModel` with
  a KG encoder named ``hgt``, ``rgcn`` or ``sage`` (:data:`ENCODERS`), and the no-KG ablation
  ``free`` (:class:`~gnn.models.free.FreeEmbeddingModel`); :func:`resolve_model` builds one.
"""

from __future__ import annotations

from typing import Any

from gnn.models.base import DiagnosisModel, PatientBatch, pool
from gnn.models.encoders import ENCODERS, kg_graph
from gnn.models.free import FreeEmbeddingModel
from gnn.models.kgdx import KGDiagnosisModel
from graph.errors import ConfigError

REASONING_MODELS: dict[str, str] = {
    **{name: f"kgdx scorer over a {name.upper()} KG encoder" for name in ENCODERS},
    "free": "no-KG ablation: free term and disease embeddings",
}


def resolve_model(name: str | DiagnosisModel, **kwargs: Any) -> DiagnosisModel:
    """A reasoning model by name (``hgt``, ``rgcn``, ``sage``, ``free``) or an instance.

    Raises:
        ConfigError: an unknown name.
    """
    if isinstance(name, DiagnosisModel):
        return name
    if name == "free":
        return FreeEmbeddingModel(**kwargs)
    if name in ENCODERS:
        kwargs.pop("num_diseases", None)
        return KGDiagnosisModel(encoder=name, **kwargs)
    raise ConfigError(f"unknown model {name!r}; expected one of {sorted(REASONING_MODELS)}")


__all__ = [
    "ENCODERS",
    "REASONING_MODELS",
    "DiagnosisModel",
    "FreeEmbeddingModel",
    "KGDiagnosisModel",
    "PatientBatch",
    "kg_graph",
    "pool",
    "resolve_model",
]
