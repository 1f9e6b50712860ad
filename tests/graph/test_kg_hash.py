"""The KG content hash: the same from the embedded store and from the records, blind to order and
to patients, changed by any concept change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from graph.kg_hash import concept_table_hash, concepts_hash, kg_content_hash, read_concept_table
from graph.kg_tables import concept_table
from graph.records import Patient, Report
from kg_loaders.seed import read_seed_concepts

ROOT = Path(__file__).resolve().parents[2]
SEED = read_seed_concepts()


def test_the_store_and_its_records_hash_alike_and_patients_do_not_count(store) -> None:
    store.upsert_concepts(SEED)
    stored = kg_content_hash(store)
    assert stored == concepts_hash(SEED) == concepts_hash(reversed(SEED))
    assert stored == concept_table_hash(concept_table(list(reversed(SEED))))
    table = read_concept_table(store)
    assert table.column("id").to_pylist() == sorted(c.id for c in SEED)
    store.upsert_patient(Patient(id="P1", reports=(Report(id="R1", text="No effusion."),)))
    assert kg_content_hash(store) == stored


def test_every_concept_field_changes_the_hash(store) -> None:
    base = concepts_hash(SEED)
    first = SEED[0]
    changes = {
        "name": {"name": first.name + " x"},
        "kind": {"kind": "symptom" if first.kind != "symptom" else "finding"},
        "synonyms": {"synonyms": (*first.synonyms, "another name")},
        "xrefs": {"xrefs": (*first.xrefs, "MESH:D000001")},
        "sources": {"sources": ("SEED:2099-01-01",)},
    }
    hashes = {base}
    for update in changes.values():
        hashes.add(concepts_hash([first.model_copy(update=update), *SEED[1:]]))
    # a synonym moved from one list into another is another KG
    hashes.add(concepts_hash([first.model_copy(update={"synonyms": (), "xrefs": ()}), *SEED[1:]]))
    assert len(hashes) == len(changes) + 2
    store.upsert_concepts(SEED)
    store.upsert_concepts([first.model_copy(update=changes["synonyms"])])
    assert kg_content_hash(store) == concepts_hash(
        [first.model_copy(update=changes["synonyms"]), *SEED[1:]]
    )


def test_hashing_a_store_does_not_import_pandas(settings) -> None:
    from graph.stores import open_store

    with open_store("embedded", settings=settings) as store:
        store.upsert_concepts(SEED)
        expected = kg_content_hash(store)
    script = (
        "import sys\n"
        "from graph.settings import Settings\n"
        "from graph.stores import open_store\n"
        "from graph.kg_hash import kg_content_hash\n"
        f"s = Settings(home={str(settings.home)!r}, db_path={str(settings.db_path)!r})\n"
        "with open_store(settings=s) as store:\n"
        "    print(kg_content_hash(store), 'pandas' in sys.modules)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [expected, "False"]
