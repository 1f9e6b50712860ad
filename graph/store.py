"""The ``GraphStore`` interface: public validating methods, private backend hooks.

Backends (``graph.stores``) implement the ``_``-prefixed hooks only; validation, batching,
deduplication and the read-only guard live here so every backend behaves the same and passes the
same contract tests (``tests/graph/test_store_contract.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from graph.cypher_guard import read_only_query
from graph.errors import InputError, QueryError, UnknownConceptError
from graph.records import Concept, Relation, check_curie
from graph.schema import KG_RELATIONS, check_relation_type
from graph.settings import Settings, get_settings
from graph.store_patients import PatientStore
from graph.store_types import (  # re-exported: the value types of the store API
    Direction,
    Neighbour,
    QueryResult,
    StoreCounts,
    StoredPrediction,
    Subgraph,
    batched,
)

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "Direction",
    "GraphStore",
    "Neighbour",
    "QueryResult",
    "StoreCounts",
    "StoredPrediction",
    "Subgraph",
    "batched",
]


class GraphStore(PatientStore, ABC):
    """A graph database holding the knowledge graph and the patient graphs (the patients' half
    of the interface is :class:`graph.store_patients.PatientStore`).

    Args:
        settings: runtime settings (database path, timeouts, row limit); from the environment
            when ``None``.
    """

    name: ClassVar[str] = ""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or get_settings()

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None:
        """Release connections and files."""

    # ------------------------------------------------------------------ knowledge graph
    def upsert_concepts(self, concepts: Iterable[Concept], *, batch_size: int = 100_000) -> int:
        """Insert or update concepts by id (bulk path). Returns how many were written.

        Raises:
            InputError: an item is not a :class:`Concept`.
        """
        written = 0
        for batch in batched(concepts, batch_size):
            unique: dict[str, Concept] = {}
            for concept in batch:
                if not isinstance(concept, Concept):
                    raise InputError(f"expected Concept, got {type(concept).__name__}")
                unique[concept.id] = concept
            self._upsert_concepts(list(unique.values()))
            written += len(unique)
        return written

    def upsert_relations(self, relations: Iterable[Relation], *, batch_size: int = 200_000) -> int:
        """Insert or update KG relations keyed by ``(src, type, dst)`` (bulk path).

        Args:
            relations: the relations; duplicates within a batch keep the last one.
            batch_size: relations per bulk write.

        Raises:
            InputError: an item is not a :class:`Relation`.
            UnknownConceptError: an endpoint is not a stored concept (nothing of that batch is written).
        """
        written = 0
        for batch in batched(relations, batch_size):
            unique: dict[tuple[str, str, str], Relation] = {}
            for relation in batch:
                if not isinstance(relation, Relation):
                    raise InputError(f"expected Relation, got {type(relation).__name__}")
                unique[(relation.src, relation.type, relation.dst)] = relation
            rows = list(unique.values())
            missing = self._missing_concepts({r.src for r in rows} | {r.dst for r in rows})
            if missing:
                sample = ", ".join(sorted(missing)[:5])
                raise UnknownConceptError(
                    f"{len(missing)} relation endpoint(s) are not stored concepts (e.g. {sample}); "
                    "load the concepts first"
                )
            self._upsert_relations(rows)
            written += len(rows)
        return written

    def copy_concepts(self, table: pa.Table | Path) -> int:
        """Bulk-load new concepts from an Arrow table or Parquet file in the layout of
        :mod:`graph.kg_tables` (what ``kgdx kg build`` writes into a fresh store).

        The embedded store loads the whole table in one transaction (it lands whole or not at
        all); a backend without a bulk path (Neo4j) upserts it in transactions of 100k rows.

        Returns:
            How many concepts were loaded.

        Raises:
            InputError: the table is not in the bulk layout, or an id or kind is invalid.
            StoreError: the store refused it (the embedded store refuses an id already stored).
        """
        from graph.kg_tables import check_concept_table

        check_concept_table(table)
        return self._copy_concepts(table)

    def copy_relations(self, rel_type: str, table: pa.Table | Path) -> int:
        """Bulk-load new relations of ``rel_type`` from an Arrow table or Parquet file in the
        layout of :mod:`graph.kg_tables` (one transaction in the embedded store, as above).

        The rows must be unique and not stored yet (a fresh build after the crosswalk): the
        embedded store appends them as they are, which is what makes this the fast path. Use
        :meth:`upsert_relations` to merge into relations that may exist.

        Raises:
            InputError: not a KG relation type, not the bulk layout, or a bad endpoint.
            UnknownConceptError: an endpoint is not a stored concept (nothing is written).
        """
        from graph.kg_tables import check_relation_table

        check_relation_table(rel_type, table)
        return self._copy_relations(rel_type, table)

    def get_concept(self, concept_id: str) -> Concept:
        """The concept with this id.

        Raises:
            UnknownConceptError: no such concept.
        """
        found = self.get_concepts([concept_id])
        if concept_id not in found:
            raise UnknownConceptError(
                f"unknown concept {concept_id!r}; check the id or build the KG"
            )
        return found[concept_id]

    def get_concepts(self, concept_ids: Iterable[str]) -> dict[str, Concept]:
        """Concepts by id; ids that are not stored are left out."""
        ids = sorted({self._curie(i) for i in concept_ids})
        return self._get_concepts(ids) if ids else {}

    def iter_concepts(self, *, batch_size: int = 50_000) -> Iterator[Concept]:
        """Every stored concept, streamed in id order."""
        return self._iter_concepts(batch_size)

    def iter_relations(self, *, types: Sequence[str] | None = None) -> Iterator[Relation]:
        """Every stored KG relation, optionally of some types only."""
        return self._iter_relations(self._kg_types(types))

    def neighbours(
        self,
        concept_id: str,
        *,
        types: Sequence[str] | None = None,
        direction: Direction = "both",
        limit: int = 1000,
    ) -> list[Neighbour]:
        """Concepts one KG relation away from ``concept_id``.

        Raises:
            UnknownConceptError: ``concept_id`` is not stored.
        """
        if direction not in ("out", "in", "both"):
            raise InputError(f"direction must be 'out', 'in' or 'both', not {direction!r}")
        self.get_concept(concept_id)
        return self._neighbours(concept_id, self._kg_types(types), direction, limit)

    def paths(
        self, src_id: str, dst_id: str, *, max_hops: int = 3, limit: int = 10
    ) -> list[list[Neighbour]]:
        """Shortest KG walks from ``src_id`` to ``dst_id`` (edges in either direction).

        Returns:
            Up to ``limit`` paths, each a list of steps; a step's ``concept`` is the node reached
            and its ``direction`` says whether the edge was walked forwards (``out``) or back.
        """
        if not 1 <= max_hops <= 6:
            raise InputError("max_hops must be between 1 and 6")
        self.get_concept(src_id)
        self.get_concept(dst_id)
        return self._paths(src_id, dst_id, max_hops, limit)

    def subgraph(
        self, seed_ids: Iterable[str], *, hops: int = 2, types: Sequence[str] | None = None
    ) -> Subgraph:
        """The ``hops``-hop neighbourhood of the seeds over KG relations (either direction)."""
        seeds = sorted({self._curie(i) for i in seed_ids})
        if not 0 <= hops <= 4:
            raise InputError("hops must be between 0 and 4")
        return self._subgraph(seeds, hops, self._kg_types(types))

    # ------------------------------------------------------------------ queries
    def query(
        self,
        cypher: str,
        params: dict[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
        row_limit: int | None = None,
    ) -> QueryResult:
        """Run a researcher's Cypher on the read-only path.

        Writing clauses are rejected before the query reaches the database, and the backend runs
        it on a read-only connection too, with a timeout and a row limit.

        Raises:
            QueryError: a write, a syntax error, a timeout, or bad parameters (a ``$name``
                the query uses with no value in ``params`` is one).
        """
        if not isinstance(cypher, str):
            raise QueryError(f"query must be a string, got {type(cypher).__name__}")
        params = dict(params or {})
        for key in params:
            if not isinstance(key, str) or not key.isidentifier():
                raise QueryError(f"bad parameter name {key!r}")
        cypher, used = read_only_query(cypher)
        positional = sorted(name for name in used if not name.isidentifier())
        if positional:
            names = ", ".join(f"${name}" for name in positional)
            raise QueryError(f"positional parameters ({names}) are not supported: use $name")
        unbound = sorted(used - params.keys())
        if unbound:  # the database would read each as null: no rows, not an error
            names = ", ".join(f"${name}" for name in unbound)
            raise QueryError(f"no value given for parameter(s) {names}: pass them in params")
        timeout = timeout_s if timeout_s is not None else self.settings.query_timeout_s
        limit = row_limit if row_limit is not None else self.settings.query_row_limit
        if timeout <= 0 or limit <= 0:
            raise QueryError("timeout and row limit must be positive")
        return self._query(cypher, params, timeout, limit)

    def counts(self) -> StoreCounts:
        """Node counts per label and relation counts per type."""
        return self._counts()

    def clear(self) -> None:
        """Remove every node and relation (the schema stays)."""
        self._clear()

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _curie(value: str) -> str:
        try:
            return check_curie(value)
        except ValueError as exc:
            raise InputError(str(exc)) from None

    @staticmethod
    def _kg_types(types: Sequence[str] | None) -> list[str]:
        if types is None:
            return list(KG_RELATIONS)
        for name in types:
            if check_relation_type(name) not in KG_RELATIONS:
                raise InputError(f"{name!r} is not a KG relation type")
        return list(types)

    # ------------------------------------------------------------------ backend hooks
    @abstractmethod
    def _upsert_concepts(self, concepts: list[Concept]) -> None: ...

    @abstractmethod
    def _upsert_relations(self, relations: list[Relation]) -> None: ...

    def _copy_concepts(self, table: pa.Table | Path) -> int:
        """Bulk-load a concept table; backends without a bulk path upsert it in batches."""
        from graph.kg_tables import read_tables, table_concepts

        written = 0
        for part in read_tables(table):
            written += self.upsert_concepts(table_concepts(part), batch_size=part.num_rows or 1)
        return written

    def _copy_relations(self, rel_type: str, table: pa.Table | Path) -> int:
        """Bulk-load a relation table; backends without a bulk path upsert it in batches."""
        from graph.kg_tables import read_tables, table_relations

        written = 0
        for part in read_tables(table):
            written += self.upsert_relations(
                table_relations(rel_type, part), batch_size=part.num_rows or 1
            )
        return written

    @abstractmethod
    def _missing_concepts(self, concept_ids: set[str]) -> set[str]: ...

    @abstractmethod
    def _get_concepts(self, concept_ids: list[str]) -> dict[str, Concept]: ...

    @abstractmethod
    def _iter_concepts(self, batch_size: int) -> Iterator[Concept]: ...

    @abstractmethod
    def _iter_relations(self, types: list[str]) -> Iterator[Relation]: ...

    @abstractmethod
    def _neighbours(
        self, concept_id: str, types: list[str], direction: Direction, limit: int
    ) -> list[Neighbour]: ...

    @abstractmethod
    def _paths(
        self, src_id: str, dst_id: str, max_hops: int, limit: int
    ) -> list[list[Neighbour]]: ...

    @abstractmethod
    def _subgraph(self, seeds: list[str], hops: int, types: list[str]) -> Subgraph: ...

    @abstractmethod
    def _query(
        self, cypher: str, params: dict[str, Any], timeout_s: float, row_limit: int
    ) -> QueryResult: ...

    @abstractmethod
    def _counts(self) -> StoreCounts: ...

    @abstractmethod
    def _clear(self) -> None: ...


__all__ = [
    "Direction",
    "GraphStore",
    "Neighbour",
    "QueryError",
    "QueryResult",
    "StoreCounts",
    "Subgraph",
]
