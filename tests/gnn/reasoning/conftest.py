"""The phenotype KG of HPO + its annotations from ../shared/data, built once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def hpo_home(shared_data, tmp_path_factory):
    """A real embedded store built from the shared HPO files (``hp.obo`` + annotations)."""
    from graph.settings import Settings
    from kg_loaders.build import build_kg

    home = tmp_path_factory.mktemp("hpo_kg")
    settings = Settings(home=home, db_path=home / "kg.lbug")
    hpo = shared_data / "kg" / "hpo"
    build_kg(sources=[f"hpo={hpo / 'hp.obo'}", f"hpoa={hpo / 'phenotype.hpoa'}"], settings=settings)
    return settings


@pytest.fixture(scope="session")
def hpo_kg(hpo_home):
    """The :class:`PhenotypeKG` read from that store."""
    from gnn.reasoning.knowledge import PhenotypeKG
    from graph.stores import open_store

    store = open_store(settings=hpo_home, read_only=True)
    try:
        yield PhenotypeKG.from_store(store, obsolete=None)
    finally:
        store.close()


@pytest.fixture(scope="session")
def similarity(hpo_kg):
    from gnn.reasoning.similarity import Similarity

    return Similarity(hpo_kg)


@pytest.fixture(scope="session")
def cases(shared_data):
    from gnn.tasks import get_task

    return get_task("phenopackets").read(shared_data / "phenopackets")


@pytest.fixture(scope="session")
def small_run(hpo_kg, cases):
    """A quick kgdx run on a small slice of the patient split."""
    from gnn.reasoning.pipeline import TrainConfig
    from gnn.reasoning.training import train_reasoner
    from gnn.tasks import get_task

    split = get_task("phenopackets").split(cases, kind="patient", seed=0)
    by_id = {c.id: c for c in cases}
    train = [by_id[i] for i in split.train[::10]]
    val = [by_id[i] for i in split.val[::10]]
    config = TrainConfig.quick(epochs=2)
    reasoner, report = train_reasoner(kg=hpo_kg, train_cases=train, val_cases=val, config=config)
    return reasoner, report, split
