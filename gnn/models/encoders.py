"""Heterogeneous KG encoders by name: message passing over the HPO IS_A DAG and the
disease–phenotype annotations, producing term and disease embeddings.

Terms start from a learned embedding each; diseases start from one shared vector, so a disease's
embedding is made only of its annotated phenotypes (and their ancestors, through IS_A): a disease
no training patient has still gets one. Pure-torch PyG paths (no pyg-lib / torch-scatter).

- ``hgt``: Heterogeneous Graph Transformer (Hu et al., WWW 2020), :class:`~torch_geometric.nn.HGTConv`.
- ``rgcn``: Relational GCN (Schlichtkrull et al., ESWC 2018): per-relation
  :class:`~torch_geometric.nn.GraphConv` (edge-weighted by annotation frequency), summed.
- ``sage``: GraphSAGE (Hamilton et al., NeurIPS 2017), per-relation :class:`~torch_geometric.nn.SAGEConv`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

EDGE_TYPES = (
    ("term", "is_a", "term"),
    ("term", "parent_of", "term"),
    ("term", "annotates", "disease"),
    ("disease", "has_phenotype", "term"),
)
METADATA = (["term", "disease"], list(EDGE_TYPES))


class KGEncoder(nn.Module):
    """Input embeddings plus ``num_layers`` of heterogeneous message passing (residual)."""

    def __init__(self, num_terms: int, hidden: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.term_embedding = nn.Embedding(num_terms, hidden)
        nn.init.normal_(self.term_embedding.weight, std=0.1)
        self.disease_start = nn.Parameter(torch.zeros(1, hidden))
        self.dropout = dropout
        self.convs = nn.ModuleList(self.make_conv(hidden) for _ in range(num_layers))
        self.norms = nn.ModuleList(
            nn.ModuleDict({nt: nn.LayerNorm(hidden) for nt in METADATA[0]})
            for _ in range(num_layers)
        )

    def make_conv(self, hidden: int) -> nn.Module:
        raise NotImplementedError

    def conv_inputs(self, graph) -> dict:
        return {"edge_index_dict": graph.edge_index_dict}

    def forward(self, graph) -> dict[str, Tensor]:
        h = {
            "term": self.term_embedding.weight,
            "disease": self.disease_start.expand(graph["disease"].num_nodes, -1),
        }
        for conv, norms in zip(self.convs, self.norms, strict=True):
            out = conv(h, **self.conv_inputs(graph))
            h = {
                nt: norms[nt](
                    h[nt]
                    + nn.functional.dropout(
                        torch.relu(out[nt]), p=self.dropout, training=self.training
                    )
                )
                for nt in h
            }
        return h


class HGTEncoder(KGEncoder):
    def __init__(
        self, num_terms: int, hidden: int, num_layers: int, dropout: float, heads: int = 2
    ):
        self.heads = heads
        super().__init__(num_terms, hidden, num_layers, dropout)

    def make_conv(self, hidden: int) -> nn.Module:
        from torch_geometric.nn import HGTConv

        return HGTConv(hidden, hidden, METADATA, heads=self.heads)


class RGCNEncoder(KGEncoder):
    def make_conv(self, hidden: int) -> nn.Module:
        from torch_geometric.nn import GraphConv, HeteroConv

        return HeteroConv(
            {et: GraphConv(hidden, hidden, aggr="mean") for et in EDGE_TYPES}, aggr="sum"
        )

    def conv_inputs(self, graph) -> dict:
        return {
            "edge_index_dict": graph.edge_index_dict,
            "edge_weight_dict": {et: graph[et].edge_weight for et in EDGE_TYPES},
        }


class SAGEEncoder(KGEncoder):
    def make_conv(self, hidden: int) -> nn.Module:
        from torch_geometric.nn import HeteroConv, SAGEConv

        return HeteroConv(
            {et: SAGEConv(hidden, hidden, aggr="mean") for et in EDGE_TYPES}, aggr="sum"
        )


ENCODERS: dict[str, type[KGEncoder]] = {"hgt": HGTEncoder, "rgcn": RGCNEncoder, "sage": SAGEEncoder}


def kg_graph(kg):
    """The KG of a :class:`~gnn.reasoning.knowledge.PhenotypeKG` as PyG ``HeteroData``."""
    from torch_geometric.data import HeteroData

    data = HeteroData()
    data["term"].num_nodes = kg.num_terms
    data["disease"].num_nodes = kg.num_diseases
    parents = kg.parents.tocoo()
    child, parent = (
        torch.as_tensor(parents.row, dtype=torch.long),
        torch.as_tensor(parents.col, dtype=torch.long),
    )
    ann = kg.annotations.tocoo()
    disease, term = (
        torch.as_tensor(ann.row, dtype=torch.long),
        torch.as_tensor(ann.col, dtype=torch.long),
    )
    frequency = torch.as_tensor(ann.data, dtype=torch.float)
    ones = torch.ones(len(child))
    for et, (src, dst, w) in zip(
        EDGE_TYPES,
        (
            (child, parent, ones),
            (parent, child, ones),
            (term, disease, frequency),
            (disease, term, frequency),
        ),
        strict=True,
    ):
        data[et].edge_index = torch.stack([src, dst])
        data[et].edge_weight = w
    return data
