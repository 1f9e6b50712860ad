"""Shared, session-scoped inputs: the seed KG, the demo cohort with its gold findings, and an
embedded store holding both (the chest domain of the reasoner)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def seed_kg():
    from kg_loaders.seed import read_seed_concepts, read_seed_relations

    concepts = read_seed_concepts()
    return concepts, read_seed_relations(concepts=concepts)


@pytest.fixture(scope="session")
def cohort_patients():
    """Cohort patients carrying the generator's gold findings (no text extractor needed)."""
    from data.cohort import load_cohort

    return [c.patient.model_copy(update={"findings": c.gold_findings}) for c in load_cohort()]


@pytest.fixture(scope="session")
def chest_store(tmp_path_factory, seed_kg, cohort_patients):
    """A real embedded store with the seed KG and the 80 cohort patients (read it, never write)."""
    from graph.settings import Settings
    from graph.stores import open_store

    folder = tmp_path_factory.mktemp("chest")
    settings = Settings(home=folder, db_path=folder / "kg.lbug")
    store = open_store("embedded", settings=settings)
    concepts, relations = seed_kg
    store.upsert_concepts(concepts)
    store.upsert_relations(relations)
    for patient in cohort_patients:
        store.upsert_patient(patient)
    yield store
    store.close()


@pytest.fixture(scope="session")
def chest_kg(chest_store):
    from gnn.reasoning.knowledge import PhenotypeKG

    return PhenotypeKG.from_store(chest_store, domain="chest")


@pytest.fixture(scope="session")
def chest_run(chest_store, chest_kg):
    """The reasoner trained on the stored cohort with small settings (a few seconds)."""
    from gnn.reasoning.patients import chest_config, train_on_subgraphs
    from graph.subgraph import patient_subgraph

    subgraphs = [patient_subgraph(chest_store, pid) for pid in chest_store.patient_ids()]
    config = chest_config(chest_kg.num_diseases, epochs=8, joint_epochs=2, no_kg_epochs=10)
    return train_on_subgraphs(subgraphs, kg=chest_kg, config=config, seed=0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These graphs are tiny: one thread is fastest and does not oversubscribe shared CPUs."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
