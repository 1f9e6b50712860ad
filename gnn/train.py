"""One keyword-only ``train(...)`` for the diagnosis GNN, returning a result that saves itself.

Full-batch training on the patient graph (CPU is enough for cohorts of hundreds), model
selection on the validation split, temperature scaling on the validation split for calibrated
probabilities, and the OGB-style evaluator on every split.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from gnn.dataset import PatientLabels, candidate_diagnoses, patient_labels, stratified_split
from gnn.evaluate import Evaluator
from gnn.models import PatientDiseaseModel, build_model
from graph.errors import InputError, ModelError
from graph.records import Patient, SectionSelection
from graph.sections import ALL_SECTIONS, FEATURE_SECTIONS
from graph.subgraph import GraphVocabulary, PatientGraph

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class TrainResult:
    """A trained model with its configuration, vocabulary, splits and metrics.

    ``sections``: the report sections whose findings the model was trained on (the graph's
    :attr:`~graph.subgraph.PatientGraph.sections`); it must be applied with the same. Saved in
    ``config.json`` as ``input_sections``; a model saved before sections were kept read every
    section, and loads as :data:`graph.sections.ALL_SECTIONS`.
    """

    model: PatientDiseaseModel
    config: dict[str, Any]
    vocabulary: GraphVocabulary
    candidate_ids: list[str]
    temperature: float = 1.0
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    splits: dict[str, list[str]] = field(default_factory=dict)
    history: list[dict[str, float]] = field(default_factory=list)
    sections: SectionSelection = FEATURE_SECTIONS

    @property
    def model_id(self) -> str:
        return f"kgdx-{self.config['encoder']}-{self.config['seed']}"

    @torch.no_grad()
    def predict_proba(self, graph: PatientGraph) -> torch.Tensor:
        """Calibrated probabilities ``[num_patients, num_candidates]`` for a graph built with
        this result's vocabulary."""
        if graph.vocabulary.edge_types != self.vocabulary.edge_types:
            raise ModelError("graph was not built with this model's vocabulary")
        if graph.sections != self.sections:
            raise ModelError(
                f"graph holds findings of {graph.sections.describe()}, but the model was trained "
                f"on {self.sections.describe()}; build the graph with sections=result.sections"
            )
        self.model.eval()
        logits = self.model(graph.data.x_dict, graph.data.edge_index_dict)
        return torch.sigmoid(logits / self.temperature)

    def save(self, directory: str | Path) -> Path:
        """Write ``model.safetensors`` and ``config.json`` (config, vocabulary, metrics)."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().contiguous() for k, v in self.model.state_dict().items()}
        save_file(state, str(directory / WEIGHTS_FILE))
        payload = {
            "config": self.config,
            "vocabulary": self.vocabulary.to_json(),
            "candidate_ids": self.candidate_ids,
            "temperature": self.temperature,
            "metrics": self.metrics,
            "splits": self.splits,
            "input_sections": {
                **self.sections.model_dump(mode="json"),
                "description": self.sections.describe(),
            },
        }
        (directory / CONFIG_FILE).write_text(json.dumps(payload, indent=2))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> TrainResult:
        """Rebuild a saved result.

        Raises:
            ModelError: missing files or weights that do not fit the configuration.
        """
        from safetensors.torch import load_file

        directory = Path(directory)
        if not (directory / WEIGHTS_FILE).is_file() or not (directory / CONFIG_FILE).is_file():
            raise ModelError(f"{directory} holds no saved model; train one first")
        from safetensors import SafetensorError

        try:
            payload = json.loads((directory / CONFIG_FILE).read_text())
            config = payload["config"]
            model = _make_model(config)
            model.load_state_dict(load_file(str(directory / WEIGHTS_FILE)))
            return cls(
                model=model,
                config=config,
                vocabulary=GraphVocabulary.from_json(payload["vocabulary"]),
                candidate_ids=payload["candidate_ids"],
                temperature=payload["temperature"],
                metrics=payload["metrics"],
                splits=payload["splits"],
                sections=_saved_sections(payload),
            )
        except (OSError, ValueError, KeyError, TypeError, RuntimeError, SafetensorError) as exc:
            # a damaged config (bad JSON, missing key), truncated weights, or weights that do
            # not fit the config: say which folder and what to do, not a library traceback
            raise ModelError(
                f"the saved model in {directory} is damaged or does not fit its config "
                f"({type(exc).__name__}: {exc}); retrain it"
            ) from None


def _saved_sections(payload: dict[str, Any]) -> SectionSelection:
    """The input sections of a saved model; every section for one saved before they were kept."""
    saved = payload.get("input_sections")
    if saved is None:
        return ALL_SECTIONS
    return SectionSelection.model_validate({k: v for k, v in saved.items() if k != "description"})


@contextmanager
def cpu_threads(num_threads: int | None) -> Iterator[None]:
    """Run a block with ``num_threads`` torch CPU threads, restoring the previous count after.

    Small patient graphs run fastest on one thread; more oversubscribe a shared machine.
    """
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _make_model(config: dict[str, Any]) -> PatientDiseaseModel:
    node_types, edge_types = config["metadata"]
    model = build_model(
        config["encoder"],
        metadata=(list(node_types), [tuple(e) for e in edge_types]),
        num_nodes=config["num_nodes"],
        feature_dims=config["feature_dims"],
        candidate_index=config["candidate_index"],
        hidden=config["hidden"],
        num_layers=config["num_layers"],
        heads=config["heads"],
        dropout=config["dropout"],
    )
    # to_hetero's lazy SAGEConv((-1, -1)) needs one forward to create its weights.
    dummy_x = {
        nt: torch.zeros((n, config["feature_dims"][nt])) for nt, n in config["num_nodes"].items()
    }
    dummy_edges = {tuple(e): torch.zeros((2, 1), dtype=torch.long) for e in edge_types}
    with torch.no_grad():
        model(dummy_x, dummy_edges)
    return model


def _fit_temperature(logits: torch.Tensor, y: torch.Tensor) -> float:
    """Temperature that minimises validation BCE (Guo et al., ICML 2017)."""
    log_t = torch.zeros(1, requires_grad=True)
    optimiser = torch.optim.LBFGS([log_t], lr=0.1, max_iter=50)
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = loss_fn(logits / log_t.exp(), y)
        loss.backward()
        return loss

    optimiser.step(closure)
    return log_t.detach().exp().clamp(0.05, 20.0).item()


def train(
    *,
    graph: PatientGraph,
    patients: Sequence[Patient],
    model: str = "rgcn",
    hidden: int = 32,
    num_layers: int = 1,
    heads: int = 2,
    dropout: float = 0.5,
    epochs: int = 150,
    lr: float = 0.01,
    weight_decay: float = 1e-2,
    seed: int = 0,
    split: dict[str, torch.Tensor] | None = None,
    candidate_ids: list[str] | None = None,
    num_threads: int | None = 1,
) -> TrainResult:
    """Train a diagnosis GNN on ``graph`` with the labels of ``patients``.

    Args:
        graph: the patient graph (from :func:`graph.subgraph.build_patient_graph`).
        patients: the same patients, carrying their known ``labels``.
        model: registry name (``hgt``, ``rgcn``, ``sage``).
        num_layers: message-passing layers; one by default: on the 80-patient demo cohort one
            layer gave a higher held-out AUROC than two for all three models (bench/gnn_diagnosis.py;
            chosen on the same seeded splits the bench reports, so that comparison is optimistic).
        split: boolean masks ``train`` / ``val`` / ``test`` over the graph's patients; a seeded
            stratified 70/10/20 split when ``None``.
        candidate_ids: diseases to score; every disease label that is a KG disease when ``None``.
        num_threads: torch CPU threads while training (restored after); small graphs run
            fastest on one, and more threads oversubscribe a shared machine. ``None``: unchanged.

    Returns:
        A :class:`TrainResult` holding the best-validation model and metrics per split.

    Raises:
        InputError: no labelled training patients.
    """
    previous_threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train(
            graph,
            patients,
            model,
            hidden,
            num_layers,
            heads,
            dropout,
            epochs,
            lr,
            weight_decay,
            seed,
            split,
            candidate_ids,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    graph: PatientGraph,
    patients: Sequence[Patient],
    model: str,
    hidden: int,
    num_layers: int,
    heads: int,
    dropout: float,
    epochs: int,
    lr: float,
    weight_decay: float,
    seed: int,
    split: dict[str, torch.Tensor] | None,
    candidate_ids: list[str] | None,
) -> TrainResult:
    torch.manual_seed(seed)
    candidates = candidate_ids or candidate_diagnoses(patients, graph)
    labels: PatientLabels = patient_labels(patients, graph, candidates)
    masks = split or stratified_split(labels, seed=seed)
    if not bool(masks["train"].any()):
        raise InputError("no labelled patients in the training split")
    disease_ids = graph.vocabulary.concept_ids["disease"]
    data = graph.data
    config = {
        "encoder": model,
        "hidden": hidden,
        "num_layers": num_layers,
        "heads": heads,
        "dropout": dropout,
        "seed": seed,
        "epochs": epochs,
        "lr": lr,
        "weight_decay": weight_decay,
        "metadata": [list(data.metadata()[0]), [list(e) for e in data.metadata()[1]]],
        "num_nodes": {nt: int(data[nt].num_nodes) for nt in data.node_types},
        "feature_dims": {nt: int(data[nt].x.size(1)) for nt in data.node_types},
        "candidate_index": [disease_ids.index(c) for c in candidates],
    }
    net = _make_model(config)
    optimiser = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best_loss, best_state, history = float("inf"), None, []
    started = time.perf_counter()
    val_mask = masks["val"] if bool(masks["val"].any()) else masks["train"]
    for epoch in range(epochs):
        net.train()
        optimiser.zero_grad()
        logits = net(data.x_dict, data.edge_index_dict)
        loss = loss_fn(logits[masks["train"]], labels.y[masks["train"]])
        loss.backward()
        optimiser.step()
        net.eval()
        with torch.no_grad():
            val_logits = net(data.x_dict, data.edge_index_dict)[val_mask]
            val_loss = float(loss_fn(val_logits, labels.y[val_mask]))
        history.append({"epoch": epoch, "train_loss": loss.item(), "val_loss": val_loss})
        if val_loss < best_loss:
            best_loss = val_loss
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    net.eval()
    with torch.no_grad():
        logits = net(data.x_dict, data.edge_index_dict)
    temperature = _fit_temperature(logits[val_mask], labels.y[val_mask])
    probabilities = torch.sigmoid(logits / temperature)
    evaluator = Evaluator()
    metrics = {
        name: evaluator.eval(
            {"y_true": labels.y[mask].numpy(), "y_pred": probabilities[mask].numpy()}
        )
        for name, mask in masks.items()
        if bool(mask.any())
    }
    metrics["timing"] = {"train_seconds": time.perf_counter() - started, "epochs": epochs}
    splits = {
        name: [pid for pid, m in zip(graph.patient_ids, mask.tolist(), strict=True) if m]
        for name, mask in masks.items()
    }
    return TrainResult(
        model=net,
        config=config,
        vocabulary=graph.vocabulary,
        candidate_ids=candidates,
        temperature=temperature,
        metrics=metrics,
        splits=splits,
        history=history,
        sections=graph.sections,
    )
