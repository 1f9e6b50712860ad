"""Shared, session-scoped GNN inputs: the demo cohort with its gold findings over the seed KG."""

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
def cohort_graph(seed_kg, cohort_patients):
    from graph.subgraph import build_patient_graph

    concepts, relations = seed_kg
    return build_patient_graph(cohort_patients, concepts, relations)


@pytest.fixture(scope="session")
def trained(cohort_graph, cohort_patients):
    from gnn.train import train

    return train(graph=cohort_graph, patients=cohort_patients, model="rgcn", epochs=120, seed=0)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """These graphs are tiny: one thread is fastest and does not oversubscribe shared CPUs."""
    from gnn.train import cpu_threads

    with cpu_threads(1):
        yield
