"""The reasoner on a store's patients: cases from patient subgraphs, a seeded split, training and
evaluation against the baselines, and a run folder that :class:`api.engine.Engine` and the REST
service load.

A run folder is the one :func:`gnn.reasoning.run.save_run` writes (``card.json``, the weights,
``memory.json``) plus ``config.json``: the engine's part (KG domain, report sections read, model
id), written **last**, so a server that watches it (``api.routers.deps.ModelSlot``) never loads a
half-written run. A folder of ``kgdx train`` (no ``config.json``) loads too, as the rare domain.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gnn.reasoning.knowledge import DOMAINS, PhenotypeKG
from gnn.reasoning.pipeline import (
    METHODS,
    Reasoner,
    TrainConfig,
    evaluate_methods,
    resolve_cases,
)
from gnn.reasoning.training import train_reasoner
from gnn.tasks import Case, Task
from graph.errors import ConfigError, InputError, ModelError
from graph.records import SectionSelection
from graph.sections import FEATURE_SECTIONS
from graph.subgraph import PatientSubgraph, TermIndex, batch

if TYPE_CHECKING:
    from graph.store import GraphStore

ENGINE_FILE = "config.json"
ENGINE_VERSION = 1
FRACTIONS = (0.6, 0.2, 0.2)  # train / validation (epoch, temperature) / held-out test


class StoredPatientsTask(Task):
    """The split of :class:`~gnn.tasks.Task` over stored patients (they are read from the store,
    not from a cohort folder)."""

    name = "stored"

    def read(self, directory):  # pragma: no cover - stored patients are not read from files
        raise InputError("stored patients are read from the graph store, not from a folder")


def chest_config(num_candidates: int, **overrides) -> TrainConfig:
    """Training settings for a small KG such as the chest seed (~20 candidates): more epochs of
    small batches (the whole run takes seconds), negatives capped by the candidate count, ten
    simulated patients per candidate."""
    hard = min(16, max((num_candidates - 1) // 2, 1))
    settings = dict(
        epochs=30,
        batch_size=32,
        joint_epochs=10,
        joint_batch_size=64,
        hard_negatives=hard,
        random_negatives=max(min(16, num_candidates - 1 - hard), 0),
        simulated_per_disease=10,
        max_simulated=None,
        no_kg_epochs=60,
        threads=1,
    )
    return TrainConfig(**{**settings, **overrides})


def fit_config(config: TrainConfig, num_candidates: int) -> TrainConfig:
    """``config`` with its negatives capped so that they fit ``num_candidates``."""
    hard = min(config.hard_negatives, max((num_candidates - 1) // 2, 1))
    rand = max(min(config.random_negatives, num_candidates - 1 - hard), 0)
    if (hard, rand) == (config.hard_negatives, config.random_negatives):
        return config
    return replace(config, hard_negatives=hard, random_negatives=rand)


def infer_domain(labels: Sequence[str]) -> str:
    """``rare`` when the patients' known diagnoses are OMIM ids, else ``chest``."""
    return "rare" if any(label.startswith("OMIM:") for label in labels) else "chest"


def disease_code(kg: PhenotypeKG, label: str) -> str | None:
    """The id under which ``kg`` knows a diagnosis label (OMIM id, node id or xref)."""
    if label in kg.omim_index:
        return label
    try:
        return kg.disease_omim[kg.disease_ids.index(label)][0]
    except ValueError:
        return None


def case_of(subgraph: PatientSubgraph, kg: PhenotypeKG, index: TermIndex) -> Case:
    """A task case of one subgraph: its scored findings as ids the KG's lookup resolves."""
    rows = batch([subgraph], index)
    codes = lambda terms: tuple(index.code(t) for t in terms)  # noqa: E731
    diseases = tuple(c for c in (disease_code(kg, label) for label in subgraph.labels) if c)
    return Case(
        id=subgraph.patient_id,
        observed=codes(rows.scored("observed")[0]),
        excluded=codes(rows.scored("excluded")[0]),
        diseases=diseases,
    )


@dataclass
class ReasoningRun:
    """A trained (or loaded) reasoner with what the engine needs to apply it.

    Attributes:
        reasoner: the trained state (KG view, similarity, case memory, models).
        card: the run's model card (``card.json``).
        domain: the KG domain (``rare`` / ``chest``).
        sections: which report sections' findings are the model's input.
        model_id: the id predictions are stored under.
        splits: patient ids per part (``train`` / ``val`` / ``test``; empty when loaded from a
            ``kgdx train`` run).
        evaluation: per part (``val``, ``test``), per method (kgdx and the baselines), the
            evaluator's ``{overall, seen, unseen}`` metrics.

    ``metrics`` flattens ``evaluation`` to overall figures, ``{"test": kgdx's,
    "phenomizer_test": ..., "knn_test": ..., "no_kg_test": ...}`` (what ``GET /model`` shows),
    and ``config`` is the training settings with ``encoder`` naming the GNN.
    """

    reasoner: Reasoner
    card: dict
    domain: str
    sections: SectionSelection = FEATURE_SECTIONS
    model_id: str = ""
    splits: dict[str, list[str]] = field(default_factory=dict)
    evaluation: dict[str, dict] = field(default_factory=dict)
    directory: Path | None = None

    def __post_init__(self) -> None:
        self.index = TermIndex.from_kg(self.reasoner.kg)
        self._labels = None

    @property
    def metrics(self) -> dict[str, dict[str, float]]:
        """Overall figures per part: kgdx's under the part's name, a baseline's under
        ``<method>_<part>``."""
        out: dict[str, dict[str, float]] = {}
        for part, methods in self.evaluation.items():
            for method, figures in methods.items():
                key = part if method == "kgdx" else f"{method}_{part}"
                out[key] = {k: float(v) for k, v in figures["overall"].items()}
        return out

    @property
    def config(self) -> dict:
        """The training settings, ``encoder`` naming the KG encoder."""
        from dataclasses import asdict

        return {"encoder": self.reasoner.config.model, **asdict(self.reasoner.config)}

    def knows(self, concept_id: str) -> bool:
        """Whether ``concept_id`` names a term of the reasoner's KG (by id, xref or obsolete id)."""
        return self.index.index(concept_id) is not None

    @property
    def candidate_ids(self) -> list[str]:
        """Store node ids of the candidate diseases."""
        return list(self.reasoner.kg.disease_ids)

    @property
    def labels(self):
        """The path labels of the reasoner's terms (made once)."""
        if self._labels is None:
            from gnn.reasoning.diagnoses import PathLabels

            self._labels = PathLabels(self.reasoner)
        return self._labels

    def engine_config(self) -> dict:
        return {
            "engine_version": ENGINE_VERSION,
            "domain": self.domain,
            "model_id": self.model_id,
            "sections": self.sections.model_dump(mode="json"),
            "scored": {"observed": ["has_finding_present"], "excluded": ["has_finding_absent"]},
        }

    def save(self, directory: str | Path) -> Path:
        """Write the run folder: :func:`~gnn.reasoning.run.save_run`, then ``config.json``."""
        from gnn.reasoning.run import save_run

        directory = Path(directory)
        engine_file = directory / ENGINE_FILE
        if engine_file.exists():
            engine_file.unlink()  # a watcher must not load old settings over new weights
        report = dict(self.card.get("report", {}))
        report["engine"] = self.engine_config()
        report["evaluation"] = self.evaluation
        save_run(
            self.reasoner,
            directory,
            task=f"engine-{self.domain}",
            report=report,
            split=self.card.get("split", {}),
        )
        engine_file.write_text(json.dumps(self.engine_config(), indent=2))
        self.directory = directory
        return directory

    @classmethod
    def load(
        cls,
        directory: str | Path,
        store: GraphStore,
        *,
        force: bool = False,
        kg_cache: dict[str, PhenotypeKG] | None = None,
    ) -> ReasoningRun:
        """Load a run folder (this engine's or ``kgdx train``'s) against the store's KG.

        Raises:
            ModelError: no run in ``directory``, a damaged one, or one trained on another KG.
        """
        from gnn.reasoning.run import load_run, read_card

        directory = Path(directory)
        card = read_card(directory)
        engine = _read_engine_file(directory)
        domain = engine.get("domain") or _domain_of_task(card.get("task", ""))
        if domain not in DOMAINS:
            raise ModelError(f"{directory}: unknown KG domain {domain!r}; retrain the run")
        kg = (kg_cache or {}).get(domain)
        if kg is None:
            kg = PhenotypeKG.from_store(store, domain=domain)
            if kg_cache is not None:
                kg_cache[domain] = kg
        reasoner, card = load_run(directory, kg, force=force)
        sections = (
            SectionSelection.model_validate(engine["sections"])
            if engine.get("sections")
            else FEATURE_SECTIONS
        )
        report = card.get("report", {})
        return cls(
            reasoner=reasoner,
            card=card,
            domain=domain,
            sections=sections,
            model_id=engine.get("model_id") or card.get("model_id", "kgdx"),
            splits={k: list(v) for k, v in card.get("split", {}).get("ids", {}).items()},
            evaluation=report.get("evaluation", {}),
            directory=directory,
        )


def _domain_of_task(task: str) -> str:
    return "chest" if "chest" in task else "rare"


def _read_engine_file(directory: Path) -> dict:
    path = directory / ENGINE_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError as exc:
        raise ModelError(f"{path} is damaged ({exc}); retrain the run") from None
    return data if isinstance(data, dict) and "engine_version" in data else {}


def train_on_subgraphs(
    subgraphs: Sequence[PatientSubgraph],
    *,
    kg: PhenotypeKG,
    config: TrainConfig | None = None,
    sections: SectionSelection = FEATURE_SECTIONS,
    seed: int = 0,
    fractions: tuple[float, float, float] = FRACTIONS,
    progress: Callable[[str, int, int], None] | None = None,
) -> ReasoningRun:
    """Train kgdx's reasoner and the baselines on patient subgraphs; evaluate every method on
    the held-out part.

    Patients whose known diagnoses are not candidates of ``kg`` (or that have no scored
    finding) are left out of training and evaluation; they can still be diagnosed.

    Args:
        subgraphs: the patients (:func:`graph.subgraph.patient_subgraph`), with labels.
        kg: the KG view (:meth:`PhenotypeKG.from_store` with the patients' domain).
        config: training settings; :func:`chest_config` for the chest domain,
            :class:`TrainConfig` otherwise, when ``None``. Negatives are capped to fit the
            candidates.
        seed: split and training seed (overrides ``config.seed``).
        fractions: train / validation / test shares, per diagnosis (``Task.split``).

    Raises:
        InputError: no patient has a scored finding and a candidate diagnosis.
    """
    index = TermIndex.from_kg(kg)
    cases = [case_of(s, kg, index) for s in subgraphs]
    usable = [c for c in cases if c.diseases and (c.observed or c.excluded)]
    if not usable:
        raise InputError(
            "no stored patient has a present or absent finding of the KG and a known diagnosis "
            f"that is a candidate of the {kg.domain} KG ({kg.num_diseases} candidates); "
            "ingest labelled patients first"
        )
    if config is None:
        config = chest_config(kg.num_diseases) if kg.domain == "chest" else TrainConfig()
    config = fit_config(replace(config, seed=seed), kg.num_diseases)
    split = StoredPatientsTask().split(usable, kind="patient", seed=seed, fractions=fractions)
    by_id = {c.id: c for c in usable}
    parts = {name: [by_id[i] for i in ids] for name, ids in split.parts().items()}
    if not parts["val"]:  # tiny cohorts: select on the training cases rather than on nothing
        parts["val"] = list(parts["train"])
    reasoner, report = train_reasoner(
        kg=kg, train_cases=parts["train"], val_cases=parts["val"], config=config, progress=progress
    )
    evaluation = evaluate_parts(reasoner, parts)
    splits = {name: [c.id for c in members] for name, members in parts.items()}
    card = {"report": report, "split": {"kind": "patient", "seed": seed, "ids": splits}}
    return ReasoningRun(
        reasoner=reasoner,
        card=card,
        domain=kg.domain,
        sections=sections,
        model_id=f"kgdx-{kg.domain}-{config.model}-{seed}",
        splits=splits,
        evaluation=evaluation,
    )


def evaluate_parts(
    reasoner: Reasoner, parts: dict[str, list[Case]], methods: Sequence[str] = METHODS
) -> dict[str, dict]:
    """Every method's metrics on the ``val`` and ``test`` parts (seen = a diagnosis of a
    training case)."""
    kg = reasoner.kg
    train, _ = resolve_cases(kg, parts.get("train", []))
    seen_diseases = {p.disease for p in train if p.disease >= 0}
    out: dict[str, dict] = {}
    for name in ("val", "test"):
        patients, _ = resolve_cases(kg, parts.get(name, []))
        patients = [p for p in patients if p.disease >= 0 and (p.observed or p.excluded)]
        if not patients:
            continue
        seen = np.array([p.disease in seen_diseases for p in patients])
        out[name] = evaluate_methods(reasoner, patients, seen=seen, methods=methods)
    return out


def check_domain(domain: str | None, labels: Sequence[str]) -> str:
    """The KG domain to train with: ``domain`` checked, or inferred from the labels.

    Raises:
        ConfigError: an unknown domain.
    """
    if domain is None:
        return infer_domain(labels)
    if domain not in DOMAINS:
        raise ConfigError(f"unknown KG domain {domain!r}; expected one of {DOMAINS}")
    return domain


def resolved_patients(run: ReasoningRun, subgraphs: Sequence[PatientSubgraph]):
    """The reasoner's patients (term and candidate indices) of labelled subgraphs, those with a
    scored finding and a candidate diagnosis only (for evaluation and fidelity)."""
    kg = run.reasoner.kg
    cases = [case_of(s, kg, run.index) for s in subgraphs]
    patients, _ = resolve_cases(kg, cases)
    return [p for p in patients if p.disease >= 0 and (p.observed or p.excluded)]
