"""What ``GraphStore`` methods return: neighbours, subgraphs, query results and counts (plus the
``batched`` helper the stores and the KG build share). Re-exported by :mod:`graph.store`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import Field

from graph.records import Concept, Diagnosis, Record, Relation

Direction = Literal["out", "in", "both"]


class Neighbour(Record):
    """A concept next to another one, with the relation between them and its direction."""

    relation: Relation
    concept: Concept
    direction: Literal["out", "in"]


class Subgraph(Record):
    """Concepts and the relations among them (a k-hop neighbourhood export)."""

    concepts: tuple[Concept, ...]
    relations: tuple[Relation, ...]


class QueryResult(Record):
    """Rows of a read-only query; ``truncated`` is set when the row limit cut the result."""

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    truncated: bool = False

    def records(self) -> list[dict[str, Any]]:
        """Rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class StoredPrediction(Record):
    """A stored diagnosis with its rank among its model's and when it was stored."""

    diagnosis: Diagnosis
    rank: int
    created: str | None = None


class StoreCounts(Record):
    """Node counts per label and relation counts per type."""

    nodes: dict[str, int] = Field(default_factory=dict)
    relations: dict[str, int] = Field(default_factory=dict)

    @property
    def total_nodes(self) -> int:
        return sum(self.nodes.values())

    @property
    def total_relations(self) -> int:
        return sum(self.relations.values())


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Lists of ``size`` items (the last one shorter)."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
