"""A trained run folder: kgdx's model, the baselines, the case memory and a model card.

``card.json`` pins the KG the run was trained on (its sources with releases, the store's KG
content hash and a hash of the arrays read from it); :func:`load_run` refuses another KG unless
forced, because term and disease indices would no longer line up.

Files: ``card.json``, ``kgdx.safetensors``, ``no_kg.safetensors``, ``prior.safetensors`` (the
seen-disease prior, card version 2 on), ``memory.json`` (HPO ids and disease of each training
case: the kNN baseline's and the memory feature's state).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import torch

from gnn.reasoning.knowledge import PhenotypeKG
from gnn.reasoning.memory import CaseMemory
from gnn.reasoning.pipeline import Reasoner, TrainConfig
from gnn.reasoning.similarity import Similarity
from graph.errors import ModelError

CARD = "card.json"
# 2: kgdx takes the seen-disease prior as evidence (prior.safetensors); 3: kgdx's weights hold
# the case-memory weight fitted on validation (KGDiagnosisModel.memory_weight)
CARD_VERSION = 3


def save_run(
    reasoner: Reasoner, directory: str | Path, *, task: str, report: dict, split: dict
) -> Path:
    """Write the run folder (created when missing)."""
    from safetensors.torch import save_file

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name, model in _models(reasoner):
        state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
        save_file(state, str(directory / f"{name}.safetensors"))
    kg = reasoner.kg
    memory = {
        "observed": [[kg.term_ids[t] for t in o] for o in reasoner.memory.observed],
        "diseases": [kg.disease_ids[d] for d in reasoner.memory.diseases.tolist()],
    }
    (directory / "memory.json").write_text(json.dumps(memory))
    card = {
        "card_version": CARD_VERSION,
        "task": task,
        "model_id": f"kgdx-{reasoner.config.model}-{reasoner.config.seed}",
        "methods": {
            "kgdx": f"KG-scored diagnosis model, {reasoner.config.model} encoder",
            "phenomizer": "one-way Resnik best-match average (kgdx's implementation)",
            "no_kg": "free term/disease embeddings, training cases only",
            "knn": "best IC-weighted cosine to a disease's training cases",
        },
        "kg": {
            "sources": kg.sources,
            "content_hash": kg.content_hash,
            "fingerprint": kg.fingerprint(),
            "terms": kg.num_terms,
            "candidates": kg.num_diseases,
        },
        "config": asdict(reasoner.config),
        "temperature": reasoner.temperature,
        "split": split,
        "report": report,
    }
    (directory / CARD).write_text(json.dumps(card, indent=2))
    return directory


def read_card(directory: str | Path) -> dict:
    """The model card of a run folder.

    Raises:
        ModelError: the folder holds no run.
    """
    path = Path(directory) / CARD
    if not path.is_file():
        raise ModelError(f"{directory} holds no trained run ({CARD}); train one with `kgdx train`")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise ModelError(f"{path} is damaged ({exc}); retrain the run") from None


def check_kg(card: dict, kg: PhenotypeKG, *, force: bool = False) -> None:
    """Refuse a KG other than the one the run was trained on.

    Raises:
        ModelError: the content hash or the arrays differ and ``force`` is not set.
    """
    pinned = card["kg"]
    if force or (
        pinned["content_hash"] == kg.content_hash and pinned["fingerprint"] == kg.fingerprint()
    ):
        return
    raise ModelError(
        f"the run was trained on another KG release (sources {', '.join(pinned['sources'])}; "
        f"content hash {pinned['content_hash'][:12]}, this KG's {kg.content_hash[:12]}); "
        "rebuild that KG, retrain with `kgdx train`, or pass --force"
    )


def load_run(
    directory: str | Path, kg: PhenotypeKG, *, force: bool = False
) -> tuple[Reasoner, dict]:
    """Rebuild a saved run against ``kg``.

    Raises:
        ModelError: no run, a run of another KG (without ``force``), or damaged weights.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    card = read_card(directory)
    version = card.get("card_version")
    if version != CARD_VERSION:
        raise ModelError(
            f"the run in {directory} has model card version {version}; this kgdx reads version "
            f"{CARD_VERSION} (kgdx's model changed: it now holds a case-memory weight fitted on "
            "validation); "
            "retrain it with `kgdx train`"
        )
    check_kg(card, kg, force=force)
    try:
        config = TrainConfig(**card["config"])
        memory_json = json.loads((directory / "memory.json").read_text())
        sim = Similarity(kg)
        term_of = {t: i for i, t in enumerate(kg.term_ids)}
        disease_of = {d: i for i, d in enumerate(kg.disease_ids)}
        observed = [[term_of[t] for t in o if t in term_of] for o in memory_json["observed"]]
        diseases = [disease_of[d] for d in memory_json["diseases"]]
        reasoner = Reasoner(kg, sim, CaseMemory(sim, observed, diseases), config)
        with torch.no_grad():
            for name, model in _models(reasoner):
                model.load_state_dict(load_file(str(directory / f"{name}.safetensors")))
        reasoner.temperature = float(card["temperature"])
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ModelError(
            f"the run in {directory} is damaged or does not fit this KG ({type(exc).__name__}: "
            f"{exc}); retrain it with `kgdx train`"
        ) from None
    return reasoner, card


def _models(reasoner: Reasoner):
    return (("kgdx", reasoner.model), ("no_kg", reasoner.no_kg), ("prior", reasoner.prior))
