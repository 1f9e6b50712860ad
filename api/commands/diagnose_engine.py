"""``kgdx diagnose --text/--report/--patient`` and ``kgdx explain``: a report's or a stored
patient's diagnoses through the engine's inductive path.

A report's findings are extracted over the store's KG and diagnosed through
:meth:`api.engine.Engine.diagnose_record` (nothing is stored); a stored patient goes through
:meth:`~api.engine.Engine.diagnose` (which saves the predictions, as the REST route does) and
:meth:`~api.engine.Engine.explain` (nothing is written). The options are parsed in
:mod:`api.commands.diagnose`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from api.engine import Engine
    from graph.records import Diagnosis, Finding


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
