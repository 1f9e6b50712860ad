"""The rare-disease part of ``kgdx demo``: real Phenopacket Store cases ranked over every KG disease.

It builds the default KG (HPO + annotations, DO, SYMP, chest seed) into its own folder
``<home>/demo-rare/`` (never your ``kg.lbug``), trains kgdx's model and the baselines there with
:meth:`~gnn.reasoning.pipeline.TrainConfig.quick` on every ``every``-th case of the training part
of the seeded patient split of ``../shared/data/phenopackets`` (about 25 s on an idle 2-core
machine for ``every=2``), saves the run to ``<home>/demo-rare/run``, and diagnoses the first
``cases`` cases of the split's *test* part (cases never trained on), printing for each its top
diagnoses with calibrated probabilities and KG paths, and where the reported diagnosis ranks
under kgdx and the Phenomizer baseline.

The model is trained in the demo rather than shipped: a run's ``memory.json`` holds the
training cases' terms (cohort data), which must not enter the repository. When the cases (or
HPO) are not installed, the part says so and is skipped; the demo goes on.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

PHENOPACKETS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "phenopackets"
FOLDER = "demo-rare"


def run_rare_demo(
    console: Console,
    *,
    home: Path,
    data: Path | None = None,
    cases: int = 2,
    every: int = 2,
    seed: int = 0,
    top: int = 3,
    paths: int = 2,
) -> dict | None:
    """Build the default KG, train a quick model on real cases, diagnose held-out ones.

    Args:
        console: where to print.
        home: kgdx's home; the part writes ``home/demo-rare/`` only (replaced each run).
        data: the cohort folder (default: ``../shared/data/phenopackets``).
        cases: held-out cases to diagnose and explain.
        every: train on every ``every``-th case of the training part (1: all of it, ~45 s).
        seed: seed of the split and of training.
        top: diagnoses shown per case; ``paths``: paths per diagnosis.

    Returns:
        What was shown (``train_seconds``, ``total_seconds``, ``cases``: id, reported disease,
        kgdx and Phenomizer rank, diagnoses), or ``None`` when skipped.
    """
    from graph.errors import ConfigError

    started = time.perf_counter()
    data = PHENOPACKETS if data is None else data
    console.rule("[bold]rare diseases: Phenopacket Store cases, every OMIM disease of the KG")
    if not any(data.glob("*.jsonl")):
        console.print(
            f"[yellow]skipped:[/yellow] no Phenopacket Store cases at {data} "
            "(../shared/data is not installed here)"
        )
        return None
    import numpy as np

    from api.commands.demo import program_name
    from gnn.reasoning.explain_paths import diagnose
    from gnn.reasoning.knowledge import PhenotypeKG
    from gnn.reasoning.pipeline import TrainConfig, resolve_cases
    from gnn.reasoning.run import save_run
    from gnn.reasoning.training import train_reasoner
    from gnn.tasks import get_task, ranks_of
    from graph.settings import Settings
    from graph.stores import open_store
    from kg_loaders.build import build_kg

    folder = home / FOLDER
    settings = Settings(home=folder, db_path=folder / "kg.lbug", store="embedded")
    try:
        with console.status("building the default KG (HPO, annotations, DO, SYMP, seed)"):
            built = build_kg(sources=["default"], settings=settings)
    except ConfigError as exc:  # HPO not installed
        console.print(f"[yellow]skipped:[/yellow] the default KG cannot be built here: {exc}")
        return None
    with open_store(settings=settings, read_only=True) as store:
        kg = PhenotypeKG.from_store(store)
    console.print(
        f"default KG: [bold]{built.concepts:,}[/bold] concepts, {built.relations:,} relations "
        f"in {built.seconds:.0f}s -> {settings.db_path}; "
        f"[bold]{kg.num_diseases:,}[/bold] candidate diseases"
    )

    task = get_task("phenopackets")
    all_cases = task.read(data)
    split = task.split(all_cases, kind="patient", seed=seed)
    by_id = {c.id: c for c in all_cases}
    train = [by_id[i] for i in split.train[::every]]
    val = [by_id[i] for i in split.val[::every]]
    config = TrainConfig.quick(seed=seed)
    with console.status(f"training kgdx's model (quick) on {len(train):,} real cases"):
        reasoner, report = train_reasoner(kg=kg, train_cases=train, val_cases=val, config=config)
    run = save_run(
        reasoner,
        folder / "run",
        task=task.name,
        report=report,
        split={"kind": "patient", "seed": seed, "every": every, "train": [c.id for c in train]},
    )
    train_seconds = report["timings"]["total_s"]
    console.print(
        f"trained in [bold]{train_seconds:.0f}s[/bold] on {len(train):,} of "
        f"{len(all_cases):,} cases (+{report['counts']['simulated']} simulated from the KG; "
        f"validation MRR {max(h['val_mrr'] for h in report['history']):.3f} on {len(val)}); "
        f"run saved to {run}"
    )

    shown = []
    test = [by_id[i] for i in split.test]
    resolved, _ = resolve_cases(kg, test)
    held_out = [(c, p) for c, p in zip(test, resolved, strict=True) if p.disease >= 0][:cases]
    for case, patient in held_out:
        result = diagnose(reasoner, list(case.observed), list(case.excluded), top=top, paths=paths)
        right = np.array([patient.disease])
        ranks = {
            method: int(ranks_of(right, reasoner.scores(method, patient)[None, :])[0])
            for method in ("kgdx", "phenomizer")
        }
        _print_case(console, case, kg.disease_names[patient.disease], ranks, result)
        shown.append({"id": case.id, "disease": case.diseases[0], "ranks": ranks, **result})
    db = settings.db_path
    console.print("diagnose a patient of your own with this model and KG:")
    console.print(
        f"KGDX_HOME={folder} KGDX_DB_PATH={db} {program_name()} diagnose --model {run} "
        "--observed HP:0001250,HP:0001263 --excluded HP:0000252",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return {
        "train_seconds": train_seconds,
        "total_seconds": time.perf_counter() - started,
        "cases": shown,
        "run": str(run),
    }


def _print_case(console: Console, case, disease_name: str, ranks: dict, result: dict) -> None:
    from rich.panel import Panel
    from rich.text import Text

    body = Text()
    body.append(
        f"{len(case.observed)} observed, {len(case.excluded)} excluded HPO findings; "
        f"reported diagnosis: {case.diseases[0]} {disease_name}\n",
        style="dim",
    )
    body.append(
        f"its rank among all candidates: kgdx {ranks['kgdx']:,}, "
        f"Phenomizer baseline {ranks['phenomizer']:,}\n"
    )
    for note in result["notes"]:
        body.append(f"note: {note}\n", style="yellow")
    for rank, d in enumerate(result["diagnoses"], 1):
        mark = "✓" if d["id"] in case.diseases else " "
        body.append(f"{rank}. {d['id']} {d['name']}  ", style="bold")
        body.append(f"p={d['probability']:.3f} {mark}\n")
        for path in d["paths"]:
            body.append(f"   {path['text']}\n", style="cyan")
    body.rstrip()
    console.print(Panel(body, title=f"case {case.id} (held out)", title_align="left"))
