"""``kgdx train`` and ``kgdx eval diagnosis`` (and, from :mod:`api.commands.diagnose`, ``kgdx
diagnose`` and ``kgdx explain``): the reasoning engine.

The KG is read from the configured store (built by ``kgdx kg build --sources default``), read-only.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer


def _kg():
    from api.commands.table import console
    from gnn.reasoning.knowledge import PhenotypeKG
    from graph.settings import get_settings
    from graph.stores import open_store

    settings = get_settings()
    with console().status("reading the KG from the store"):
        store = open_store(settings=settings, read_only=True)
        try:
            return PhenotypeKG.from_store(store)
        finally:
            store.close()


def _progress_bar():
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        disable=not sys.stderr.isatty(),
    )


def train_command(
    data: Annotated[Path, typer.Option(help="Cohort folder (*.jsonl, one case a line)")],
    out: Annotated[Path, typer.Option(help="Run folder to write (models + model card)")],
    task: Annotated[str, typer.Option(help="Task name")] = "phenopackets",
    model: Annotated[
        str, typer.Option(help="KG encoder of kgdx's model: hgt, rgcn, sage")
    ] = "sage",
    split: Annotated[
        str, typer.Option(help="Hold out a test part: 'patient', 'disease' (zero-shot) or 'none'")
    ] = "none",
    seed: Annotated[int, typer.Option(help="Seed of the split, the simulation and the models")] = 0,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1, help="Scorer epochs (default 12, best validation epoch kept; 1 with --quick)"
        ),
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="Small, fast training: TrainConfig.quick() (tests, demos)")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Overwrite a run folder trained on another KG")
    ] = False,
) -> None:
    """Train kgdx's model and every baseline on one split; save them with a model card."""
    from gnn.reasoning.pipeline import TrainConfig, evaluate_methods, resolve_cases
    from gnn.reasoning.run import check_kg, read_card, save_run
    from gnn.reasoning.training import train_reasoner
    from gnn.tasks import get_task
    from graph.errors import InputError

    task_ = get_task(task)
    cases = task_.read(data)
    kg = _kg()
    if (out / "card.json").is_file():
        check_kg(read_card(out), kg, force=force)
    if split == "none":
        parts = task_.split(cases, kind="patient", seed=seed, fractions=(0.9, 0.1, 0.0))
    elif split in ("patient", "disease"):
        parts = task_.split(cases, kind=split, seed=seed)
    else:
        raise InputError(f"unknown --split {split!r}; expected patient, disease or none")
    by_id = {c.id: c for c in cases}
    settings = {"model": model, "seed": seed, **({"epochs": epochs} if epochs else {})}
    config = TrainConfig.quick(**settings) if quick else TrainConfig(**settings)
    typer.echo(
        f"{len(cases)} cases: {len(parts.train)} train, {len(parts.val)} validation, "
        f"{len(parts.test)} test ({split} split); {kg.num_diseases} candidate diseases"
    )
    with _progress_bar() as bar:
        ids: dict[str, int] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in ids:
                ids[stage] = bar.add_task(stage, total=total)
            bar.update(ids[stage], completed=done)

        started = time.perf_counter()
        reasoner, report = train_reasoner(
            kg=kg,
            train_cases=[by_id[i] for i in parts.train],
            val_cases=[by_id[i] for i in parts.val],
            config=config,
            progress=progress,
        )
        report["train_seconds"] = time.perf_counter() - started
        if parts.test:
            test, _ = resolve_cases(kg, [by_id[i] for i in parts.test])
            test = [p for p in test if p.disease >= 0]
            seen = reasoner.memory.seen[[p.disease for p in test]]
            job = bar.add_task("test", total=len(test))
            report["test_metrics"] = evaluate_methods(
                reasoner, test, seen=seen, progress=lambda n: bar.update(job, completed=n)
            )
    save_run(
        reasoner,
        out,
        task=task_.name,
        report=report,
        split={"kind": split, "seed": seed, **{k: list(v) for k, v in parts.parts().items()}},
    )
    typer.echo(f"trained in {report['train_seconds']:.0f} s; saved to {out}")
    if "test_metrics" in report:
        _print_table(report["test_metrics"], f"test part of the {split} split")


def eval_diagnosis_command(
    model: Annotated[Path, typer.Option(help="Run folder written by `kgdx train`")],
    data: Annotated[Path, typer.Option(help="Cohort folder, same layout as the training data")],
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the metrics as JSON")
    ] = None,
    part: Annotated[
        str, typer.Option(help="'all' records, or only the run's 'train'/'val'/'test' part")
    ] = "all",
    force: Annotated[bool, typer.Option(help="Evaluate on a KG other than the run's")] = False,
) -> None:
    """Evaluate kgdx's model and every baseline in a run on every record of a folder."""
    from gnn.reasoning.pipeline import METHODS, evaluate_methods, resolve_cases
    from gnn.reasoning.run import load_run, read_card
    from gnn.tasks import get_task
    from graph.errors import InputError

    card = read_card(model)
    cases = get_task(card["task"]).read(data)
    if part != "all":
        if part not in ("train", "val", "test"):
            raise InputError(f"unknown --part {part!r}; expected all, train, val or test")
        wanted = set(card["split"][part])
        cases = [c for c in cases if c.id in wanted]
    kg = _kg()
    reasoner, card = load_run(model, kg, force=force)
    patients, resolution = resolve_cases(kg, cases)
    skipped = sum(p.disease < 0 for p in patients)
    patients = [p for p in patients if p.disease >= 0]
    if not patients:
        raise InputError(f"no record of {data} has a disease that is a candidate of the KG")
    seen = reasoner.memory.seen[[p.disease for p in patients]]
    with _progress_bar() as bar:
        job = bar.add_task("evaluating", total=len(patients))
        started = time.perf_counter()
        metrics = evaluate_methods(
            reasoner,
            patients,
            seen=seen,
            methods=METHODS,
            progress=lambda n: bar.update(job, completed=n),
        )
        seconds = time.perf_counter() - started
    title = f"{len(patients)} records of {data} ({int(seen.sum())} of diseases seen in training)"
    _print_table(metrics, title)
    if skipped or resolution["unknown_terms"]:
        typer.echo(
            f"skipped {skipped} records whose disease is not a KG candidate; "
            f"{resolution['distinct_unknown_terms']} HPO ids unknown to the KG were ignored"
        )
    if json_out is not None:
        json_out.write_text(
            json.dumps(
                {
                    "model": str(model),
                    "data": str(data),
                    "part": part,
                    "metrics": metrics,
                    "resolution": resolution,
                    "skipped_records": skipped,
                    "seconds": seconds,
                },
                indent=2,
            )
        )


def _print_table(metrics: dict, title: str) -> None:
    from api.commands.table import console, make_table

    rows = []
    for method, groups in metrics.items():
        for group, m in groups.items():
            rows.append(
                [
                    method,
                    group,
                    str(m["n"]),
                    f"{m['top1']:.3f}",
                    f"{m['top3']:.3f}",
                    f"{m['top10']:.3f}",
                    f"{m['mrr']:.3f}",
                    f"{m['median_rank']:g}",
                ]
            )
    columns = ["method", "cases", "n", "top-1", "top-3", "top-10", "MRR", "median rank"]
    console().print(
        make_table(
            columns,
            rows,
            title=title,
            right=("n", "top-1", "top-3", "top-10", "MRR", "median rank"),
        )
    )


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    from api.commands.diagnose import diagnose_command, explain_command

    app.command("train")(train_command)
    app.command("diagnose")(diagnose_command)
    app.command("explain")(explain_command)
    groups["eval"].command("diagnosis")(eval_diagnosis_command)
