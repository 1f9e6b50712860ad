"""``kgdx diagnose`` and ``kgdx explain``: a patient's ranked diagnoses with their KG paths.

The patient comes one of three ways:

- HPO ids (``--observed`` / ``--excluded``), scored by the run's reasoner directly
  (:func:`gnn.reasoning.explain_paths.diagnose`);
- a report (``--text`` / ``--report FILE``): its findings are extracted over the store's KG and
  diagnosed through :meth:`api.engine.Engine.diagnose_record` (nothing is stored);
- a stored patient (``--patient ID``; ``kgdx explain PATIENT DISEASE``) through
  :meth:`~api.engine.Engine.diagnose` (which saves the predictions, as the REST route does) and
  :meth:`~api.engine.Engine.explain` (nothing is written).

Ids that are obsolete (``replaced_by``) or alternative (``alt_id``) are read as their current
term and reported; unknown ones are reported and ignored.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from api.engine import Engine
    from graph.records import Diagnosis, Finding

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


def _model_dir(model: Path | None) -> Path:
    from graph.errors import ConfigError
    from graph.settings import get_settings

    folder = model or get_settings().model_dir
    if folder is None:
        raise ConfigError(
            "no model: pass --model RUN_DIR (from `kgdx train`) or set KGDX_MODEL_DIR"
        )
    return folder


def _open_engine(*, write: bool) -> Engine:
    """The engine on the configured store: read-only unless predictions are to be saved (so it
    also works beside a server that holds the store)."""
    from api.engine import Engine
    from graph.settings import get_settings
    from graph.stores import open_store

    settings = get_settings()
    return Engine(store=open_store(settings=settings, read_only=not write), settings=settings)


def _report_record(text: str | None, report: Path | None):
    """A patient of one report (``--text`` or ``--report FILE``), not stored.

    Raises:
        InputError: the file is missing or too long (see ``kgdx extract report``), or empty.
    """
    from api.commands.extract import _read_report
    from extractors.text.extractor import coerce_text
    from graph.errors import InputError
    from graph.records import Patient, Report
    from graph.settings import get_settings

    source = str(report) if report is not None else None
    content, doc_id = _read_report(source, text, get_settings().max_report_chars)
    content = coerce_text(content)
    if not content.strip():
        raise InputError(f"the report {doc_id} is empty; give its text, or HPO ids with --observed")
    return Patient(id="query", reports=(Report(id=doc_id, text=content),))


def _finding_rows(engine: Engine, findings: tuple[Finding, ...]) -> list[dict]:
    """The extracted findings as the model reads them: concept, name, assertion, whether it is a
    term of the model's KG, the text it came from."""
    from graph.records import TextSpan

    run = engine.result
    names = {
        c.id: c.name for c in engine.store.get_concepts({f.concept_id for f in findings}).values()
    }
    rows = []
    for f in findings:
        a = f.assertion
        words = [a.polarity.value]
        if a.certainty.value != "definite":
            words.append(a.certainty.value)
        if a.temporality.value != "current":
            words.append(a.temporality.value)
        if a.experiencer.value != "patient":
            words.append(a.experiencer.value)
        rows.append(
            {
                "concept_id": f.concept_id,
                "name": names.get(f.concept_id, f.concept_id),
                "assertion": " ".join(words),
                "kg_term": run is not None and run.index.index(f.concept_id) is not None,
                "text": f.provenance.text if isinstance(f.provenance, TextSpan) else "",
            }
        )
    return rows


def _engine_result(engine: Engine, diagnoses: list[Diagnosis], findings: list[dict]) -> dict:
    kg = engine.result.reasoner.kg
    position = {d: i for i, d in enumerate(kg.disease_ids)}
    out = []
    for d in diagnoses:
        i = position.get(d.concept_id)
        record = d.model_dump(mode="json")
        record["id"] = kg.disease_label(i) if i is not None else d.concept_id
        out.append(record)
    notes = [
        f"finding {row['concept_id']} ({row['name']}) is not a term of the model's KG: ignored"
        for row in findings
        if not row["kg_term"]
    ]
    return {"findings": findings, "diagnoses": out, "notes": notes}


def _print_engine_result(result: dict, json_output: bool, paths: int) -> None:
    if json_output:
        typer.echo(json.dumps(result, indent=2))
        return
    if result["findings"]:
        typer.echo("findings read from the report:")
        for row in result["findings"]:
            typer.echo(f"  {row['concept_id']} {row['name']} ({row['assertion']}): {row['text']!r}")
    for note in result["notes"]:
        typer.echo(f"note: {note}")
    for i, d in enumerate(result["diagnoses"], 1):
        typer.echo(f"{i}. {d['id']} {d['name']}  p={d['probability']:.3f}")
        if paths and not d["paths"]:
            typer.echo("     (no KG path from the patient's findings to this disease)")
        for p in d["paths"]:
            names = p["node_names"] or p["nodes"]
            steps = [names[0]] + [
                f"-{r}-> {n}" for r, n in zip(p["relations"], names[1:], strict=True)
            ]
            typer.echo(f"     {' '.join(steps)}  ({p['score']:+.2f})")
            for evidence in p["evidence"]:
                typer.echo(f"        {evidence}")


def _require_stored(engine: Engine, patient_id: str) -> None:
    """Raises: InputError: no such patient in the store (saying how to find the stored ids)."""
    from graph.errors import InputError

    try:
        engine.store.get_patient(patient_id)
    except InputError:
        raise InputError(
            f"no patient {patient_id!r} in the store {engine.settings.resolved_db_path}; store "
            "it first (Engine.ingest, or POST /v1/patients), or list the stored ids with "
            'kgdx query "MATCH (p:Patient) RETURN p.id LIMIT 20"'
        ) from None


def _diagnose_with_engine(
    *,
    text: str | None,
    report: Path | None,
    patient_id: str | None,
    disease: str | None,
    model: Path | None,
    top: int,
    paths: int,
    json_output: bool,
    force: bool,
) -> None:
    """A report's or a stored patient's diagnoses through the engine's inductive path."""
    from graph.errors import InputError

    folder = _model_dir(model)
    record = _report_record(text, report) if patient_id is None else None
    # only `--patient` without `--disease` writes (the predictions, as `Engine.diagnose` does)
    with _open_engine(write=patient_id is not None and disease is None) as engine:
        engine.load_model(folder, force=force)
        findings: list[dict] = []
        target: object = patient_id
        if patient_id is not None:
            _require_stored(engine, patient_id)
        if record is not None:
            extracted = engine.extract(record)
            if not extracted.findings:
                raise InputError(
                    "no finding was extracted from the report: it names no concept of the KG "
                    "(present or absent); check the text, or give HPO ids with --observed"
                )
            findings = _finding_rows(engine, extracted.findings)
            target = extracted.model_copy(update={"reports": ()})  # extracted once
        if disease is not None:
            diagnoses = [engine.explain(target, disease, k=max(paths, 1))]
        elif record is not None:
            diagnoses = engine.diagnose_record(
                target, top_k=top, paths_per_diagnosis=paths, extract=False
            )
        else:
            diagnoses = engine.diagnose(patient_id, top_k=top, paths_per_diagnosis=paths)
        result = _engine_result(engine, diagnoses, findings)
    _print_engine_result(result, json_output, paths)


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
