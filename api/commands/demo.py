"""``kgdx demo``: the end-to-end vertical slice on the shipped seed KG and demo cohort.

Builds the seed KG into a fresh store (``<home>/demo.lbug``, replaced each run; refused while
another process has it open), extracts findings from the cohort's
reports, stores the patients, trains a small heterogeneous GNN and prints, for held-out patients,
their top diagnoses with explanation paths, then the held-out metrics against a baseline. Every
number printed is computed in the run.
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
    model: Annotated[str, typer.Option(help="GNN: hgt, rgcn or sage.")] = "rgcn",
    epochs: Annotated[int, typer.Option(help="Training epochs.", min=1)] = 150,
    seed: Annotated[int, typer.Option(help="Random seed (split, init).")] = 0,
    sections: Annotated[
        str,
        typer.Option(
            help="Report sections the GNN reads: default (all but the impression, which "
            "often names the diagnosis), all, -impression,-history, or findings,indication."
        ),
    ] = "default",
) -> None:
    """Build the seed KG, ingest the demo cohort, train a GNN and explain its diagnoses."""
    import shutil
    import time

    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

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
    from gnn.explain import faithfulness

    settings = base.model_copy(update={"db_path": db_path, "store": "embedded", "seed": seed})
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
        with console.status(f"training {model} ({epochs} epochs, CPU)"):
            model_dir = settings.home / "models" / f"demo-{model}"
            result = engine.train(
                model=model, epochs=epochs, seed=seed, save_to=model_dir, sections=sections
            )
        console.print(
            f"trained [bold]{result.model_id}[/bold] in "
            f"{result.metrics['timing']['train_seconds']:.1f}s on "
            f"{len(result.splits['train'])} patients "
            f"(val {len(result.splits['val'])}, held-out test {len(result.splits['test'])}); "
            f"{len(result.candidate_ids)} candidate diagnoses; saved to {model_dir}"
        )
        console.print(f"model input: the findings of {result.sections.describe()}")
        names = {c.id: c.name for c in engine.store.get_concepts(result.candidate_ids).values()}
        by_id = {p.id: p for p in stored}
        explained = {}
        with console.status("diagnosing held-out patients"):
            for patient_id in result.splits["test"]:
                explained[patient_id] = engine.diagnose(patient_id, top_k=3)
        shown = [pid for pid in result.splits["test"] if any(d.paths for d in explained[pid])]
        for patient_id in shown[:patients]:
            _print_patient(console, by_id[patient_id], explained[patient_id], names)
        faithful = faithfulness(result, engine.patient_graph(), explained, seed=seed)

        table = Table(title="Held-out test patients", title_justify="left")
        table.add_column("model")
        for metric in ("auroc", "auprc", "f1", "top1_accuracy", "ece"):
            table.add_column(metric, justify="right")
        for label, key in (
            (f"GNN ({model})", "test"),
            ("baseline: logistic regression", "baseline_test"),
        ):
            row = result.metrics[key]
            table.add_row(
                label, *(f"{row[m]:.3f}" for m in ("auroc", "auprc", "f1", "top1_accuracy", "ece"))
            )
        console.print(table)
        console.print(
            f"explanation faithfulness on {faithful['n']} held-out diagnoses: removing the explained "
            f"findings lowers the probability by {faithful['explained_drop']:.3f} on average, "
            f"removing as many random other findings by {faithful['random_drop']:.3f}"
        )
        console.print(
            f"patients, findings and predictions with their paths are stored in {db_path}; "
            "query them (read-only, also while a server has the store open) with:"
        )
        console.print(query_command_line(db_path), markup=False, highlight=False, soft_wrap=True)
        console.print("serve this store and model over REST with:")
        console.print(
            f"KGDX_DB_PATH={shlex.quote(str(db_path))} KGDX_MODEL_DIR={shlex.quote(str(model_dir))} "
            f"{program_name()} serve",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"[dim]demo finished in {time.perf_counter() - started:.1f}s[/dim]")
