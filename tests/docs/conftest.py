"""A store with the curated seed KG and a few patients, for running the researchers' guide."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

GUIDE_PATIENTS = (
    Path(__file__).resolve().parent.parent / "fixtures" / "cypher" / "guide_patients.json"
)


def load_guide_graph(store) -> list[str]:
    """Load the seed KG and the guide's patients with their predictions; returns patient ids."""
    from graph.records import Diagnosis, Patient
    from kg_loaders.seed import read_seed_concepts, read_seed_relations

    store.upsert_concepts(read_seed_concepts())
    store.upsert_relations(read_seed_relations())
    ids = []
    for item in json.loads(GUIDE_PATIENTS.read_text(encoding="utf-8")):
        patient = Patient.model_validate(item["patient"])
        store.upsert_patient(patient)
        store.save_predictions(
            patient.id, [Diagnosis.model_validate(d) for d in item["predictions"]]
        )
        ids.append(patient.id)
    return ids


@pytest.fixture(scope="module")
def guide_store(tmp_path_factory) -> Iterator:
    from graph.settings import Settings
    from graph.stores import open_store

    folder = tmp_path_factory.mktemp("guide")
    settings = Settings(home=folder, db_path=folder / "guide.lbug")
    with open_store("embedded", settings=settings) as store:
        load_guide_graph(store)
        yield store
