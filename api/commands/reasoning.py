"""``kgdx train``, ``kgdx eval diagnosis`` and ``kgdx diagnose``: the reasoning engine.

The KG is read from the configured store (built by ``kgdx kg build --sources default``), read-only.
"""

from __future__ import annotations

import json
import re
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
        int | None, typer.Option(min=1, help="Scorer epochs (default 6; 1 with --quick)")
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="Small, fast training: TrainConfig.quick() (tests, demos)")
    ] = False,
    force: Annotated[
        bool, typer.Option(help="Overwrite a run folder trained on another KG")
    ] = False,
) -> None:
    """Train kgdx's model and every baseline on one split; save them with a model card."""
    from gnn.reasoning.pipeline import TrainConfig, evaluate_methods, resolve_cases, train_reasoner
    from gnn.reasoning.run import check_kg, read_card, save_run
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


HPO_ID = re.compile(r"HP:\d{7}", re.IGNORECASE)


def hpo_ids(value: str, option: str) -> list[str]:
    """The comma-separated HPO ids of ``option``, deduplicated in order.

    Raises:
        InputError: an item is not an HPO id (``HP:`` and seven digits).
    """
    from graph.errors import InputError

    given = [t.strip() for t in value.split(",") if t.strip()]
    bad = [t for t in given if not HPO_ID.fullmatch(t)]
    if bad:
        raise InputError(
            f"{option}: {', '.join(repr(t) for t in bad[:3])} is not an HPO id (HP: and seven "
            "digits, e.g. HP:0001250); give HPO ids separated by commas, or the report itself "
            "with --text / --report"
        )
    return list(dict.fromkeys(t.upper() for t in given))


def term_notes(kg, observed: list[str], excluded: list[str]) -> list[str]:
    """What became of the given ids on the way in: an obsolete id replaced (``replaced_by``), an
    alternative id read as its primary term (``alt_id``), an id both observed and excluded."""
    notes = []
    primary: dict[int, str] = {}
    for code, index in kg.hpo_index.items():
        if code.startswith("HP:") and code not in kg.alt_ids:
            primary[index] = min(code, primary.get(index, code))
    for hpo_id in dict.fromkeys(observed + excluded):
        if hpo_id not in kg.hpo_index and hpo_id in kg.obsolete:
            replacement = kg.obsolete[hpo_id]
            index = kg.hpo_index.get(replacement)
            if index is not None:
                notes.append(
                    f"obsolete HPO id {hpo_id} replaced by {replacement} "
                    f"({kg.term_names[index]}); use the new id"
                )
        elif hpo_id in kg.alt_ids and hpo_id in kg.hpo_index:
            index = kg.hpo_index[hpo_id]
            notes.append(
                f"{hpo_id} is an alternative id of {primary.get(index, hpo_id)} "
                f"({kg.term_names[index]}); read as that term"
            )
    both = [t for t in excluded if t in observed]
    if both:
        notes.append(f"both observed and excluded, read as observed: {', '.join(both)}")
    return notes


def _load_reasoner(model: Path | None, force: bool):
    from gnn.reasoning.run import load_run
    from graph.errors import ConfigError
    from graph.settings import get_settings

    folder = model or get_settings().model_dir
    if folder is None:
        raise ConfigError(
            "no model: pass --model RUN_DIR (from `kgdx train`) or set KGDX_MODEL_DIR"
        )
    reasoner, _ = load_run(folder, _kg(), force=force)
    return reasoner


def explain_terms(
    reasoner, observed: list[str], excluded: list[str], disease_id: str, *, paths: int = 10
) -> dict:
    """One named disease for a patient given as HPO ids: its rank among all candidates, its
    calibrated probability and its paths, ranked like ``kgdx diagnose``'s.

    Raises:
        UnknownConceptError: ``disease_id`` is not a candidate disease of the KG.
        InputError: no finding is an HPO term of the KG.
    """
    from gnn.reasoning.explain_paths import _hpo_names, disease_paths
    from gnn.reasoning.knowledge import require_terms
    from gnn.reasoning.pipeline import Patient

    kg = reasoner.kg
    disease = kg.resolve_disease(disease_id)
    obs, exc, unknown = require_terms(kg, observed, excluded)
    patient = Patient("query", obs, [e for e in exc if e not in obs], -1)
    probabilities = reasoner.probabilities(patient)
    found = disease_paths(reasoner, patient, disease, _hpo_names(reasoner))
    return {
        "diagnoses": [
            {
                "id": kg.disease_label(disease),
                "kg_id": kg.disease_ids[disease],
                "name": kg.disease_names[disease],
                "probability": float(probabilities[disease]),
                "rank": int((probabilities >= probabilities[disease]).sum()),
                "candidates": kg.num_diseases,
                "paths": found[:paths],
            }
        ],
        "notes": [f"unknown HPO id ignored: {u}" for u in unknown],
    }


def _print_result(result: dict, json_output: bool, paths: int) -> None:
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    for note in result["notes"]:
        typer.echo(f"note: {note}")
    for i, d in enumerate(result["diagnoses"], 1):
        head = f"{d['id']} {d['name']}  p={d['probability']:.3f}"
        if "rank" in d:  # a named disease: where it stands among all candidates
            head = f"rank {d['rank']:,} of {d['candidates']:,}: {head}"
        typer.echo(f"{i}. {head}" if "rank" not in d else head)
        if paths and not d["paths"]:
            typer.echo("     (no KG path from the patient's findings to this disease)")
        for p in d["paths"]:
            typer.echo(f"     {p['text']}  ({p['contribution']:+.2f})")


def diagnose_command(
    observed: Annotated[str, typer.Option(help="Present findings: HP:..,HP:..")] = "",
    excluded: Annotated[str, typer.Option(help="Absent findings: HP:..,HP:..")] = "",
    disease: Annotated[
        str | None,
        typer.Option(help="Explain this disease (OMIM id): its rank, probability and paths"),
    ] = None,
    model: Annotated[
        Path | None, typer.Option(help="Run folder (default: settings.model_dir)")
    ] = None,
    top: Annotated[int, typer.Option(min=1, max=100)] = 5,
    paths: Annotated[int, typer.Option(min=0, max=10, help="Paths per diagnosis")] = 3,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    force: Annotated[bool, typer.Option(help="Use a run trained on another KG")] = False,
) -> None:
    """Ranked diagnoses of a new patient given as HPO terms, with calibrated scores and paths."""
    from gnn.reasoning.explain_paths import diagnose
    from graph.errors import InputError

    obs, exc = hpo_ids(observed, "--observed"), hpo_ids(excluded, "--excluded")
    if not obs and not exc:
        raise InputError(
            "the patient has no findings: give --observed HP:..,HP:.. (present) and/or "
            "--excluded HP:.. (absent)"
        )
    reasoner = _load_reasoner(model, force)
    notes = term_notes(reasoner.kg, obs, exc)
    if disease is not None:
        result = explain_terms(reasoner, obs, exc, disease, paths=max(paths, 1))
    else:
        result = diagnose(reasoner, obs, exc, top=top, paths=paths)
    result["notes"] = notes + result["notes"]
    _print_result(result, json_output, paths)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("train")(train_command)
    app.command("diagnose")(diagnose_command)
    groups["eval"].command("diagnosis")(eval_diagnosis_command)
