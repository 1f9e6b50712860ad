"""Neo4j backend of :class:`~graph.store.GraphStore` on the official ``neo4j`` driver.

Writes run as ``UNWIND $rows`` batches inside managed transactions (``session.execute_write``),
which the driver retries on transient errors (deadlocks, leader changes) for up to
``max_transaction_retry_time``; rows are sorted by key first so concurrent writers lock nodes in
the same order. Every session shares one bookmark manager, so a read sees the writes made before
it (read-your-writes, also on a cluster). Reads use READ access mode; researchers' Cypher runs in
a READ session with a server-side timeout and a row limit. All Cypher text lives in
:mod:`graph.stores.neo4j_cypher` and :mod:`graph.stores.neo4j_patients`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import neo4j
from neo4j import exceptions as neo4j_errors

from graph.errors import ConfigError, QueryError, StoreError
from graph.log import logger
from graph.records import Concept, Diagnosis, Patient, Relation
from graph.schema import KG_RELATIONS, NODE_LABELS, decode_sources, encode_sources, relation_tables
from graph.settings import Settings
from graph.store import Direction, GraphStore, Neighbour, QueryResult, StoreCounts, Subgraph
from graph.stores import neo4j_cypher as cypher
from graph.stores import neo4j_patients as patients
from graph.stores.neo4j_values import plain_value

Rows = list[dict[str, Any]]


def batched_rows(rows: Sequence[dict[str, Any]], key: Sequence[str], size: int) -> list[Rows]:
    """Sort ``rows`` by the ``key`` fields and cut them into batches of at most ``size``.

    A stable lock order across writers is what keeps concurrent ``MERGE`` batches from
    deadlocking each other; the batch size bounds a transaction's memory on the server.
    """
    if size < 1:
        raise ValueError("batch size must be positive")
    ordered = sorted(rows, key=lambda row: tuple(row[k] for k in key))
    return [ordered[i : i + size] for i in range(0, len(ordered), size)]


def concept_row(concept: Concept) -> dict[str, Any]:
    return {
        "id": concept.id,
        "name": concept.name,
        "kind": concept.kind.value,
        "synonyms": list(concept.synonyms),
        "xrefs": list(concept.xrefs),
        "sources": list(concept.sources),
    }


def relation_row(relation: Relation) -> dict[str, Any]:
    return {
        "src": relation.src,
        "dst": relation.dst,
        "sources": encode_sources(relation.sources),
        "weight": float(relation.weight),
        "negated": bool(relation.negated),
        # Empty attributes are stored as "" like the embedded store, so exports match.
        "attributes": json.dumps(relation.attributes, sort_keys=True)
        if relation.attributes
        else "",
    }


def concept_from(row: dict[str, Any], prefix: str = "") -> Concept:
    return Concept(
        id=row[f"{prefix}id"],
        name=row[f"{prefix}name"],
        kind=row[f"{prefix}kind"] or "other",
        synonyms=tuple(row[f"{prefix}synonyms"] or ()),
        xrefs=tuple(row[f"{prefix}xrefs"] or ()),
        sources=tuple(row[f"{prefix}sources"] or ()),
    )


def relation_from(row: dict[str, Any]) -> Relation:
    return Relation(
        src=row["src"],
        dst=row["dst"],
        type=row["type"],
        sources=decode_sources(row["sources"]),
        weight=1.0 if row["weight"] is None else row["weight"],
        negated=bool(row["negated"]),
        attributes=json.loads(row["attributes"]) if row["attributes"] else {},
    )


class Neo4jStore(GraphStore):
    """Graph store in a Neo4j 5 database.

    Args:
        settings: connection settings (``KGDX_NEO4J_URI``, ``_USER``, ``_PASSWORD``,
            ``_DATABASE``); from the environment when ``None``.
        driver: an open driver to use instead of one built from the settings (the store then
            does not close it).
        batch_size: rows per ``UNWIND`` statement.
        retry_time_s: how long the driver retries a transaction that failed transiently.
        read_only: a reading command's store: the constraints and indexes are not created
            (writing them needs a write), and writes are refused.
    """

    name = "neo4j"

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        driver: Any = None,
        batch_size: int = 10_000,
        retry_time_s: float = 30.0,
        read_only: bool = False,
    ) -> None:
        super().__init__(settings)
        self.batch_size = batch_size
        self.read_only = read_only
        self.database = self.settings.neo4j_database
        self._owns_driver = driver is None
        if driver is None:
            if not self.settings.neo4j_uri:
                raise ConfigError("set KGDX_NEO4J_URI (e.g. bolt://localhost:7687)")
            driver = neo4j.GraphDatabase.driver(
                self.settings.neo4j_uri,
                auth=(self.settings.neo4j_user, self.settings.neo4j_password),
                max_transaction_retry_time=retry_time_s,
            )
        self._driver = driver
        self._bookmarks = neo4j.GraphDatabase.bookmark_manager()
        try:
            self._driver.verify_connectivity()
            for statement in () if read_only else cypher.schema_statements():
                self._driver.execute_query(
                    statement, database_=self.database, bookmark_manager_=self._bookmarks
                )
        except (neo4j_errors.ServiceUnavailable, neo4j_errors.AuthError) as exc:
            self.close()
            raise StoreError(
                f"cannot reach Neo4j at {self.settings.neo4j_uri} as {self.settings.neo4j_user!r}: "
                f"{exc}; check KGDX_NEO4J_URI/USER/PASSWORD and that the server is up"
            ) from None

    # ------------------------------------------------------------------ sessions
    def close(self) -> None:
        if self._owns_driver and self._driver is not None:
            self._driver.close()
        self._driver = None

    def _session(self, access_mode: str) -> Any:
        if self._driver is None:
            raise StoreError("the Neo4j store is closed")
        return self._driver.session(
            database=self.database,
            default_access_mode=access_mode,
            bookmark_manager=self._bookmarks,
        )

    def _write(self, work: Callable[..., Any], *args: Any) -> Any:
        """Run ``work(tx, *args)`` in one managed write transaction (retried when transient)."""
        if self.read_only:
            raise StoreError("this Neo4j store was opened read-only (a reading command)")
        try:
            with self._session(neo4j.WRITE_ACCESS) as session:
                return session.execute_write(work, *args)
        except neo4j_errors.Neo4jError as exc:
            raise StoreError(f"Neo4j write failed, nothing was committed: {exc}") from None
        except neo4j_errors.DriverError as exc:
            raise StoreError(f"Neo4j write failed: {exc}") from None

    def _read(self, statement: str, **params: Any) -> Rows:
        """Rows of one read-only statement as dicts, in a managed READ transaction."""

        def work(tx: Any) -> Rows:
            return [record.data() for record in tx.run(statement, params)]

        return self._read_work(work)

    def _read_work(self, work: Callable[[Any], Any]) -> Any:
        """Run ``work(tx)`` in a managed READ transaction (after this store's own writes)."""
        try:
            with self._session(neo4j.READ_ACCESS) as session:
                return session.execute_read(work)
        except neo4j_errors.Neo4jError as exc:
            raise StoreError(f"Neo4j read failed: {exc}") from None
        except neo4j_errors.DriverError as exc:
            raise StoreError(f"Neo4j read failed: {exc}") from None

    def _run_batches(self, statement: str, rows: Rows, key: Sequence[str], **params: Any) -> Any:
        """Transaction work running ``statement`` once per sorted batch of ``rows``."""
        batches = batched_rows(rows, key, self.batch_size)

        def work(tx: Any) -> None:
            for batch in batches:
                tx.run(statement, {"rows": batch, **params}).consume()

        return work

    # ------------------------------------------------------------------ knowledge graph
    def _upsert_concepts(self, concepts: list[Concept]) -> None:
        rows = [concept_row(c) for c in concepts]
        self._write(self._run_batches(cypher.UPSERT_CONCEPTS, rows, ("id",)))

    def _upsert_relations(self, relations: list[Relation]) -> None:
        by_type: dict[str, Rows] = {}
        for relation in relations:
            by_type.setdefault(relation.type, []).append(relation_row(relation))
        works = [
            self._run_batches(cypher.upsert_relations(rel_type), rows, ("src", "dst"))
            for rel_type, rows in sorted(by_type.items())
        ]

        def work(tx: Any) -> None:  # every type in one transaction: the batch is all or nothing
            for part in works:
                part(tx)

        self._write(work)

    def _missing_concepts(self, concept_ids: set[str]) -> set[str]:
        if not concept_ids:
            return set()
        rows = self._read(cypher.MISSING_CONCEPTS, ids=sorted(concept_ids))
        return {row["id"] for row in rows}

    def _get_concepts(self, concept_ids: list[str]) -> dict[str, Concept]:
        rows = self._read(cypher.GET_CONCEPTS, ids=concept_ids)
        return {row["id"]: concept_from(row) for row in rows}

    def _iter_concepts(self, batch_size: int) -> Iterator[Concept]:
        after = ""
        while True:
            rows = self._read(cypher.CONCEPT_PAGE, after=after, batch=batch_size)
            yield from (concept_from(row) for row in rows)
            if len(rows) < batch_size:
                return
            after = rows[-1]["id"]

    def _iter_relations(self, types: list[str]) -> Iterator[Relation]:
        for rel_type in types:
            statement = cypher.relation_page(rel_type)
            after_src, after_dst = "", ""
            while True:
                rows = self._read(
                    statement, after_src=after_src, after_dst=after_dst, batch=self.batch_size
                )
                yield from (relation_from(row) for row in rows)
                if len(rows) < self.batch_size:
                    break
                after_src, after_dst = rows[-1]["src"], rows[-1]["dst"]

    def _neighbours(
        self, concept_id: str, types: list[str], direction: Direction, limit: int
    ) -> list[Neighbour]:
        rows = self._read(cypher.neighbours(direction), id=concept_id, types=types, max_rows=limit)
        return [
            Neighbour(
                relation=relation_from(row),
                concept=concept_from(row, "n_"),
                direction=row["direction"],
            )
            for row in rows
        ]

    def _paths(self, src_id: str, dst_id: str, max_hops: int, limit: int) -> list[list[Neighbour]]:
        rows = self._read(
            cypher.shortest_paths(max_hops),
            src=src_id,
            dst=dst_id,
            types=list(KG_RELATIONS),
            max_rows=limit,
        )
        paths = []
        for row in rows:
            steps = []
            for node, rel in zip(row["nodes"][1:], row["rels"], strict=True):
                relation = relation_from(rel)
                direction = "out" if relation.dst == node["id"] else "in"
                steps.append(
                    Neighbour(relation=relation, concept=concept_from(node), direction=direction)
                )
            paths.append(steps)
        return paths

    def _subgraph(self, seeds: list[str], hops: int, types: list[str]) -> Subgraph:
        found = set(self._get_concepts(seeds))
        frontier = sorted(found)
        for _ in range(hops):
            if not frontier:
                break
            rows = self._read(cypher.EXPAND_FRONTIER, frontier=frontier, types=types)
            frontier = sorted({row["id"] for row in rows} - found)
            found.update(frontier)
        ids = sorted(found)
        concepts = self._get_concepts(ids) if ids else {}
        rows = self._read(cypher.INDUCED_RELATIONS, ids=ids, types=types) if ids else []
        return Subgraph(
            concepts=tuple(concepts[i] for i in ids),
            relations=tuple(relation_from(row) for row in rows),
        )

    # ------------------------------------------------------------------ patients
    def _upsert_patient(self, patient: Patient) -> None:
        self._write(patients.upsert_work(patient))

    def _get_patient(self, patient_id: str) -> Patient | None:
        def work(tx: Any) -> Patient | None:
            return patients.read_patient(tx, patient_id)

        return self._read_work(work)

    def _patient_ids(self) -> list[str]:
        return [row["id"] for row in self._read(patients.PATIENT_IDS)]

    def _delete_patient(self, patient_id: str) -> None:
        self._write(patients.delete_work(patient_id))

    def _has_patient(self, patient_id: str) -> bool:
        return bool(self._read(patients.GET_PATIENT, pid=patient_id))  # the node only

    def _save_predictions(
        self, patient_id: str, diagnoses: list[Diagnosis], stored: set[str]
    ) -> None:
        self._write(patients.predictions_work(patient_id, diagnoses, stored))

    # ------------------------------------------------------------------ queries
    def _query(
        self, cypher_text: str, params: dict[str, Any], timeout_s: float, row_limit: int
    ) -> QueryResult:
        # An auto-commit READ transaction: the server refuses writes in it, and the timeout
        # travels with the query so the server aborts it (not just the client).
        query = neo4j.Query(cypher_text, timeout=timeout_s)
        rows: list[tuple[Any, ...]] = []
        truncated = False
        max_bytes, answered = self.settings.query_max_bytes, 0
        try:
            with self._session(neo4j.READ_ACCESS) as session:
                result = session.run(query, params)
                columns = tuple(result.keys())
                for record in result:
                    if len(rows) >= row_limit:
                        truncated = True
                        break
                    row = tuple(plain_value(value) for value in record.values())
                    # The byte cap, counted as the JSON the REST answer would carry, row by row:
                    # the driver streams records, so leaving the loop stops the pull.
                    answered += len(json.dumps(row, default=str, ensure_ascii=False).encode())
                    if answered > max_bytes:
                        raise QueryError(
                            f"the answer passed the {max_bytes} byte cap "
                            "(KGDX_QUERY_MAX_BYTES); return fewer or smaller values"
                        )
                    rows.append(row)
        except neo4j_errors.ClientError as exc:
            raise QueryError(f"{exc.code or 'Neo4j'}: {exc.message}") from None
        except neo4j_errors.Neo4jError as exc:
            raise QueryError(f"query failed: {exc}") from None
        except neo4j_errors.DriverError as exc:
            raise StoreError(f"Neo4j query failed: {exc}") from None
        return QueryResult(columns=columns, rows=tuple(rows), truncated=truncated)

    def _clear(self) -> None:
        def work(tx: Any, statement: str) -> int:
            return tx.run(statement, {"batch": self.batch_size}).single()["deleted"]

        for label in NODE_LABELS:
            statement = cypher.delete_batch(label)
            while self._write(work, statement):
                pass

    def _counts(self) -> StoreCounts:
        nodes = {label: self._read(cypher.count_label(label))[0]["n"] for label in NODE_LABELS}
        relations = {
            rel_type: self._read(cypher.count_type(rel_type))[0]["n"]
            for rel_type in relation_tables()
        }
        logger.debug("neo4j counts: %s %s", nodes, relations)
        return StoreCounts(nodes=nodes, relations=relations)
