"""``kgdx demo``: the end-to-end vertical slice on the shipped seed KG and demo cohort.

Builds the seed KG into a fresh store (``<home>/demo.lbug``, replaced each run; refused while
another process has it open), extracts findings from the cohort's reports, stores the patients,
trains the inductive reasoner over the chest seed KG (:meth:`api.engine.Engine.train`, seconds)
and prints, for held-out patients, their top diagnoses with explanation paths, then the held-out
metrics of kgdx's model against the baselines trained in the same run, the explanation fidelity,
and how a textbook pneumonia report (not in the cohort) is ranked. Every number printed is
computed in the run. The model is saved in ``<home>/models/demo``, which ``kgdx serve`` uses
with the demo store while there is no ``<home>/kg.lbug``.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from data.cohort import CohortCase
    from graph.records import Patient


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add the top-level ``demo`` command."""
    app.command("demo")(demo)


def _extraction_agreement(cases: list[CohortCase], stored: list[Patient]) -> dict[str, float]:
    """Micro precision / recall of extracted (concept, polarity) pairs against the gold mentions."""
    by_id = {p.id: p for p in stored}
    tp = fp = fn = 0
    for case in cases:
        gold = {(f.concept_id, f.assertion.polarity.value) for f in case.gold_findings}
        found = {
            (f.concept_id, f.assertion.polarity.value) for f in by_id[case.patient.id].findings
        }
        tp += len(gold & found)
        fp += len(found - gold)
        fn += len(gold - found)
    return {
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
    }


DEMO_MODEL_DIR = ("models", "demo")  # under <home>; `kgdx serve` finds it with the demo store

# A textbook right-lower-lobe pneumonia report, written here (not from the cohort, not tuned):
# the demo prints where the trained model ranks pneumonia for it.
TEXTBOOK_PNEUMONIA = (
    "INDICATION: Fever, productive cough and pleuritic chest pain.\n\n"
    "FINDINGS: Right lower lobe consolidation with air bronchograms. Crackles at the right base. "
    "No pleural effusion. No pneumothorax. The heart size is normal.\n\n"
    "IMPRESSION: Right lower lobe pneumonia."
)
PNEUMONIA = "UMLS:C0032285"
METHOD_LABELS = {
    "kgdx": "kgdx ({model}, KG-scored)",
    "phenomizer": "baseline: Phenomizer (Resnik)",
    "knn": "baseline: kNN over training patients",
    "no_kg": "ablation: no KG (free embeddings)",
}


def _print_patient(
    console: Console, patient: Patient, diagnoses: list, names: dict[str, str]
) -> None:
    from rich.panel import Panel
    from rich.text import Text

    from api.commands.table import human_number

    body = Text()
    truth = ", ".join(names.get(label, label) for label in patient.labels)
    body.append(f"known diagnosis: {truth}\n", style="dim")
    for rank, diagnosis in enumerate(diagnoses, start=1):
        mark = "✓" if diagnosis.concept_id in patient.labels else " "
        body.append(f"{rank}. {diagnosis.name}  ", style="bold")
        body.append(f"p={human_number(diagnosis.probability)} {mark}\n")
        for path in diagnosis.paths:
            body.append(f"   {path.render()}", style="cyan")
            body.append(f"  (score {path.score:.2f})\n", style="dim")
            body.append(f"      evidence: {path.evidence[0]}\n", style="green")
            names_on_path = path.node_names or path.nodes
            kg_steps = path.evidence[1:]
            for step, step_evidence in enumerate(kg_steps, start=1):
                # Name the step when a path has several: two steps can share a source.
                label = (
                    f"  [{names_on_path[step]} -{path.relations[step]}-> {names_on_path[step + 1]}]"
                    if len(kg_steps) > 1
                    else ""
                )
                body.append(f"      {step_evidence}{label}\n", style="dim")
    console.print(Panel(body, title=f"patient {patient.id}", title_align="left"))


# The query the demo ends with (and README shows): no quote or $ inside, so it pastes into any
# shell as printed.
DEMO_QUERY = (
    "MATCH (p:Patient)-[:HAS_PREDICTION]->(r:Prediction) "
    "RETURN p.id, r.concept_id, r.probability ORDER BY r.probability DESC LIMIT 5"
)


def program_name() -> str:
    """How to call kgdx again from here: ``.venv/bin/kgdx`` when that is what ran (``make
    demo``), else ``kgdx``."""
    argv0 = Path(sys.argv[0])
    if argv0.name != "kgdx" or not argv0.is_file():
        return "kgdx"
    try:
        return str(argv0.absolute().relative_to(Path.cwd()))
    except ValueError:
        return str(argv0)


def query_command_line(db_path: Path) -> str:
    """The exact command that queries the demo's store."""
    return f'{program_name()} query --db {shlex.quote(str(db_path))} "{DEMO_QUERY}"'


def demo(
    patients: Annotated[int, typer.Option(help="Held-out patients to show.", min=1)] = 4,
    model: Annotated[str, typer.Option(help="KG encoder: sage, rgcn or hgt.")] = "sage",
    epochs: Annotated[int, typer.Option(help="Training epochs (evidence scorer).", min=1)] = 30,
    seed: Annotated[int, typer.Option(help="Random seed (split, init).")] = 0,
    sections: Annotated[
        str,
        typer.Option(
            help="Report sections the model reads: default (all but the impression, which "
            "often names the diagnosis), all, -impression,-history, or findings,indication."
        ),
    ] = "default",
    rare: Annotated[
        bool,
        typer.Option(
            help="Also diagnose real rare-disease cases (Phenopacket Store, when "
            "../shared/data has it) with a reasoner trained in the demo (about a minute)."
        ),
    ] = True,
) -> None:
    """Build the seed KG, ingest the demo cohort, train the reasoner and explain its diagnoses."""
    import shutil
    import time

    from rich.console import Console
    from rich.progress import Progress

    from graph.settings import get_settings
    from graph.stores.lock import exclusive_database

    console = Console()
    started = time.perf_counter()
    base = get_settings()
    db_path = base.home / "demo.lbug"
    # A server may have the previous demo store open: deleting it under the server loses what
    # the server accepted, so refuse instead (StoreError, exit 2) and keep writers out meanwhile.
    with exclusive_database(db_path, action="run `kgdx demo`, which replaces it"):
        for stale in (db_path, db_path.with_name(db_path.name + ".wal")):
            if stale.is_dir():
                shutil.rmtree(stale)
            elif stale.exists():
                stale.unlink()
    from api.engine import Engine  # heavy imports after the check, so a refusal comes at once
    from data.cohort import load_cohort
    from gnn.reasoning.patients import chest_config

    settings = base.model_copy(update={"db_path": db_path, "store": "embedded", "seed": seed})
    model_dir = base.home.joinpath(*DEMO_MODEL_DIR)
    console.rule("[bold]kgdx demo")
    with Engine(store="embedded", settings=settings) as engine:
        counts = engine.build_seed_kg()
        console.print(
            f"seed KG: [bold]{counts.nodes.get('Concept', 0)}[/bold] concepts, "
            f"[bold]{counts.total_relations}[/bold] relations -> {db_path}"
        )
        cases = load_cohort()
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task("extracting findings and storing patients", total=len(cases))
            stored = engine.ingest(
                patients=[case.patient for case in cases],
                progress=lambda _patient: bar.advance(task),
            )
        agreement = _extraction_agreement(cases, stored)
        n_findings = sum(len(p.findings) for p in stored)
        console.print(
            f"cohort: [bold]{len(stored)}[/bold] patients, {n_findings} findings extracted "
            f"(vs. the generator's gold mentions: precision {agreement['precision']:.2f}, "
            f"recall {agreement['recall']:.2f})"
        )
        kg = engine.knowledge("chest")
        config = chest_config(
            kg.num_diseases, model=model, epochs=epochs, joint_epochs=max(1, epochs // 3)
        )
        train_started = time.perf_counter()
        with console.status(f"training the reasoner ({model} KG encoder, CPU)"):
            result = engine.train(
                domain="chest", config=config, seed=seed, save_to=model_dir, sections=sections
            )
        _print_training(console, result, time.perf_counter() - train_started, model_dir)
        names = dict(zip(kg.disease_ids, kg.disease_names, strict=True))
        by_id = {p.id: p for p in stored}
        explained = {}
        with console.status("diagnosing held-out patients"):
            for patient_id in result.splits["test"]:
                explained[patient_id] = engine.diagnose(patient_id, top_k=3)
        shown = [pid for pid in result.splits["test"] if any(d.paths for d in explained[pid])]
        for patient_id in shown[:patients]:
            _print_patient(console, by_id[patient_id], explained[patient_id], names)
        _print_metrics(console, result, model)
        _print_fidelity(console, engine, result, seed)
        _print_textbook(console, engine)
        console.print(
            f"patients, findings and predictions with their paths are stored in {db_path}; "
            "query them (read-only, also while a server has the store open) with:"
        )
        console.print(query_command_line(db_path), markup=False, highlight=False, soft_wrap=True)
        console.print(
            "serve this store and model over REST with `kgdx serve` (it serves the demo store "
            "while there is no kg.lbug), or name them:"
        )
        console.print(
            f"KGDX_DB_PATH={shlex.quote(str(db_path))} "
            f"KGDX_MODEL_DIR={shlex.quote(str(model_dir))} {program_name()} serve",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    if rare:
        from api.commands.demo_rare import run_rare_demo

        run_rare_demo(console, home=base.home)
    console.print(f"[dim]demo finished in {time.perf_counter() - started:.1f}s[/dim]")


def _print_training(console: Console, result, seconds: float, model_dir: Path) -> None:
    counts = result.card["report"]["counts"]
    console.print(
        f"trained [bold]{result.model_id}[/bold] in {seconds:.1f}s on "
        f"{len(result.splits['train'])} patients + {counts['simulated']} simulated from the KG "
        f"(val {len(result.splits['val'])}, held-out test {len(result.splits['test'])}); "
        f"{counts['candidates']} candidate diseases scored through the KG; saved to {model_dir}"
    )
    console.print(f"model input: the findings of {result.sections.describe()}")


def _print_metrics(console: Console, result, model: str) -> None:
    from rich.table import Table

    test = result.evaluation.get("test", {})
    table = Table(title="Held-out test patients (same split, same run)", title_justify="left")
    table.add_column("method")
    for metric in ("top1", "top3", "mrr", "median_rank", "n"):
        table.add_column(metric, justify="right")
    for method, label in METHOD_LABELS.items():
        if method not in test:
            continue
        row = test[method]["overall"]
        table.add_row(
            label.format(model=model),
            *(f"{row[m]:.3f}" for m in ("top1", "top3", "mrr")),
            f"{row['median_rank']:g}",
            f"{row['n']:g}",
        )
    console.print(table)


def _print_fidelity(console: Console, engine, result, seed: int) -> None:
    from gnn.reasoning.fidelity import FidelityConfig, measure_fidelity
    from gnn.reasoning.patients import resolved_patients
    from graph.subgraph import patient_subgraph

    subgraphs = [
        patient_subgraph(engine.store, pid, sections=result.sections)
        for pid in result.splits["test"]
    ]
    held_out = resolved_patients(result, subgraphs)
    try:
        fidelity = measure_fidelity(
            result.reasoner, held_out, config=FidelityConfig(ks=(1,), seed=seed)
        )
    except Exception as exc:  # shown, not fatal: the demo's other figures stand
        console.print(f"explanation fidelity: not measured ({exc})")
        return
    console.print(
        f"explanation fidelity on {fidelity['n']} held-out patients: removing the top path's "
        f"finding lowers the top diagnosis' probability by {fidelity['plus'][1]:.3f} on average, "
        f"removing a random finding by {fidelity['plus_random'][1]:.3f} "
        f"(ratio {fidelity['ratio'][1]:.2f})"
    )


def _print_textbook(console: Console, engine) -> None:
    from graph.records import Patient, Report

    patient = Patient(id="textbook", reports=(Report(id="textbook-1", text=TEXTBOOK_PNEUMONIA),))
    kg = engine.knowledge("chest")
    ranked = engine.diagnose_record(patient, top_k=kg.num_diseases, paths_per_diagnosis=0)
    order = [d.concept_id for d in ranked]
    rank = order.index(PNEUMONIA) + 1 if PNEUMONIA in order else None
    top = ", ".join(f"{d.name} {d.probability:.2f}" for d in ranked[:3])
    where = f"rank {rank} of {len(order)}" if rank else "not ranked"
    console.print(
        f"a textbook right-lower-lobe pneumonia report (written for the demo, not in the "
        f"cohort): pneumonia at [bold]{where}[/bold]; top 3: {top}"
    )
