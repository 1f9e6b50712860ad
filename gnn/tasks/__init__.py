"""Diagnosis tasks (data + candidates + splits + a standard evaluator), chosen by name."""

from __future__ import annotations

from gnn.tasks.base import SPLITS, Case, Split, Task
from gnn.tasks.evaluator import RankingEvaluator, ranks_of, summarise
from gnn.tasks.phenopackets import PhenopacketsTask
from graph.errors import ConfigError

TASKS: dict[str, type[Task]] = {"phenopackets": PhenopacketsTask}


def get_task(name: str | Task) -> Task:
    """A task by name (``phenopackets``) or an instance passed through.

    Raises:
        ConfigError: an unknown name.
    """
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ConfigError(f"unknown task {name!r}; expected one of {sorted(TASKS)}")
    return TASKS[name]()


__all__ = [
    "SPLITS",
    "TASKS",
    "Case",
    "PhenopacketsTask",
    "RankingEvaluator",
    "Split",
    "Task",
    "get_task",
    "ranks_of",
    "summarise",
]
