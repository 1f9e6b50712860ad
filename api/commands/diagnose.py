"""``kgdx diagnose`` and ``kgdx explain``: a patient's ranked diagnoses with their KG paths.

The patient comes one of three ways:

- HPO ids (``--observed`` / ``--excluded``), scored by the run's reasoner directly
  (:func:`gnn.reasoning.explain_paths.diagnose`);
- a report (``--text`` / ``--report FILE``): its findings are extracted over the store's KG and
  diagnosed through :meth:`api.engine.Engine.diagnose_record` (nothing is stored);
- a stored patient (``--patient ID``; ``kgdx explain PATIENT DISEASE``) through
  :meth:`~api.engine.Engine.diagnose` (which saves the predictions, as the REST route does) and
  :meth:`~api.engine.Engine.explain` (nothing is written).

The last two are in :mod:`api.commands.diagnose_engine`.

Ids that are obsolete (``replaced_by``) or alternative (``alt_id``) are read as their current
term and reported; unknown ones are reported and ignored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer

from api.commands.diagnose_engine import _diagnose_with_engine, _model_dir

ModelOption = Annotated[
    Path | None, typer.Option(help="Run folder from `kgdx train` (default: KGDX_MODEL_DIR)")
]
PathsOption = Annotated[int, typer.Option(min=0, max=10, help="Paths per diagnosis")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON")]
ForceOption = Annotated[bool, typer.Option(help="Use a run trained on another KG")]

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
    from api.commands.reasoning import _kg
    from gnn.reasoning.run import load_run

    reasoner, _ = load_run(_model_dir(model), _kg(), force=force)
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
    from gnn.reasoning.logits import patient_logits
    from gnn.reasoning.pipeline import Patient

    kg = reasoner.kg
    disease = kg.resolve_disease(disease_id)
    obs, exc, unknown = require_terms(kg, observed, excluded)
    patient = Patient("query", obs, [e for e in exc if e not in obs], -1)
    logits = patient_logits(reasoner, patient)
    probabilities = logits.probabilities()
    found = disease_paths(reasoner, patient, disease, _hpo_names(reasoner), logits)
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
    text: Annotated[
        str | None, typer.Option("--text", help="The patient's report text (findings extracted)")
    ] = None,
    report: Annotated[
        Path | None, typer.Option("--report", help="A report file (findings extracted)")
    ] = None,
    patient: Annotated[
        str | None,
        typer.Option("--patient", help="A stored patient id (its predictions are saved)"),
    ] = None,
    disease: Annotated[
        str | None,
        typer.Option(help="Explain this disease (OMIM id): its probability and paths"),
    ] = None,
    model: ModelOption = None,
    top: Annotated[int, typer.Option(min=1, max=100)] = 5,
    paths: PathsOption = 3,
    json_output: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """Ranked diagnoses of a patient (HPO terms, a report, or a stored patient), with calibrated
    scores and their KG paths."""
    from gnn.reasoning.explain_paths import diagnose
    from graph.errors import InputError

    given = [
        name
        for name, used in (
            ("--observed/--excluded", bool(observed.strip(", ") or excluded.strip(", "))),
            ("--text", text is not None),
            ("--report", report is not None),
            ("--patient", patient is not None),
        )
        if used
    ]
    if len(given) > 1:
        raise InputError(
            f"give the patient one way, not {' and '.join(given)}: HPO ids (--observed / "
            "--excluded), a report (--text or --report FILE), or a stored patient (--patient ID)"
        )
    if given and given[0] != "--observed/--excluded":
        _diagnose_with_engine(
            text=text,
            report=report,
            patient_id=patient,
            disease=disease,
            model=model,
            top=top,
            paths=paths,
            json_output=json_output,
            force=force,
        )
        return
    obs, exc = hpo_ids(observed, "--observed"), hpo_ids(excluded, "--excluded")
    if not obs and not exc:
        raise InputError(
            "the patient has no findings: give --observed HP:..,HP:.. (present) and/or "
            "--excluded HP:.. (absent), a report (--text / --report FILE), or a stored "
            "patient (--patient ID)"
        )
    reasoner = _load_reasoner(model, force)
    notes = term_notes(reasoner.kg, obs, exc)
    if disease is not None:
        result = explain_terms(reasoner, obs, exc, disease, paths=max(paths, 1))
    else:
        result = diagnose(reasoner, obs, exc, top=top, paths=paths)
    result["notes"] = notes + result["notes"]
    _print_result(result, json_output, paths)


def explain_command(
    patient: Annotated[str, typer.Argument(help="A stored patient id")],
    disease: Annotated[str, typer.Argument(help="A candidate disease: OMIM id or KG node id")],
    model: ModelOption = None,
    paths: PathsOption = 3,
    json_output: JsonOption = False,
    force: ForceOption = False,
) -> None:
    """The KG paths from a stored patient's findings to one named disease, with its probability
    (whatever its rank); nothing is written. For HPO ids or a report: `kgdx diagnose ...
    --disease ID`."""
    _diagnose_with_engine(
        text=None,
        report=None,
        patient_id=patient,
        disease=disease,
        model=model,
        top=1,
        paths=paths,
        json_output=json_output,
        force=force,
    )
