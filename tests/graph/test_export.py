"""Neo4j exports: ``neo4j-admin`` CSV files from a real embedded store, and the online copy.

The CSV tests read the files back the way ``neo4j-admin database import`` does: typed headers,
one id space per label, every relationship endpoint present in its node file, and row counts
equal to ``store.counts()``. The online copy writes into a :class:`Neo4jStore` over the
recording fake driver (no server here; see ``neo4j_fakes``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from graph.errors import InputError
from graph.neo4j_export import copy_to_neo4j, stored_predictions, write_neo4j_import
from graph.records import Concept
from graph.schema import KG_RELATIONS, NODE_PROPERTIES, PATIENT_RELATIONS
from graph.settings import Settings
from graph.stores import neo4j_cypher, neo4j_patients
from graph.stores.neo4j import Neo4jStore
from kg_loaders.seed import read_seed_concepts
from tests.docs.conftest import GUIDE_PATIENTS, load_guide_graph
from tests.graph.neo4j_fakes import FakeDriver

TYPES = {"STRING[]": "string[]", "DOUBLE": "double", "INT64": "long", "BOOLEAN": "boolean"}


@pytest.fixture()
def loaded(store):
    load_guide_graph(store)
    return store


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    return rows[0], rows[1:]


def test_import_files_have_typed_headers_intact_ids_and_store_counts(loaded, tmp_path) -> None:
    manifest = write_neo4j_import(loaded, tmp_path / "import", page_size=4)
    counts = loaded.counts()
    assert manifest.counts().nodes == counts.nodes
    assert manifest.counts().relations == counts.relations
    ids: dict[str, set[str]] = {}
    for label, props in NODE_PROPERTIES.items():
        header, rows = read_csv(tmp_path / "import" / f"nodes_{label}.csv")
        expected = [f"id:ID({label})"]
        expected += [f"{n}:{TYPES[k]}" if k in TYPES else n for n, k in props[1:]]
        assert header == expected + [":LABEL"]
        ids[label] = {row[0] for row in rows}
        assert len(ids[label]) == len(rows) == counts.nodes[label], f"duplicate ids in {label}"
        assert {row[-1] for row in rows} <= {label}
    relation_files = sorted((tmp_path / "import").glob("relationships_*.csv"))
    assert len(relation_files) == len(KG_RELATIONS) + len(PATIENT_RELATIONS)
    for path in relation_files:
        header, rows = read_csv(path)
        src = header[0].removeprefix(":START_ID(").rstrip(")")
        dst = header[1].removeprefix(":END_ID(").rstrip(")")
        assert header[-1] == ":TYPE"
        for row in rows:
            assert row[0] in ids[src], f"{path.name}: start {row[0]} is not a {src} node"
            assert row[1] in ids[dst], f"{path.name}: end {row[1]} is not a {dst} node"
    script = (tmp_path / "import" / "neo4j-admin-import.sh").read_text()
    assert (
        "neo4j-admin database import full" in script
        and "--nodes=Concept=nodes_Concept.csv" in script
    )
    assert not list((tmp_path / "import").glob(".partial-*"))


def test_import_values_read_back_to_the_stored_records(loaded, tmp_path) -> None:
    write_neo4j_import(loaded, tmp_path, array_delimiter=";")
    header, rows = read_csv(tmp_path / "nodes_Concept.csv")
    row = dict(zip(header, next(r for r in rows if r[0] == "UMLS:C0032227"), strict=True))
    stored = loaded.get_concept("UMLS:C0032227")
    assert tuple(row["synonyms:string[]"].split(";")) == stored.synonyms
    assert row["kind"] == "finding"
    header, rows = read_csv(tmp_path / "relationships_HAS_FINDING_Patient_Concept.csv")
    findings = [dict(zip(header, r, strict=True)) for r in rows]
    absent = [
        f for f in findings if f[":START_ID(Patient)"] == "P001" and f["polarity"] == "absent"
    ]
    assert [f[":END_ID(Concept)"] for f in absent] == ["UMLS:C0032227"]
    header, rows = read_csv(tmp_path / "relationships_IS_A_Concept_Concept.csv")
    assert {dict(zip(header, r, strict=True))["negated:boolean"] for r in rows} == {"false"}


def test_array_delimiter_inside_a_value_fails_without_leaving_files(store, tmp_path) -> None:
    store.upsert_concepts([Concept(id="DOID:1", name="x", synonyms=("a|b",))])
    with pytest.raises(InputError, match="array delimiter"):
        write_neo4j_import(store, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_refuses_a_folder_that_already_holds_an_import(loaded, tmp_path) -> None:
    write_neo4j_import(loaded, tmp_path)
    with pytest.raises(InputError, match="already holds"):
        write_neo4j_import(loaded, tmp_path)


def test_stored_predictions_read_back_as_diagnoses(loaded) -> None:
    diagnoses = stored_predictions(loaded, "P001")
    assert [(d.concept_id, d.probability) for d in diagnoses] == [
        ("UMLS:C0018802", 0.86),
        ("UMLS:C0032285", 0.08),
    ]
    assert diagnoses[0].paths[0].nodes == ("P001", "UMLS:C0018800", "UMLS:C0018802")


def test_online_copy_writes_everything_in_batches(loaded) -> None:
    def responder(statement, params):
        if statement == neo4j_patients.GET_PATIENT:
            return [{"attributes": "{}"}]
        if "RETURN count(" in statement:
            return [{"n": 0}]
        return []

    driver = FakeDriver(responder=responder)
    target = Neo4jStore(Settings(neo4j_uri="bolt://fake:7687"), driver=driver, batch_size=25)
    copy_to_neo4j(loaded, target, batch_size=50)
    writes = driver.statements("execute_write")
    concept_batches = [
        c.params["rows"] for c in writes if c.statement == neo4j_cypher.UPSERT_CONCEPTS
    ]
    assert (
        sum(map(len, concept_batches)) == len(read_seed_concepts())
        and max(map(len, concept_batches)) <= 25
    )
    counts = loaded.counts().relations
    patient_findings = loaded.query("MATCH (:Patient)-[r:HAS_FINDING]->(:Concept) RETURN count(r)")
    for rel_type in KG_RELATIONS:
        statement = neo4j_cypher.upsert_relations(rel_type)
        sent = sum(len(c.params["rows"]) for c in writes if c.statement == statement)
        kg_only = counts[rel_type] - (
            patient_findings.rows[0][0] if rel_type == "HAS_FINDING" else 0
        )
        assert sent == kg_only, rel_type
    patients = [c.params["pid"] for c in writes if c.statement == neo4j_patients.MERGE_PATIENT]
    assert patients == ["P001", "P002", "P003", "P004", "P005"]
    predictions = [c for c in writes if c.statement == neo4j_patients.CREATE_PREDICTIONS]
    assert sum(len(c.params["rows"]) for c in predictions) == loaded.counts().nodes["Prediction"]
    assert GUIDE_PATIENTS.is_file()


def test_row_path_of_other_backends_writes_the_same_files(loaded, tmp_path) -> None:
    """A store without LadybugDB's Arrow hand-over (Neo4j) goes through ``store.query`` rows."""
    from graph.stores.embedded import EmbeddedStore

    write_neo4j_import(loaded, tmp_path / "arrow", page_size=3)
    rows_only = object.__new__(type("RowsOnlyStore", (EmbeddedStore,), {"name": "rows-only"}))
    rows_only.__dict__.update(loaded.__dict__)
    calls = []
    rows_only.query = lambda *args, **kwargs: calls.append(args) or loaded.query(*args, **kwargs)
    write_neo4j_import(rows_only, tmp_path / "rows", page_size=3)
    assert len(calls) > 20  # every page went through the read-only query path
    arrow_files = sorted(p.name for p in (tmp_path / "arrow").iterdir())
    assert arrow_files == sorted(p.name for p in (tmp_path / "rows").iterdir())
    for name in arrow_files:
        assert (tmp_path / "arrow" / name).read_bytes() == (tmp_path / "rows" / name).read_bytes()
