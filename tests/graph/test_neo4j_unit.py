"""Unit tests of the Neo4j backend's wiring against a recording fake driver (no server needed).

What is checked: constraints up front, ``UNWIND $rows`` batches sorted by key inside managed
write transactions, replay safety under the driver's retries, READ access mode and bookmarks,
the researcher path (timeout, row limit, parameters), and schema checks in query building.
"""

from __future__ import annotations

import re

import pytest
from neo4j import exceptions as neo4j_errors

from graph.errors import InputError, QueryError, SchemaError, StoreError
from graph.records import (
    Assertion,
    Concept,
    Diagnosis,
    ExplanationPath,
    Finding,
    Patient,
    Polarity,
    Relation,
    Report,
    TextSpan,
)
from graph.schema import NODE_LABELS
from graph.settings import Settings
from graph.stores import neo4j_cypher as cypher
from graph.stores.neo4j import Neo4jStore, batched_rows
from tests.graph.neo4j_fakes import FakeDriver


def make_store(driver: FakeDriver, batch_size: int = 3) -> Neo4jStore:
    settings = Settings(neo4j_uri="bolt://fake:7687", neo4j_database="kgdx")
    return Neo4jStore(settings, driver=driver, batch_size=batch_size)


def concepts(n: int) -> list[Concept]:
    # Deliberately out of order so sorting is observable.
    return [Concept(id=f"DOID:{i:03d}", name=f"disease {i}") for i in reversed(range(n))]


def test_constraints_and_indexes_created_on_connect() -> None:
    driver = FakeDriver()
    make_store(driver)
    setup = [c.statement for c in driver.statements("execute_query")]
    for label in NODE_LABELS:
        assert any(f"FOR (n:{label}) REQUIRE n.id IS UNIQUE" in s for s in setup), (
            f"no uniqueness constraint for {label}"
        )
    assert all("IF NOT EXISTS" in s for s in setup)
    assert any("ON (n.kind)" in s for s in setup)


def test_unreachable_server_raises_store_error_naming_the_setting() -> None:
    driver = FakeDriver(reachable=False)
    with pytest.raises(StoreError, match="KGDX_NEO4J_URI"):
        make_store(driver)


def test_driver_built_from_settings_with_retry_time(monkeypatch) -> None:
    import neo4j

    seen = {}

    def fake_driver(uri, **kwargs):
        seen.update(uri=uri, **kwargs)
        return FakeDriver()

    monkeypatch.setattr(neo4j.GraphDatabase, "driver", fake_driver)
    settings = Settings(neo4j_uri="neo4j://db:7687", neo4j_user="u", neo4j_password="p")
    Neo4jStore(settings, retry_time_s=12.5)
    assert seen == {
        "uri": "neo4j://db:7687",
        "auth": ("u", "p"),
        "max_transaction_retry_time": 12.5,
    }


def test_batched_rows_sorts_by_key_and_cuts_batches() -> None:
    rows = [{"id": x} for x in ["c", "a", "e", "b", "d"]]
    batches = batched_rows(rows, ("id",), 2)
    assert [[r["id"] for r in b] for b in batches] == [["a", "b"], ["c", "d"], ["e"]]
    with pytest.raises(ValueError):
        batched_rows(rows, ("id",), 0)


def test_concepts_written_in_sorted_unwind_batches_in_one_write_transaction() -> None:
    driver = FakeDriver()
    store = make_store(driver, batch_size=3)
    assert store.upsert_concepts(concepts(7)) == 7
    writes = driver.statements("execute_write")
    assert [len(c.params["rows"]) for c in writes] == [3, 3, 1]
    ids = [row["id"] for c in writes for row in c.params["rows"]]
    assert ids == sorted(ids) and len(ids) == 7
    assert all(c.statement == cypher.UPSERT_CONCEPTS for c in writes)
    assert all(c.access_mode == "WRITE" for c in writes)
    assert "UNWIND $rows" in cypher.UPSERT_CONCEPTS and "MERGE (c:Concept {id: row.id})" in (
        cypher.UPSERT_CONCEPTS
    )
    # One store batch is one transaction: a single write session for all three UNWINDs.
    assert sum(1 for s in driver.sessions if s.access_mode == "WRITE") == 1
    # Values are parameters, never text in the statement.
    assert not any("DOID:" in c.statement for c in driver.calls)


def test_relations_grouped_by_schema_type_and_sorted_by_endpoints() -> None:
    driver = FakeDriver()
    store = make_store(driver, batch_size=10)
    relations = [
        Relation(src="DOID:2", dst="HP:1", type="HAS_PHENOTYPE", weight=0.5),
        Relation(src="DOID:1", dst="DOID:0", type="IS_A"),
        Relation(
            src="DOID:1", dst="HP:1", type="HAS_PHENOTYPE", attributes={"frequency": "HP:0040283"}
        ),
    ]
    store.upsert_relations(relations)
    writes = driver.statements("execute_write")
    assert [re.search(r"MERGE \(a\)-\[r:(\w+)\]->\(b\)", c.statement).group(1) for c in writes] == [
        "HAS_PHENOTYPE",
        "IS_A",
    ]
    phenotype_rows = writes[0].params["rows"]
    assert [(r["src"], r["dst"]) for r in phenotype_rows] == [
        ("DOID:1", "HP:1"),
        ("DOID:2", "HP:1"),
    ]
    assert phenotype_rows[0]["attributes"] == '{"frequency": "HP:0040283"}'
    # The missing-endpoint check ran first, as a read.
    assert driver.calls[len(driver.statements("execute_query"))].access_mode == "READ"


def test_missing_endpoint_stops_before_any_write() -> None:
    def responder(statement, params):
        if statement == cypher.MISSING_CONCEPTS:
            return [{"id": "DOID:404"}]
        return []

    driver = FakeDriver(responder=responder)
    store = make_store(driver)
    from graph.errors import UnknownConceptError

    with pytest.raises(UnknownConceptError, match="DOID:404"):
        store.upsert_relations([Relation(src="DOID:1", dst="DOID:404", type="IS_A")])
    assert driver.statements("execute_write") == []


def patient() -> Patient:
    text = "No pleural effusion. Cardiomegaly."
    return Patient(
        id="P1",
        reports=(Report(id="r1", text=text),),
        findings=(
            Finding(
                concept_id="UMLS:C0032227",
                assertion=Assertion(polarity=Polarity.ABSENT),
                provenance=TextSpan(doc_id="r1", start=3, end=19, text="pleural effusion"),
            ),
            Finding(
                concept_id="UMLS:C0018800",
                provenance=TextSpan(doc_id="r1", start=21, end=33, text="Cardiomegaly"),
            ),
        ),
        labels=("DOID:6000",),
    )


def test_patient_write_is_one_transaction_and_safe_to_replay() -> None:
    driver = FakeDriver(transient_failures=1)
    store = make_store(driver)
    store.upsert_patient(patient())
    attempts = {}
    for call in driver.statements("execute_write"):
        attempts.setdefault(call.attempt, []).append((call.statement, call.params))
    assert set(attempts) == {1, 2}
    assert attempts[1] == attempts[2], "a retried transaction must send the same statements"
    statements = [s for s, _ in attempts[2]]
    assert statements[0].startswith(
        "MATCH (:Patient {id: $pid})-[:HAS_REPORT]"
    )  # old parts go first
    mentions = next(p for s, p in attempts[2] if "MENTIONS" in s and "CREATE" in s)
    # Sorted by (doc, concept, start) whatever the order of the findings in the record.
    assert [r["concept"] for r in mentions["rows"]] == ["UMLS:C0018800", "UMLS:C0032227"]
    assert {r["doc"] for r in mentions["rows"]} == {"P1/r1"}
    findings = next(p for s, p in attempts[2] if "HAS_FINDING {" in s)
    assert {(r["concept"], r["polarity"]) for r in findings["rows"]} == {
        ("UMLS:C0018800", "present"),
        ("UMLS:C0032227", "absent"),
    }


def test_predictions_replace_per_model_and_link_path_concepts() -> None:
    driver = FakeDriver()
    store = make_store(driver)

    def responder(statement, params):
        if "RETURN p.attributes" in statement:
            return [{"attributes": "{}"}]
        return []

    driver.responder = responder
    path = ExplanationPath(
        nodes=("P1", "UMLS:C0018800", "DOID:6000"),
        relations=("HAS_FINDING", "FINDING_OF"),
        score=0.7,
    )
    store.save_predictions(
        "P1",
        [
            Diagnosis(
                concept_id="DOID:6000",
                name="heart failure",
                probability=0.8,
                paths=(path,),
                model_id="hgt",
            )
        ],
    )
    writes = driver.statements("execute_write")
    assert "DETACH DELETE" in writes[0].statement and writes[0].params["models"] == ["hgt"]
    steps = writes[-1].params["rows"]
    assert [(s["concept"], s["step"]) for s in steps] == [("UMLS:C0018800", 1), ("DOID:6000", 2)]
    assert writes[1].params["rows"][0]["id"] == "P1/hgt/DOID:6000"


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
        code="Neo.ClientError.Statement.SyntaxError", message="Invalid input 'RETRUN'"
    )
    with pytest.raises(QueryError, match="SyntaxError"):
        store.query("MATCH (n) RETRUN n")


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
    rel = {"sources": ["DO"], "weight": 1.0, "negated": False, "attributes": ""}

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


def every_statement() -> list[str]:
    """Every statement the Neo4j modules can send, with every schema name filled in."""
    from graph.schema import KG_RELATIONS, relation_tables
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
