"""Which report sections feed a task: the defaults, a one-line spelling, and the selection itself.

A report's impression states the radiologist's conclusion, often the diagnosis itself
("IMPRESSION: CHF"). A diagnosis model that reads it as a patient finding learns the label from
the input, and its evaluation measures reading, not reasoning. So every mention keeps its section
(``TextSpan.section``, the ``section`` of a stored ``MENTIONS`` edge, the ``sections`` of a
patient ``HAS_FINDING`` edge), and a task says which sections it reads with a
:class:`~graph.records.SectionSelection`:

- :data:`FEATURE_SECTIONS` (the default of ``Engine.train`` and ``PatientSubgraph``): every
  section except ``impression``, and mentions of unknown section (a report without headers);
- :data:`ALL_SECTIONS`: everything, what models trained before sections were kept read.

The selection a model was trained with is saved in its ``config.json`` (``input_sections``) and
used again to diagnose; each ``Diagnosis`` says which it was.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import ValidationError

from graph.errors import InputError
from graph.records import Finding, Patient, SectionSelection

FEATURE_SECTIONS = SectionSelection(exclude=("impression",))
ALL_SECTIONS = SectionSelection()
UNKNOWN = "unknown"  # the spelling of "mentions of unknown section" in parse_sections


def parse_sections(text: str) -> SectionSelection:
    """A selection from its one-line spelling (CLI options, query parameters).

    ``all`` (every section), ``default`` (:data:`FEATURE_SECTIONS`), a comma-separated list of
    sections to use (``findings,indication``), or of sections to leave out, each with a leading
    ``-`` (``-impression,-history``: all others). ``unknown`` / ``-unknown`` add or drop the
    mentions of unknown section; a list of sections to use leaves them out unless it names
    ``unknown``.

    Raises:
        InputError: an empty or malformed spelling, or one that mixes used and left-out names.
    """
    words = [w.strip().lower() for w in text.split(",") if w.strip()]
    if words == ["all"]:
        return ALL_SECTIONS
    if words == ["default"]:
        return FEATURE_SECTIONS
    if not words:
        raise InputError("no sections given; write e.g. all, default, -impression or findings")
    unknown = None
    named = []
    for word in words:
        if word.lstrip("-") == UNKNOWN:
            unknown = not word.startswith("-")
        else:
            named.append(word)
    left_out = [w.removeprefix("-") for w in named if w.startswith("-")]
    used = [w for w in named if not w.startswith("-")]
    if left_out and used:
        raise InputError(
            f"sections {text!r} mix sections to use and sections to leave out ('-'); "
            "write either findings,indication or -impression,-history"
        )
    try:
        if used or unknown is True and not left_out:  # "findings,indication" or "unknown"
            return SectionSelection(include=tuple(used), unknown=bool(unknown))
        return SectionSelection(exclude=tuple(left_out), unknown=unknown is not False)
    except ValidationError as exc:
        reasons = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        raise InputError(f"bad sections {text!r}: {reasons}") from None


def select_findings(findings: Iterable[Finding], sections: SectionSelection) -> tuple[Finding, ...]:
    """The findings ``sections`` keeps, in their order (see :meth:`SectionSelection.keeps`)."""
    return tuple(f for f in findings if sections.keeps(f))


def select_patient(patient: Patient, sections: SectionSelection) -> Patient:
    """``patient`` with only the findings ``sections`` keeps (the same record when all are)."""
    kept = select_findings(patient.findings, sections)
    if len(kept) == len(patient.findings):
        return patient
    return patient.model_copy(update={"findings": kept})


def check_known_sections(sections: SectionSelection, known: Iterable[str]) -> SectionSelection:
    """Return ``sections`` if every section it names is in ``known``, else raise.

    A misspelt section (``impresion``) would silently leave the impression in a model's input,
    so names are checked against the extractor's sections and those of the stored mentions.

    Raises:
        InputError: a name that is not a known section.
    """
    known = set(known)
    strange = sorted((set(sections.include or ()) | set(sections.exclude)) - known)
    if strange:
        raise InputError(f"unknown report section(s) {strange}; known sections: {sorted(known)}")
    return sections
