"""Fixtures of the REST tests that need a trained reasoner."""

from __future__ import annotations

import pytest

from api.engine import Engine
from data.cohort import load_cohort
from graph.settings import Settings


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Settings whose home holds the seed KG, the 80 demo patients and a saved run."""
    import torch

    from gnn.reasoning.patients import chest_config

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("rest-engine")
    settings = Settings(home=folder, db_path=folder / "kg.lbug")
    cases = load_cohort()
    with Engine(store="embedded", settings=settings) as engine:
        engine.build_seed_kg()
        # the generator's gold findings: the extractor has its own tests, and this keeps it fast
        engine.ingest(
            [c.patient.model_copy(update={"findings": c.gold_findings}) for c in cases],
            extract=False,
        )
        config = chest_config(engine.knowledge("chest").num_diseases, epochs=8, joint_epochs=2)
        result = engine.train(config=config, seed=0, save_to=settings.resolved_model_dir)
    return settings, result, {c.patient.id: c for c in cases}
