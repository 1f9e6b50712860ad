"""A recording stand-in for the ``neo4j`` driver, for unit tests of the Neo4j backend's wiring.

No Neo4j server can run on these machines, and the parts under test here (which statements are
sent, with which parameters, in which access mode, in how many batches, through which managed
transaction call) are the backend's own logic, not the server's; the live contract tests check
the server side when ``KGDX_TEST_NEO4J_URI`` is set. This is the one place where a fake is right.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from neo4j import exceptions as neo4j_errors

from graph.records import Concept
from graph.settings import Settings
from graph.stores.neo4j import Neo4jStore

Responder = Callable[[str, dict[str, Any]], list[dict[str, Any]]]


@dataclass
class Call:
    """One statement as the fake server received it."""

    statement: str
    params: dict[str, Any]
    access_mode: str
    via: str  # "execute_write", "execute_read", "run" (auto-commit) or "execute_query"
    attempt: int = 1
    timeout: float | None = None


class FakeRecord:
    def __init__(self, row: dict[str, Any]) -> None:
        self._row = row

    def data(self) -> dict[str, Any]:
        return dict(self._row)

    def values(self) -> list[Any]:
        return list(self._row.values())

    def __getitem__(self, key: str) -> Any:
        return self._row[key]


class FakeResult:
    def __init__(self, rows: list[dict[str, Any]], keys: list[str] | None = None) -> None:
        self._rows = rows
        self._keys = keys if keys is not None else (list(rows[0]) if rows else [])
        self.consumed = False
        self.pulled = 0

    def keys(self) -> list[str]:
        return self._keys

    def consume(self) -> None:
        self.consumed = True

    def single(self) -> FakeRecord | None:
        return FakeRecord(self._rows[0]) if self._rows else None

    def __iter__(self):
        for row in self._rows:
            self.pulled += 1
            yield FakeRecord(row)


@dataclass
class FakeTx:
    session: FakeSession
    via: str
    attempt: int

    def run(self, statement: Any, params: dict[str, Any] | None = None) -> FakeResult:
        return self.session.record(statement, params or {}, self.via, self.attempt)


@dataclass
class FakeSession:
    driver: FakeDriver
    database: str
    access_mode: str
    bookmark_manager: Any

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.driver.closed_sessions += 1

    def record(self, statement: Any, params: dict[str, Any], via: str, attempt: int) -> FakeResult:
        timeout = getattr(statement, "timeout", None)
        text = getattr(statement, "text", statement)
        self.driver.calls.append(Call(text, params, self.access_mode, via, attempt, timeout))
        if self.driver.fail_with is not None:
            raise self.driver.fail_with
        return FakeResult(self.driver.responder(text, params))

    def _managed(self, work: Callable[..., Any], args: tuple, via: str) -> Any:
        # Like the real driver after a transient error: the work function runs again from the
        # start in a new transaction, so it must be safe to replay.
        for attempt in range(1, self.driver.transient_failures + 1):
            work(FakeTx(self, via, attempt), *args)
            self.driver.rolled_back += 1
        return work(FakeTx(self, via, self.driver.transient_failures + 1), *args)

    def execute_write(self, work: Callable[..., Any], *args: Any) -> Any:
        return self._managed(work, args, "execute_write")

    def execute_read(self, work: Callable[..., Any], *args: Any) -> Any:
        return self._managed(work, args, "execute_read")

    def run(self, query: Any, params: dict[str, Any] | None = None) -> FakeResult:
        return self.record(query, params or {}, "run", 1)


@dataclass
class FakeDriver:
    """Records every statement; reads answer through ``responder`` (empty rows by default)."""

    responder: Responder = lambda statement, params: []  # noqa: E731
    transient_failures: int = 0
    fail_with: Exception | None = None
    reachable: bool = True
    calls: list[Call] = field(default_factory=list)
    sessions: list[FakeSession] = field(default_factory=list)
    closed_sessions: int = 0
    rolled_back: int = 0
    closed: bool = False

    def verify_connectivity(self) -> None:
        if not self.reachable:
            raise neo4j_errors.ServiceUnavailable("Unable to retrieve routing information")

    def execute_query(self, statement: str, parameters_: dict | None = None, **kwargs: Any):
        self.calls.append(Call(statement, parameters_ or {}, "WRITE", "execute_query"))
        return FakeResult([])

    def session(self, *, database: str, default_access_mode: str, bookmark_manager: Any):
        opened = FakeSession(self, database, default_access_mode, bookmark_manager)
        self.sessions.append(opened)
        return opened

    def close(self) -> None:
        self.closed = True

    def statements(self, via: str | None = None) -> list[Call]:
        return [c for c in self.calls if via is None or c.via == via]


def make_store(driver: FakeDriver, batch_size: int = 3) -> Neo4jStore:
    settings = Settings(neo4j_uri="bolt://fake:7687", neo4j_database="kgdx")
    return Neo4jStore(settings, driver=driver, batch_size=batch_size)


def concepts(n: int) -> list[Concept]:
    # Deliberately out of order so sorting is observable.
    return [Concept(id=f"DOID:{i:03d}", name=f"disease {i}") for i in reversed(range(n))]


def every_statement() -> list[str]:
    """Every statement the Neo4j modules can send, with every schema name filled in."""
    from graph.schema import KG_RELATIONS, NODE_LABELS, relation_tables
    from graph.stores import neo4j_cypher as cypher
    from graph.stores import neo4j_export_cypher, neo4j_patients

    statements = list(cypher.schema_statements())
    for module in (cypher, neo4j_patients, neo4j_export_cypher):
        for name, value in vars(module).items():
            if name.startswith("_"):  # private templates and fragments, filled by the builders
                continue
            if isinstance(value, str) and re.search(r"\b(MATCH|UNWIND|MERGE|CREATE)\b", value):
                statements.append(value)
            elif isinstance(value, tuple) and value and all(isinstance(v, str) for v in value):
                statements.extend(v for v in value if "MATCH" in v)
    statements += [cypher.upsert_relations(t) for t in KG_RELATIONS]
    statements += [cypher.relation_page(t) for t in KG_RELATIONS]
    statements += [cypher.neighbours(d) for d in ("out", "in", "both")]
    statements += [cypher.shortest_paths(h) for h in range(1, 7)]
    statements += [cypher.count_label(label) for label in NODE_LABELS]
    statements += [cypher.count_type(t) for t in relation_tables()]
    statements += [cypher.delete_batch(label) for label in NODE_LABELS]
    statements += [neo4j_export_cypher.node_page(label) for label in NODE_LABELS]
    statements += [
        neo4j_export_cypher.relations_from(*spec) for spec in neo4j_export_cypher.relation_files()
    ]
    return statements
