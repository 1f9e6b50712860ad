"""Unit tests of the Neo4j backend's read side against a recording fake driver (no server).

What is checked: READ access mode and bookmarks, paging, the researcher path (timeout, row limit,
parameters, writes refused), schema checks in query building, values only as parameters, and
conversion of driver values.
"""

from __future__ import annotations

import re

import pytest
from neo4j import exceptions as neo4j_errors

from graph.errors import InputError, QueryError, SchemaError, StoreError
from graph.schema import NODE_LABELS
from graph.stores import neo4j_cypher as cypher
from tests.graph.neo4j_fakes import FakeDriver, concepts, every_statement, make_store


def test_reads_use_read_mode_and_share_the_bookmark_manager() -> None:
    driver = FakeDriver()
    store = make_store(driver)
    store.upsert_concepts(concepts(2))
    store.get_concepts(["DOID:001"])
    modes = [s.access_mode for s in driver.sessions]
    assert modes == ["WRITE", "READ"]
    assert len({id(s.bookmark_manager) for s in driver.sessions}) == 1
    assert all(s.database == "kgdx" for s in driver.sessions)


def test_iter_concepts_pages_by_id_cursor() -> None:
    ids = [f"DOID:{i}" for i in range(5)]

    def responder(statement, params):
        page = [i for i in ids if i > params["after"]][: params["batch"]]
        return [
            {"id": i, "name": i, "kind": "disease", "synonyms": [], "xrefs": [], "sources": []}
            for i in page
        ]

    driver = FakeDriver(responder=responder)
    store = make_store(driver)
    assert [c.id for c in store.iter_concepts(batch_size=2)] == ids
    assert [c.params["after"] for c in driver.statements("execute_read")] == [
        "",
        "DOID:1",
        "DOID:3",
    ]


def test_researcher_query_runs_read_only_with_timeout_limit_and_params() -> None:
    rows = [{"id": f"P{i}", "n": i} for i in range(5)]
    driver = FakeDriver(responder=lambda statement, params: rows)
    store = make_store(driver)
    result = store.query(
        "MATCH (p:Patient) WHERE p.id <> $x RETURN p.id AS id, 1 AS n",
        {"x": "P9"},
        timeout_s=2.5,
        row_limit=3,
    )
    call = driver.statements("run")[-1]
    assert call.access_mode == "READ" and call.timeout == 2.5 and call.params == {"x": "P9"}
    assert result.columns == ("id", "n") and len(result.rows) == 3 and result.truncated


def test_writes_never_reach_the_server_on_the_query_path() -> None:
    driver = FakeDriver()
    store = make_store(driver)
    with pytest.raises(QueryError, match="CREATE"):
        store.query("CREATE (n:Patient {id: 'x'})")
    assert driver.statements("run") == []


def test_server_errors_on_the_query_path_become_query_errors() -> None:
    driver = FakeDriver()
    store = make_store(driver)
    driver.fail_with = neo4j_errors.CypherSyntaxError._hydrate_neo4j(
        code="Neo.ClientError.Statement.SyntaxError", message="Invalid input 'size2'"
    )
    with pytest.raises(QueryError, match="SyntaxError"):
        # passes kgdx's read-only grammar (a misspelt keyword would not), fails on the server
        store.query("MATCH (n) RETURN n.size2")


def test_query_builders_take_names_only_from_the_schema() -> None:
    with pytest.raises(SchemaError):
        cypher.upsert_relations("IS_A]->() DETACH DELETE (x")
    with pytest.raises(InputError):
        cypher.upsert_relations("HAS_REPORT")  # a patient relation, not a KG one
    with pytest.raises(SchemaError):
        cypher.count_label("Concept) DETACH DELETE (n")
    with pytest.raises(InputError):
        cypher.shortest_paths(7)
    with pytest.raises(InputError):
        cypher.neighbours("sideways")
    assert "*1..3]" in cypher.shortest_paths(3)


def test_paths_rows_become_steps_with_directions() -> None:
    node = {"name": "n", "kind": "finding", "synonyms": [], "xrefs": [], "sources": []}
    rel = {"sources": '["DO:2024"]', "weight": 1.0, "negated": False, "attributes": ""}

    def responder(statement, params):
        if statement == cypher.GET_CONCEPTS:
            return [{"id": i, **node} for i in params["ids"]]
        if "allShortestPaths" in statement:
            return [
                {
                    "nodes": [
                        {"id": "HP:1", **node},
                        {"id": "DOID:1", **node},
                        {"id": "DOID:0", **node},
                    ],
                    "rels": [
                        {"src": "DOID:1", "dst": "HP:1", "type": "HAS_PHENOTYPE", **rel},
                        {"src": "DOID:1", "dst": "DOID:0", "type": "IS_A", **rel},
                    ],
                }
            ]
        return []

    store = make_store(FakeDriver(responder=responder))
    (path,) = store.paths("HP:1", "DOID:0", max_hops=2)
    assert [(s.concept.id, s.direction, s.relation.type) for s in path] == [
        ("DOID:1", "in", "HAS_PHENOTYPE"),
        ("DOID:0", "out", "IS_A"),
    ]
    assert all(s.relation.sources == ("DO:2024",) for s in path)  # JSON text decoded


def test_close_leaves_an_injected_driver_open() -> None:
    driver = FakeDriver()
    store = make_store(driver)
    store.close()
    assert not driver.closed
    with pytest.raises(StoreError, match="closed"):
        store.get_concepts(["DOID:1"])


def test_clear_deletes_every_label_in_bounded_batches() -> None:
    remaining = {label: 5 for label in NODE_LABELS}

    def responder(statement, params):
        label = re.search(r"MATCH \(n:(\w+)\) WITH n LIMIT", statement)
        if not label:
            return []
        gone = min(params["batch"], remaining[label.group(1)])
        remaining[label.group(1)] -= gone
        return [{"deleted": gone}]

    driver = FakeDriver(responder=responder)
    store = make_store(driver, batch_size=2)
    store.clear()
    assert set(remaining.values()) == {0}
    deletes = [c for c in driver.statements("execute_write") if "DETACH DELETE" in c.statement]
    # 5 nodes in batches of 2: 2, 2, 1, then an empty batch that ends the loop, per label.
    assert len(deletes) == 4 * len(NODE_LABELS)


def test_values_only_ever_travel_as_parameters() -> None:
    statements = every_statement()
    assert len(statements) > 60
    for statement in statements:
        # The only literals allowed are the fixed direction names of the neighbours query.
        literals = set(re.findall(r"'[^']*'|\"[^\"]*\"", statement)) - {"'out'", "'in'"}
        assert not literals, f"literal value in: {statement}"
        # No template placeholder left unfilled ({label}, {}, %s).
        assert not re.search(r"\{\w*\}|%s", statement), f"unfilled placeholder in: {statement}"


def test_driver_graph_values_become_plain_json() -> None:
    """Nodes, relationships and paths as the driver hydrates them, turned into plain dicts."""
    import json

    from neo4j.graph import Graph, Node, Path
    from neo4j.time import Date

    from graph.stores.neo4j_values import plain_value

    graph = Graph()
    disease = Node(graph, "4:db:1", 1, {"Concept"}, {"id": "UMLS:C0018802", "name": "chf"})
    finding = Node(graph, "4:db:2", 2, {"Concept"}, {"id": "UMLS:C0018800", "synonyms": ["big"]})
    edge = graph.relationship_type("HAS_FINDING")(graph, "5:db:7", 7, {"weight": 0.5})
    edge._start_node, edge._end_node = disease, finding  # as the driver's hydration does
    assert plain_value(finding) == {"_label": "Concept", "id": "UMLS:C0018800", "synonyms": ["big"]}
    assert plain_value(edge) == {
        "_label": "HAS_FINDING",
        "_src": "UMLS:C0018802",
        "_dst": "UMLS:C0018800",
        "weight": 0.5,
    }
    walked = plain_value(Path(finding, edge))
    assert [n["id"] for n in walked["nodes"]] == ["UMLS:C0018800", "UMLS:C0018802"]
    nested = plain_value({"when": Date(2024, 3, 2), "items": (disease,)})
    assert nested == {
        "when": "2024-03-02",
        "items": [{"_label": "Concept", "id": "UMLS:C0018802", "name": "chf"}],
    }
    json.dumps(walked)
