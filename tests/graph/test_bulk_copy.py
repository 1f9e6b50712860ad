"""``GraphStore.copy_concepts`` / ``copy_relations``: the bulk path of a fresh KG build.

Run on the real embedded LadybugDB store, from Arrow tables and from Parquet files, and on the
Neo4j backend (recording driver), which has no bulk path and upserts the same tables.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from graph.errors import InputError, StoreError, UnknownConceptError
from graph.kg_tables import (
    concept_table,
    read_tables,
    relation_schema,
    relation_table,
    table_concepts,
    table_relations,
)
from graph.records import Concept, Relation
from tests.graph.neo4j_fakes import FakeDriver, make_store

CONCEPTS = [
    Concept(id="HP:0001640", name="Cardiomegaly", kind="finding", xrefs=("UMLS:C0018800",)),
    Concept(id="HP:0002202", name="Pleural effusion", kind="finding", synonyms=("effusion",)),
    Concept(id="OMIM:115200", name="Cardiomyopathy, dilated, 1A", kind="disease"),
]
RELATIONS = [
    Relation(
        src="OMIM:115200",
        dst="HP:0001640",
        type="HAS_PHENOTYPE",
        sources=("HPO:2025-01-16",),
        weight=0.895,
        attributes={"evidence": "TAS;PCS", "reference": 'say "hi" \\ there'},
    ),
    Relation(src="OMIM:115200", dst="HP:0002202", type="HAS_PHENOTYPE", negated=True),
]


def test_tables_round_trip_records():
    assert list(table_concepts(concept_table(CONCEPTS))) == CONCEPTS
    assert (
        list(table_relations("HAS_PHENOTYPE", relation_table("HAS_PHENOTYPE", RELATIONS)))
        == RELATIONS
    )
    # HAS_FINDING shares its table with patient findings: their columns are there, null.
    table = relation_table("HAS_FINDING", [RELATIONS[0].model_copy(update={"type": "HAS_FINDING"})])
    assert table.schema == relation_schema("HAS_FINDING") and table["polarity"].null_count == 1


@pytest.mark.parametrize("as_parquet", [False, True], ids=["arrow", "parquet"])
def test_embedded_copy_loads_tables_and_files(store, tmp_path, as_parquet):
    concepts, relations = concept_table(CONCEPTS), relation_table("HAS_PHENOTYPE", RELATIONS)
    if as_parquet:
        pq.write_table(concepts, tmp_path / "c.parquet")
        pq.write_table(relations, tmp_path / "it's.parquet")  # a quote in the path
        concepts, relations = tmp_path / "c.parquet", tmp_path / "it's.parquet"
    assert store.copy_concepts(concepts) == 3
    assert store.copy_relations("HAS_PHENOTYPE", relations) == 2
    assert store.get_concept("HP:0002202") == CONCEPTS[1]
    stored = {(r.src, r.dst): r for r in store.iter_relations(types=["HAS_PHENOTYPE"])}
    assert stored == {(r.src, r.dst): r for r in RELATIONS}


def test_copy_to_an_unknown_concept_writes_nothing(store):
    store.copy_concepts(concept_table(CONCEPTS))
    bad = RELATIONS + [Relation(src="OMIM:115200", dst="HP:9999999", type="HAS_PHENOTYPE")]
    with pytest.raises(UnknownConceptError, match="HP:9999999"):
        store.copy_relations("HAS_PHENOTYPE", relation_table("HAS_PHENOTYPE", bad))
    assert store.counts().total_relations == 0
    with pytest.raises(StoreError, match="duplicated primary key"):
        store.copy_concepts(concept_table(CONCEPTS[:1] + [Concept(id="HP:1", name="new")]))
    assert store.counts().nodes["Concept"] == 3  # the new one did not land either


def test_copy_rejects_bad_tables(store, tmp_path):
    good = relation_table("HAS_PHENOTYPE", RELATIONS)
    with pytest.raises(InputError, match="not a KG relation type"):
        store.copy_relations("HAS_REPORT", good)
    with pytest.raises(InputError, match="do not match the bulk layout"):
        store.copy_relations("HAS_FINDING", good)  # lacks the patient-finding columns
    with pytest.raises(InputError, match="not a CURIE"):
        store.copy_relations("HAS_PHENOTYPE", good.set_column(0, "from", pa.array(["bad id", "x"])))
    concepts = concept_table(CONCEPTS)
    with pytest.raises(InputError, match="unknown concept kind 'organ'"):
        store.copy_concepts(concepts.set_column(2, "kind", pa.array(["organ"] * 3)))
    (tmp_path / "junk.parquet").write_text("not parquet")
    with pytest.raises(InputError, match="not a readable Parquet file"):
        store.copy_concepts(tmp_path / "junk.parquet")
    assert store.counts().total_nodes == 0


def test_neo4j_copy_upserts_in_batches():
    driver = FakeDriver()
    neo4j = make_store(driver, batch_size=2)
    neo4j.copy_relations("HAS_PHENOTYPE", relation_table("HAS_PHENOTYPE", RELATIONS * 3))
    merges = [c for c in driver.calls if "MERGE" in c.statement and "HAS_PHENOTYPE" in c.statement]
    rows = [row for call in merges for row in call.params["rows"]]
    assert len(rows) == 2  # the batch's duplicates collapse by (src, type, dst)
    assert {row["dst"] for row in rows} == {"HP:0001640", "HP:0002202"}


def test_read_tables_splits_tables_and_files(tmp_path):
    table = concept_table(CONCEPTS)
    assert [t.num_rows for t in read_tables(table, batch_size=2)] == [2, 1]
    pq.write_table(table, tmp_path / "c.parquet")
    assert sum(t.num_rows for t in read_tables(tmp_path / "c.parquet", batch_size=2)) == 3


def test_a_copy_that_stores_other_than_the_rows_given_fails_loudly(store, monkeypatch):
    from graph.stores.embedded import EmbeddedStore

    store.copy_concepts(concept_table(CONCEPTS))
    real = EmbeddedStore._copy

    def lossy(self, table, rows, options=""):  # a COPY that silently drops a row
        real(self, table, rows.slice(1) if isinstance(rows, pa.Table) else rows, options)

    monkeypatch.setattr(EmbeddedStore, "_copy", lossy)
    relations = relation_table("HAS_PHENOTYPE", RELATIONS)
    with pytest.raises(StoreError, match=rf"{relations.num_rows} rows given, .* stored"):
        store.copy_relations("HAS_PHENOTYPE", relations)
