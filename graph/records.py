"""Typed records that cross module boundaries (pydantic v2, ``extra="forbid"``, frozen).

See ``../shared/ARCHITECTURE.md`` ("Records"). Concept ids are CURIEs (``UMLS:C0018800``,
``SNOMEDCT:233604007``, ``HP:0002090``, ``DOID:552``); relation types come from
:mod:`graph.schema` and are checked when a record is built.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

CURIE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*:[^\s]+$")


class Record(BaseModel):
    """Base of all records: unknown fields are errors, instances are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def check_curie(value: str) -> str:
    """Return ``value`` if it is a CURIE (``PREFIX:local``), else raise ``ValueError``."""
    if not isinstance(value, str) or not CURIE_RE.match(value):
        raise ValueError(f"not a CURIE (PREFIX:id): {value!r}")
    return value


Curie = Annotated[str, Field(min_length=3, max_length=200)]


class ConceptKind(StrEnum):
    DISEASE = "disease"
    FINDING = "finding"
    SYMPTOM = "symptom"
    ANATOMY = "anatomy"
    PROCEDURE = "procedure"
    SUBSTANCE = "substance"
    ORGANISM = "organism"
    OTHER = "other"


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


class TextSpan(Record):
    """Where in a report a finding was read."""

    kind: Literal["text"] = "text"
    doc_id: str
    section: str = ""
    sentence: str = ""
    start: int = Field(ge=0)
    end: int = Field(ge=0)
    text: str


class ImageEvidence(Record):
    """Which image and model produced a finding, and with what probability."""

    kind: Literal["image"] = "image"
    image_id: str
    model_id: str
    probability: float = Field(ge=0.0, le=1.0)


Provenance = Annotated[TextSpan | ImageEvidence, Field(discriminator="kind")]


class Finding(Record):
    """A finding linked to a KG concept, with its assertion and where it came from."""

    concept_id: Curie
    assertion: Assertion = Field(default_factory=Assertion)
    confidence: float = Field(default=1.0, ge=0.0, le=1.0)
    provenance: Provenance


class Report(Record):
    """A free-text report of a patient."""

    id: str = Field(min_length=1)
    text: str
    date: str | None = None


class Image(Record):
    """An image of a patient (already de-identified; ``path`` is local and optional)."""

    id: str = Field(min_length=1)
    modality: str = ""
    path: str | None = None


class Patient(Record):
    """A patient with reports, images, extracted findings, known labels and attributes."""

    id: str = Field(min_length=1, max_length=200)
    reports: tuple[Report, ...] = ()
    images: tuple[Image, ...] = ()
    findings: tuple[Finding, ...] = ()
    labels: tuple[str, ...] = ()  # concept ids of known diagnoses (DIAGNOSED_WITH)
    attributes: dict[str, Any] = Field(default_factory=dict)


class PathStep(Record):
    """One step of an explanation: ``src -[relation]-> dst`` with its evidence."""

    src: str
    relation: str
    dst: str
    evidence: str = ""  # a sentence, "image P=0.91 (model)", or "KG: DOID release"


class ExplanationPath(Record):
    """A walk from the patient through findings and KG relations to a diagnosis."""

    nodes: tuple[str, ...]
    relations: tuple[str, ...]
    score: float
    evidence: tuple[str, ...] = ()
    node_names: tuple[str, ...] = ()

    def render(self) -> str:
        """``patient P007 -HAS_FINDING-> cardiomegaly -FINDING_OF-> heart failure``."""
        names = self.node_names or self.nodes
        parts = [names[0]]
        for relation, name in zip(self.relations, names[1:], strict=True):
            parts.append(f"-{relation}-> {name}")
        return " ".join(parts)


class Diagnosis(Record):
    """A candidate diagnosis with its probability and the paths that explain it."""

    concept_id: Curie
    name: str
    probability: float = Field(ge=0.0, le=1.0)
    paths: tuple[ExplanationPath, ...] = ()
    model_id: str = ""
