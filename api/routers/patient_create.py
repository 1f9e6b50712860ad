"""What a client sends to create a patient (``POST /v1/patients``): report texts (findings are
extracted by the server), coded findings (HPO or any KG concept id, with an assertion) and labs;
images come as files in a multipart request (``api/routers/patient_upload.py``). Coded findings and
labs are kept as a generated report, ``<id>-coded``, with one line per entry, so each of them has
a sentence and a span the store keeps like any report finding (and a viewer can show like one).

What the server answers is in :mod:`api.routers.v1_schemas`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from api.routers.schemas import ReportInput, ReportText
from graph.records import (
    Assertion,
    Certainty,
    Curie,
    Experiencer,
    Finding,
    Id,
    Patient,
    Polarity,
    Report,
    Temporality,
    Text,
    TextSpan,
    check_id,
    check_json_value,
)

AssertionWord = Literal["present", "absent", "possible", "historical"]
ExperiencerWord = Literal["patient", "family", "other"]
CODED_SECTION = "coded"
LAB_SECTION = "labs"
CODED_SUFFIX = "-coded"
MAX_CODED = 500
MAX_LABS = 500


def assertion_of(word: str, experiencer: str = "patient") -> Assertion:
    """The :class:`Assertion` a one-word assertion stands for."""
    return Assertion(
        polarity=Polarity.ABSENT if word == "absent" else Polarity.PRESENT,
        certainty=Certainty.POSSIBLE if word == "possible" else Certainty.DEFINITE,
        temporality=Temporality.HISTORICAL if word == "historical" else Temporality.CURRENT,
        experiencer=Experiencer(experiencer),
    )


class CodedFindingCreate(BaseModel):
    """A finding given as a code (an HPO term or any KG concept id), not read from text."""

    model_config = ConfigDict(extra="forbid")

    concept_id: Curie = Field(description="A KG concept id, e.g. HP:0002090 or UMLS:C0032285")
    assertion: AssertionWord = "present"
    experiencer: ExperiencerWord = "patient"
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    label: Text | None = Field(
        default=None, max_length=200, description="The term as the source wrote it (shown only)"
    )


class LabCreate(BaseModel):
    """A laboratory result. With ``concept_id`` it is also a finding: present when the result is
    abnormal (``high``/``low``/``abnormal``, or no interpretation given), absent when ``normal``."""

    model_config = ConfigDict(extra="forbid")

    code: Text = Field(min_length=1, max_length=100, description="e.g. LOINC:2160-0")
    name: Text | None = Field(default=None, max_length=200)
    value: Annotated[float, Field(allow_inf_nan=False)] | Text | None = None
    unit: Text | None = Field(default=None, max_length=50)
    interpretation: Literal["high", "low", "normal", "abnormal"] | None = None
    concept_id: Curie | None = Field(
        default=None, description="The KG finding an abnormal result stands for"
    )
    date: Text | None = Field(default=None, max_length=50)

    @field_validator("value")
    @classmethod
    def _short_value(cls, value: float | str | None) -> float | str | None:
        if isinstance(value, str) and len(value) > 100:
            raise ValueError("a text value has at most 100 characters")
        return value


class PatientCreate(BaseModel):
    """A patient to store: report texts, coded findings, labs (images come as files)."""

    model_config = ConfigDict(extra="forbid")

    id: Id
    reports: list[ReportInput] = Field(default_factory=list, max_length=100)
    findings: list[CodedFindingCreate] = Field(default_factory=list, max_length=MAX_CODED)
    labs: list[LabCreate] = Field(default_factory=list, max_length=MAX_LABS)
    labels: list[Curie] = Field(
        default_factory=list, max_length=100, description="Known diagnoses, e.g. for training"
    )
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _json_attributes(cls, value: dict[str, Any]) -> dict[str, Any]:
        value = check_json_value(value)
        if "labs" in value:
            raise ValueError("'labs' is kept by the server; send labs in the 'labs' field")
        return value

    @model_validator(mode="after")
    def _ids(self) -> PatientCreate:
        """The report ids :meth:`to_patient` will use are valid and distinct."""
        seen: set[str] = set()
        for number, given in enumerate(self.reports, start=1):
            report_id = given.id if isinstance(given, ReportText) and given.id else None
            if report_id is None:
                report_id = f"{self.id}-R{number}"
                try:
                    check_id(report_id)
                except ValueError:
                    raise ValueError(
                        f"report {number}: the default id {report_id!r} is too long; "
                        "give the report an id or use a shorter patient id"
                    ) from None
            if report_id in seen:
                raise ValueError(f"two reports have the id {report_id!r}; report ids must differ")
            seen.add(report_id)
        if self.findings or self.labs:
            coded = self.coded_report_id
            try:
                check_id(coded)
            except ValueError:
                raise ValueError(
                    f"the coded findings' report id {coded!r} is too long; use a shorter patient id"
                ) from None
            if coded in seen:
                raise ValueError(f"the report id {coded!r} is kept for coded findings and labs")
        return self

    @property
    def coded_report_id(self) -> str:
        return f"{self.id}{CODED_SUFFIX}"

    def text_patient(self) -> Patient:
        """The patient with its report texts only (the input of extraction)."""
        reports = []
        for number, given in enumerate(self.reports, start=1):
            report = ReportText(text=given) if isinstance(given, str) else given
            reports.append(
                Report(id=report.id or f"{self.id}-R{number}", text=report.text, date=report.date)
            )
        attributes = dict(self.attributes)
        if self.labs:
            attributes["labs"] = [lab.model_dump() for lab in self.labs]
        return Patient(
            id=self.id, reports=tuple(reports), labels=tuple(self.labels), attributes=attributes
        )

    def coded_report(
        self, names: dict[str, str], nodes: dict[str, str] | None = None
    ) -> tuple[Report, tuple[Finding, ...]] | None:
        """The generated report of coded findings and labs, with a finding per coded entry
        (and per lab with a ``concept_id``), each spanning its code in the report text.

        Args:
            names: concept id -> name, for the report's text (the id alone when missing).
            nodes: a given id -> the KG node it names (a cross-reference such as an HPO id
                merged into a UMLS concept): the finding links to that node, the report line
                keeps the code as given.
        """
        nodes = nodes or {}
        if not self.findings and not self.labs:
            return None
        report_id = self.coded_report_id
        text = ""
        findings: list[Finding] = []

        def add_line(line: str, code_start: int, code: str, section: str) -> TextSpan:
            """Append ``line``; the span of ``code`` in it (at ``code_start``)."""
            nonlocal text
            start = len(text) + code_start
            text += line + "\n"
            return TextSpan(
                doc_id=report_id,
                section=section,
                sentence=line,
                start=start,
                end=start + len(code),
                text=code,
            )

        for entry in self.findings:
            name = entry.label or names.get(entry.concept_id, "")
            line = f"{entry.concept_id} {name}: {entry.assertion}".replace("  ", " ")
            span = add_line(line, 0, entry.concept_id, CODED_SECTION)
            findings.append(
                Finding(
                    concept_id=nodes.get(entry.concept_id, entry.concept_id),
                    assertion=assertion_of(entry.assertion, entry.experiencer),
                    confidence=entry.confidence,
                    provenance=span,
                )
            )
        for lab in self.labs:
            value = (
                "" if lab.value is None else f" = {lab.value}{' ' + lab.unit if lab.unit else ''}"
            )
            flag = f" ({lab.interpretation})" if lab.interpretation else ""
            line = f"lab {lab.code}{' ' + lab.name if lab.name else ''}{value}{flag}"
            span = add_line(line, 4, lab.code, LAB_SECTION)
            if lab.concept_id is None:
                continue
            word = "absent" if lab.interpretation == "normal" else "present"
            findings.append(
                Finding(
                    concept_id=nodes.get(lab.concept_id, lab.concept_id),
                    assertion=assertion_of(word),
                    provenance=span,
                )
            )
        return Report(id=report_id, text=text), tuple(findings)
