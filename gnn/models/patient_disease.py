"""Heterogeneous GNNs that score (patient, candidate disease) pairs; chosen by name.

All three run on PyG's pure-torch paths (full batch; no pyg-lib, torch-scatter or torch-sparse):

- ``hgt``: Heterogeneous Graph Transformer (Hu et al., WWW 2020), :class:`~torch_geometric.nn.HGTConv`.
- ``rgcn``: Relational GCN (Schlichtkrull et al., ESWC 2018): one weight matrix per relation with
  mean aggregation plus a root weight, summed over relations (:class:`~torch_geometric.nn.HeteroConv`
  of :class:`~torch_geometric.nn.GraphConv`).
- ``sage``: GraphSAGE (Hamilton et al., NeurIPS 2017) made heterogeneous with
  :func:`~torch_geometric.nn.to_hetero`.

Every model embeds each node (a learnable embedding per concept, a shared one for patients, plus
a projection of the degree features), runs ``num_layers`` of message passing and scores
``logit[p, d] = <h_p, W h_d> + w_d . h_p + b_d`` against the candidate diseases' node embeddings, so the
disease nodes of the KG take part in the prediction.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch_geometric.nn import GraphConv, HeteroConv, HGTConv, SAGEConv, to_hetero

from graph.errors import ConfigError
from graph.schema import PATIENT_NODE_TYPE

Metadata = tuple[list[str], list[tuple[str, str, str]]]


class _Sage(nn.Module):
    def __init__(self, hidden: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(SAGEConv((-1, -1), hidden) for _ in range(num_layers))
        # a module, not functional dropout: to_hetero's FX trace would freeze `training`
        self.dropouts = nn.ModuleList(nn.Dropout(dropout) for _ in range(num_layers))

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for conv, dropout in zip(self.convs, self.dropouts, strict=True):
            x = dropout(torch.relu(conv(x, edge_index)) + x)
        return x


class PatientDiseaseModel(nn.Module):
    """Node encoder + heterogeneous message passing + bilinear patient-disease scorer.

    Args:
        metadata: ``(node_types, edge_types)`` of the graph (``HeteroData.metadata()``).
        num_nodes: nodes per type (concept embeddings are per node).
        feature_dims: width of ``x`` per node type.
        candidate_index: indices of the candidate diseases among the ``disease`` nodes.
        encoder: ``"hgt"``, ``"rgcn"`` or ``"sage"``.
        hidden: embedding width.
        num_layers: message-passing layers.
        heads: attention heads (``hgt`` only).
        dropout: dropout between layers.
    """

    def __init__(
        self,
        *,
        metadata: Metadata,
        num_nodes: dict[str, int],
        feature_dims: dict[str, int],
        candidate_index: list[int],
        encoder: str = "hgt",
        hidden: int = 32,
        num_layers: int = 2,
        heads: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        node_types, edge_types = metadata
        self.encoder_name = encoder
        self.dropout = dropout
        self.embedding = nn.ModuleDict(
            {
                nt: nn.Embedding(1 if nt == PATIENT_NODE_TYPE else num_nodes[nt], hidden)
                for nt in node_types
            }
        )
        self.project = nn.ModuleDict({nt: nn.Linear(feature_dims[nt], hidden) for nt in node_types})
        if encoder == "hgt":
            self.convs = nn.ModuleList(
                HGTConv(hidden, hidden, metadata, heads=heads) for _ in range(num_layers)
            )
        elif encoder == "rgcn":
            self.convs = nn.ModuleList(
                HeteroConv(
                    {et: GraphConv(hidden, hidden, aggr="mean") for et in edge_types}, aggr="mean"
                )
                for _ in range(num_layers)
            )
        elif encoder == "sage":
            self.sage = to_hetero(_Sage(hidden, num_layers, dropout), metadata, aggr="mean")
        else:
            raise ConfigError(f"unknown encoder {encoder!r}; expected one of {sorted(MODELS)}")
        self.register_buffer("candidate_index", torch.tensor(candidate_index, dtype=torch.long))
        self.bilinear = nn.Linear(hidden, hidden, bias=False)
        self.head = nn.Linear(hidden, len(candidate_index))

    def embed(self, x_dict: dict[str, Tensor]) -> dict[str, Tensor]:
        """Input embeddings per node type (before message passing)."""
        h_dict = {}
        for nt, x in x_dict.items():
            ids = torch.zeros(x.size(0), dtype=torch.long, device=x.device)
            if nt != PATIENT_NODE_TYPE:
                ids = torch.arange(x.size(0), device=x.device)
            h_dict[nt] = self.embedding[nt](ids) + self.project[nt](x)
        return h_dict

    def propagate(
        self, h_dict: dict[str, Tensor], edge_index_dict: dict[Any, Tensor]
    ) -> dict[str, Tensor]:
        """Message passing from input embeddings to final node embeddings."""
        if self.encoder_name == "sage":
            return self.sage(h_dict, edge_index_dict)
        for conv in self.convs:
            out = conv(h_dict, edge_index_dict)
            # node types that receive no message this layer keep their embedding
            h_dict = {nt: torch.relu(out[nt]) + h if nt in out else h for nt, h in h_dict.items()}
            h_dict = {
                nt: nn.functional.dropout(h, p=self.dropout, training=self.training)
                for nt, h in h_dict.items()
            }
        return h_dict

    def score(self, h_dict: dict[str, Tensor]) -> Tensor:
        """Logits ``[num_patients, num_candidates]`` from final node embeddings."""
        patients = h_dict[PATIENT_NODE_TYPE]
        diseases = h_dict["disease"][self.candidate_index]
        return patients @ self.bilinear(diseases).t() + self.head(patients)

    def forward(self, x_dict: dict[str, Tensor], edge_index_dict: dict[Any, Tensor]) -> Tensor:
        """Logits of shape ``[num_patients, num_candidates]``."""
        return self.score(self.propagate(self.embed(x_dict), edge_index_dict))


MODELS: dict[str, str] = {
    "hgt": "Heterogeneous Graph Transformer (HGTConv)",
    "rgcn": "Relational GCN (per-relation GraphConv, HeteroConv sum)",
    "sage": "GraphSAGE via to_hetero",
}


def build_model(name: str | PatientDiseaseModel, **kwargs: Any) -> PatientDiseaseModel:
    """A model by registry name (``hgt``, ``rgcn``, ``sage``) or an instance passed through.

    Raises:
        ConfigError: an unknown name.
    """
    if isinstance(name, PatientDiseaseModel):
        return name
    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; expected one of {sorted(MODELS)}")
    return PatientDiseaseModel(encoder=name, **kwargs)
