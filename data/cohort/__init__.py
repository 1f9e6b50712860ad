"""The synthetic demo cohort: loader of ``chest_demo_cohort.jsonl`` (see README.md there)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from graph.errors import InputError
from graph.records import Assertion, Finding, Patient, Record, Report, TextSpan

COHORT_FILE = Path(__file__).with_name("chest_demo_cohort.jsonl")


class CohortCase(Record):
    """A cohort patient (reports, labels, attributes; no findings yet) and its gold mentions.

    ``gold_findings`` are the mentions the generator wrote, with their true assertions; they let
    the demo and tests measure the text extractor and train without it.
    """

    patient: Patient
    gold_findings: tuple[Finding, ...]
    atypical: bool = False


def _gold(row: dict, report: Report) -> tuple[Finding, ...]:
    findings = []
    for mention in row.get("mentions", []):
        assertion = Assertion(
            polarity=mention.get("polarity", "present"),
            certainty=mention.get("certainty") or "definite",
            temporality=mention.get("temporality") or "current",
        )
        span = TextSpan(
            doc_id=report.id,
            section=mention["section"],
            sentence=mention["sentence"],
            start=mention["start"],
            end=mention["end"],
            text=mention["text"],
        )
        if report.text[span.start : span.end] != span.text:
            raise InputError(f"{report.id}: gold span {span.start}-{span.end} is not {span.text!r}")
        concept_id = mention["concept_id"]
        findings.append(Finding(concept_id=concept_id, assertion=assertion, provenance=span))
    return tuple(findings)


def load_cohort(path: str | Path | None = None) -> list[CohortCase]:
    """Read the demo cohort (JSON lines) into :class:`CohortCase` records, in id order.

    Args:
        path: a cohort JSONL file; the shipped ``chest_demo_cohort.jsonl`` when ``None``.

    Raises:
        InputError: a missing file, a line that is not JSON, or a row that does not validate.
    """
    path = Path(path) if path is not None else COHORT_FILE
    if not path.is_file():
        raise InputError(f"cohort file not found: {path}; run `python -m data.cohort.generate`")
    cases: list[CohortCase] = []
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                report = Report(id=row["report"]["id"], text=row["report"]["text"])
                patient = Patient(
                    id=row["id"],
                    reports=(report,),
                    labels=tuple(row["labels"]),
                    attributes=row.get("attributes", {}),
                )
                cases.append(
                    CohortCase(
                        patient=patient,
                        gold_findings=_gold(row, report),
                        atypical=bool(row.get("atypical", False)),
                    )
                )
            except (json.JSONDecodeError, KeyError, TypeError, ValidationError) as exc:
                raise InputError(f"{path}:{line_no}: bad cohort row ({exc})") from None
    if not cases:
        raise InputError(f"{path} holds no patients")
    return sorted(cases, key=lambda case: case.patient.id)


__all__ = ["COHORT_FILE", "CohortCase", "load_cohort"]
