"""Diagnosis reasoning over the knowledge graph: tasks, models, the inductive reasoner.

- :mod:`gnn.tasks`: tasks as data plus a standard evaluator (``phenopackets``);
- :mod:`gnn.models`: the KG-scored diagnosis model and its encoders, chosen by name;
- :mod:`gnn.reasoning`: the phenotype KG view (rare or chest domain), similarity, training of
  kgdx's model and the baselines (``train_reasoner``), run folders, diagnoses with KG paths.

Usage (through :class:`api.engine.Engine`, which reads patients from the store)::

    from api.engine import Engine
    engine = Engine()
    result = engine.train(domain="chest", save_to="run")
    diagnoses = engine.diagnose("P007")
"""

from __future__ import annotations
