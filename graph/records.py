"""Typed records that cross module boundaries (pydantic v2, ``extra="forbid"``, frozen).

See ``../shared/ARCHITECTURE.md`` ("Records"). Concept ids are CURIEs (``UMLS:C0018800``,
``SNOMEDCT:233604007``, ``HP:0002090``, ``DOID:552``); relation types come from
:mod:`graph.schema` and are checked when a record is built; the field checks themselves are in
:mod:`graph.field_checks`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator

from graph.field_checks import (  # also importable from here, as they were before the split
    ID_MAX_LENGTH,
    ID_PATTERN,
    ID_RULE,
    check_curie,
    check_id,
    check_json_value,
    check_section,
    check_text,
)

Id = Annotated[
    str,
    AfterValidator(check_id),
    Field(
        json_schema_extra={"pattern": ID_PATTERN, "minLength": 1, "maxLength": ID_MAX_LENGTH},
        description=f"An id: {ID_RULE}",
    ),
]
Text = Annotated[str, AfterValidator(check_text)]


class Record(BaseModel):
    """Base of all records: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


Curie = Annotated[str, Field(min_length=3, max_length=200), AfterValidator(check_text)]


class ConceptKind(StrEnum):
    DISEASE = "disease"
    FINDING = "finding"
    SYMPTOM = "symptom"
    ANATOMY = "anatomy"
    PROCEDURE = "procedure"
    SUBSTANCE = "substance"
    ORGANISM = "organism"
    OTHER = "other"
    # Qualifiers of a finding, never a finding themselves: laterality, severity, spatial
    # pattern, frequency, course ("Right", "Mild", "Focal", "Excluded", "Chronic"); what the
    # loaders give HPO's Clinical modifier / Frequency / Clinical course branches, UMLS's
    # qualitative, quantitative, spatial, temporal and functional concepts and SNOMED CT's
    # qualifier values.
    QUALIFIER = "qualifier"


class Polarity(StrEnum):
    PRESENT = "present"
    ABSENT = "absent"


class Certainty(StrEnum):
    DEFINITE = "definite"
    POSSIBLE = "possible"


class Temporality(StrEnum):
    CURRENT = "current"
    HISTORICAL = "historical"


class Experiencer(StrEnum):
    PATIENT = "patient"
    FAMILY = "family"


class Concept(Record):
    """A knowledge-graph concept; ``xrefs`` hold its ids in other sources (CURIEs)."""

    id: Curie
    name: str = Field(min_length=1)
    kind: ConceptKind = ConceptKind.OTHER
    synonyms: tuple[str, ...] = ()
    xrefs: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @field_validator("id")
    @classmethod
    def _curie(cls, value: str) -> str:
        return check_curie(value)


class Relation(Record):
    """A typed KG relation ``src -[type]-> dst``.

    ``negated`` marks a source statement that the relation does NOT hold (HPO ``NOT``);
    ``attributes`` keep source-specific qualifiers (frequency, evidence code) as strings.
    """

    src: Curie
    dst: Curie
    type: str
    sources: tuple[str, ...] = ()
    weight: float = 1.0
    negated: bool = False
    attributes: dict[str, str] = Field(default_factory=dict)

    @field_validator("src", "dst")
    @classmethod
    def _curie(cls, value: str) -> str:
        return check_curie(value)

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        from graph.schema import KG_RELATIONS

        if value not in KG_RELATIONS:
            raise ValueError(
                f"unknown relation type {value!r}; expected one of {sorted(KG_RELATIONS)}"
            )
        return value


class Assertion(Record):
    """How a finding is asserted: polarity, certainty, temporality, experiencer."""

    polarity: Polarity = Polarity.PRESENT
    certainty: Certainty = Certainty.DEFINITE
    temporality: Temporality = Temporality.CURRENT
    experiencer: Experiencer = Experiencer.PATIENT

    @property
    def is_current_positive(self) -> bool:
        """True for a present, current finding of the patient (definite or possible)."""
        return (
            self.polarity is Polarity.PRESENT
            and self.temporality is Temporality.CURRENT
            and self.experiencer is Experiencer.PATIENT
        )

    @property
    def status(self) -> str:
        """The assertion in one word: ``absent`` (negated or resolved), else ``possible``
        (hedged, requested or hypothetical), else ``historical``, else ``present``. Who it is
        about is :attr:`experiencer`, apart from it."""
        if self.polarity is Polarity.ABSENT:
            return "absent"
        if self.certainty is Certainty.POSSIBLE:
            return "possible"
        if self.temporality is Temporality.HISTORICAL:
            return "historical"
        return "present"


SectionName = Annotated[str, AfterValidator(check_section)]


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


class TextSpan(Record):
    """Where in a report a finding was read.

    ``section`` is the section category the mention sits under (``findings``, ``impression``,
    ``indication``, ...); ``None`` when unknown: no header above it, or stored by a kgdx that did
    not keep sections. Tasks choose which sections feed them with :class:`SectionSelection`.
    """

    kind: Literal["text"] = "text"
    doc_id: Text
    section: Annotated[Text | None, BeforeValidator(_blank_is_none)] = None
    sentence: Text = ""
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: Text


ImageScope = Literal["in_scope", "unverified", "out_of_scope", ""]


class ImageEvidence(Record):
    """Which image and model produced a finding, with what probability, and whether the image
    was inside the model's scope (see ``extractors.image.scope``).

    ``scope``: ``in_scope`` (every check agrees with the model card), ``unverified`` (something
    could not be checked or looks unusual: scored, flagged), ``out_of_scope`` (the header says it
    is not what the model reads, scored only when forced; left out of diagnoses) or ``""`` (not
    checked: scored before the checks existed). ``scope_reason`` says why, ``ood_score`` is the
    pixel out-of-distribution score over its flag threshold (above 1: flagged).
    """

    kind: Literal["image"] = "image"
    image_id: Text
    model_id: Text
    probability: float = Field(ge=0.0, le=1.0)
    scope: ImageScope = ""
    scope_reason: Text = ""
    ood_score: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)

    @property
    def in_scope(self) -> bool | None:
        """True in scope, False flagged or out of scope, None not checked."""
        return None if not self.scope else self.scope == "in_scope"


Provenance = Annotated[TextSpan | ImageEvidence, Field(discriminator="kind")]


class Finding(Record):
    """A finding linked to a KG concept, with its assertion and where it came from."""

    concept_id: Curie
    assertion: Assertion = Field(default_factory=Assertion)
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    provenance: Provenance


class Report(Record):
    """A free-text report of a patient."""

    id: Id
    text: Text
    date: Text | None = None


class Image(Record):
    """An image of a patient (already de-identified; ``path`` is local and optional)."""

    id: Id
    modality: Text = ""
    path: Text | None = None


class Patient(Record):
    """A patient with reports, images, extracted findings, known labels and attributes."""

    id: Id
    reports: tuple[Report, ...] = ()
    images: tuple[Image, ...] = ()
    findings: tuple[Finding, ...] = ()
    labels: tuple[Text, ...] = ()  # concept ids of known diagnoses (DIAGNOSED_WITH)
    attributes: dict[str, Any] = Field(default_factory=dict)

    @field_validator("attributes")
    @classmethod
    def _json_attributes(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_json_value(value)


class PathStep(Record):
    """One step of an explanation: ``src -[relation]-> dst`` with its evidence."""

    src: Text
    relation: Text
    dst: Text
    evidence: Text = ""  # a sentence, "image P=0.91 (model)", or "KG: DOID release"


class ExplanationPath(Record):
    """A walk from the patient through findings and KG relations to a diagnosis."""

    nodes: tuple[Text, ...]
    relations: tuple[Text, ...]
    score: float = Field(allow_inf_nan=False)
    evidence: tuple[Text, ...] = ()
    node_names: tuple[Text, ...] = ()

    def render(self) -> str:
        """``patient P007 -HAS_FINDING-> cardiomegaly -FINDING_OF-> heart failure``."""
        names = self.node_names or self.nodes
        parts = [names[0]]
        for relation, name in zip(self.relations, names[1:], strict=True):
            parts.append(f"-{relation}-> {name}")
        return " ".join(parts)


class SectionSelection(Record):
    """Which report sections' findings feed a task (a model's input, an evaluation).

    Text findings are kept by the section of their mention; image findings have no section:
    they are kept unless their image was out of the model's scope (scored with ``--force``).
    :data:`graph.sections.FEATURE_SECTIONS` is the diagnosis default.

    Args:
        include: the sections to use; ``None``: every section not in ``exclude``.
        exclude: sections never used (e.g. ``impression``, where a report states its diagnosis).
        unknown: also use mentions whose section is not known (``TextSpan.section is None``).
    """

    include: tuple[SectionName, ...] | None = None
    exclude: tuple[SectionName, ...] = ()
    unknown: bool = True

    @field_validator("include", "exclude", mode="after")
    @classmethod
    def _sorted_names(cls, value: tuple[str | None, ...] | None) -> tuple[str, ...] | None:
        if value is None:
            return None
        if any(name is None for name in value):
            raise ValueError("an empty section name; use `unknown` for mentions of no section")
        return tuple(sorted(set(value)))  # type: ignore[arg-type]

    def admits(self, section: str | None) -> bool:
        """Whether a mention under ``section`` (``None``: unknown) is used."""
        if section is None or section == "":
            return self.unknown
        section = section.lower()
        if section in self.exclude:
            return False
        return self.include is None or section in self.include

    def keeps(self, finding: Finding) -> bool:
        """Whether ``finding`` is used: a text finding by its section, an image one unless its
        image was out of the model's scope."""
        provenance = finding.provenance
        if isinstance(provenance, TextSpan):
            return self.admits(provenance.section)
        return getattr(provenance, "scope", "") != "out_of_scope"

    def describe(self) -> str:
        """``all sections except impression, and mentions of unknown section``."""
        if self.include is None:
            text = "all sections"
            if self.exclude:
                text += " except " + ", ".join(self.exclude)
        else:
            kept = [name for name in self.include if name not in self.exclude]
            text = ("sections " + ", ".join(kept)) if kept else "no named section"
        return text + (", and mentions of unknown section" if self.unknown else "")


class Diagnosis(Record):
    """A candidate diagnosis with its probability and the paths that explain it.

    ``input_sections``: the report sections whose findings the model read (``None``: not
    recorded, e.g. a prediction stored by an older kgdx). ``kg_release``: the KG release the
    model ran on, its sources and content hash (``kgdx-chest-seed:2026-11 sha256:dd858b7ad0c1``;
    ``""``: not recorded).
    """

    concept_id: Curie
    name: Text
    probability: float = Field(ge=0.0, le=1.0)
    paths: tuple[ExplanationPath, ...] = ()
    model_id: Text = ""
    input_sections: SectionSelection | None = None
    kg_release: Text = ""
