"""A task: how to read a cohort folder into cases, the candidate set, seeded splits, metrics.

In the spirit of OGB (Hu et al., NeurIPS 2020): a task is data plus a standard evaluator, so
every model and baseline is measured the same way on the same split.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from graph.errors import InputError

SPLITS = ("patient", "disease")


@dataclass(frozen=True)
class Case:
    """One patient of a task: HPO findings present and absent, and the diagnosed diseases."""

    id: str
    observed: tuple[str, ...]
    excluded: tuple[str, ...]
    diseases: tuple[str, ...]


@dataclass(frozen=True)
class Split:
    """Case ids per part (``train`` / ``val`` / ``test``) of one seeded split."""

    kind: str
    seed: int
    train: tuple[str, ...]
    val: tuple[str, ...]
    test: tuple[str, ...]

    def parts(self) -> dict[str, tuple[str, ...]]:
        return {"train": self.train, "val": self.val, "test": self.test}


class Task(ABC):
    """A diagnosis task. Subclasses name it and read their cohort format."""

    name: str = ""

    @abstractmethod
    def read(self, directory: str | Path) -> list[Case]:
        """All cases of a cohort folder.

        Raises:
            InputError: the folder holds no cohort file, or a record is malformed (file, line).
        """

    def split(
        self,
        cases: list[Case],
        *,
        kind: str = "patient",
        seed: int = 0,
        fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    ) -> Split:
        """A seeded split of ``cases``.

        ``patient``: cases are shuffled within each disease and cut by ``fractions``, so test
        diseases are (mostly) seen in training. ``disease``: the *diseases* are cut, so no case
        of a test (or validation) disease is in training: zero-shot.

        Raises:
            InputError: unknown ``kind`` or fractions that do not sum to 1.
        """
        if kind not in SPLITS:
            raise InputError(f"unknown split {kind!r}; expected one of {SPLITS}")
        if abs(sum(fractions) - 1.0) > 1e-6 or min(fractions) < 0:
            raise InputError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
        rng = random.Random(f"{self.name}:{kind}:{seed}")
        by_disease: dict[str, list[str]] = {}
        for case in sorted(cases, key=lambda c: c.id):
            by_disease.setdefault(case.diseases[0], []).append(case.id)
        parts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
        if kind == "patient":
            for disease in sorted(by_disease):
                members = by_disease[disease]
                rng.shuffle(members)
                n_val = int(len(members) * fractions[1] + rng.random())
                n_test = int(len(members) * fractions[2] + rng.random())
                n_train = max(len(members) - n_val - n_test, 0)
                parts["train"] += members[:n_train]
                parts["val"] += members[n_train : n_train + n_val]
                parts["test"] += members[n_train + n_val :]
        else:
            diseases = sorted(by_disease)
            rng.shuffle(diseases)
            n_val = round(len(diseases) * fractions[1])
            n_test = round(len(diseases) * fractions[2])
            for i, disease in enumerate(diseases):
                part = "val" if i < n_val else "test" if i < n_val + n_test else "train"
                parts[part] += by_disease[disease]
        return Split(kind=kind, seed=seed, **{k: tuple(sorted(v)) for k, v in parts.items()})
