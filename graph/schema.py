"""The graph schema as data: one definition drives the store, the Cypher docs and the GNN.

Node labels, their properties, KG relation types (with the inverse name used when a path walks an
edge backwards), patient relation types, and the metagraph the GNN derives from them. A present
and an absent finding are different GNN edge types, never the same edge.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass

from graph.errors import SchemaError
from graph.records import Assertion, Certainty, ConceptKind, Experiencer, Polarity, Temporality

# ---------------------------------------------------------------- node labels and properties
# (name, type) with Cypher/LadybugDB types; the first property of each label is its primary key.
NODE_PROPERTIES: dict[str, tuple[tuple[str, str], ...]] = {
    "Concept": (
        ("id", "STRING"),
        ("name", "STRING"),
        ("kind", "STRING"),
        ("synonyms", "STRING[]"),
        ("xrefs", "STRING[]"),
        ("sources", "STRING[]"),
    ),
    "Patient": (("id", "STRING"), ("attributes", "STRING")),  # attributes: JSON text
    "Report": (("id", "STRING"), ("patient_id", "STRING"), ("text", "STRING"), ("date", "STRING")),
    "Image": (
        ("id", "STRING"),
        ("patient_id", "STRING"),
        ("modality", "STRING"),
        ("path", "STRING"),
    ),
    "Prediction": (
        ("id", "STRING"),
        ("patient_id", "STRING"),
        ("concept_id", "STRING"),
        ("probability", "DOUBLE"),
        ("model_id", "STRING"),
        ("rank", "INT64"),
        ("paths", "STRING"),  # JSON list of ExplanationPath, for display
        ("created", "STRING"),
        # JSON SectionSelection: the report sections the model read ("" or null: not recorded)
        ("input_sections", "STRING"),
        # the KG release the model ran on: sources and content hash ("" or null: not recorded)
        ("kg_release", "STRING"),
        # EXPLAINED_BY steps written with it: its path steps that were stored concepts then
        ("linked", "INT64"),
    ),
}
NODE_LABELS: tuple[str, ...] = tuple(NODE_PROPERTIES)


# ---------------------------------------------------------------- KG relations
@dataclass(frozen=True)
class RelationType:
    """A KG relation type between two ``Concept`` nodes."""

    name: str
    inverse: str  # how a path reads the edge walked from dst to src
    description: str


KG_RELATIONS: dict[str, RelationType] = {
    r.name: r
    for r in (
        RelationType("IS_A", "PARENT_OF", "subsumption (child IS_A parent)"),
        RelationType("HAS_FINDING", "FINDING_OF", "disease has a characteristic finding / sign"),
        RelationType("HAS_SYMPTOM", "SYMPTOM_OF", "disease has a symptom"),
        RelationType("HAS_PHENOTYPE", "PHENOTYPE_OF", "disease annotated with a phenotype (HPO)"),
        RelationType("FINDING_SITE", "SITE_OF", "finding or disease located at an anatomy"),
        RelationType("ASSOCIATED_MORPHOLOGY", "MORPHOLOGY_OF", "disease has a morphology"),
        RelationType("CAUSED_BY", "CAUSES", "disease or finding is due to another concept"),
        RelationType("ASSOCIATED_WITH", "ASSOCIATED_WITH", "any other association"),
    )
}

# Properties on every KG relation table. ``attributes`` is JSON text, and so is ``sources`` (a JSON
# list of the source releases, ``""`` for none; see :func:`encode_sources`): LadybugDB writes a
# STRING column about 8x faster than a STRING[] one (250k relations: 0.05 s vs 0.39 s), and
# relations are the bulk of a KG. Concepts keep their lists.
KG_RELATION_PROPERTIES: tuple[tuple[str, str], ...] = (
    ("sources", "STRING"),
    ("weight", "DOUBLE"),
    ("negated", "BOOLEAN"),
    ("attributes", "STRING"),
)


def encode_sources(sources: Iterable[str]) -> str:
    """The stored form of a relation's ``sources``: a JSON list, ``""`` for none."""
    values = list(sources)
    return json.dumps(values) if values else ""


def decode_sources(value: object) -> tuple[str, ...]:
    """A relation's ``sources`` as stored (JSON text; a list or plain text written by hand)."""
    if not value:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    text = str(value)
    if text.startswith("["):
        try:
            decoded = json.loads(text)
        except ValueError:
            return (text,)
        if isinstance(decoded, list):
            return tuple(str(v) for v in decoded)
    return (text,)


def encode_sections(sections: Iterable[str | None]) -> str:
    """The stored ``sections`` of a patient ``HAS_FINDING``: a sorted JSON list of the mentions'
    sections (``null`` for unknown, last), ``""`` for none (image findings only)."""
    values = set(sections)
    named = sorted(v for v in values if v is not None)
    return json.dumps(named + [None] * (None in values)) if values else ""


# ---------------------------------------------------------------- patient relations
@dataclass(frozen=True)
class PatientRelationType:
    """A relation of the patient graph, with fixed endpoint labels and properties."""

    name: str
    src: str
    dst: str
    properties: tuple[tuple[str, str], ...] = ()


FINDING_PROPERTIES = (
    ("polarity", "STRING"),
    ("certainty", "STRING"),
    ("temporality", "STRING"),
    ("experiencer", "STRING"),
    ("confidence", "DOUBLE"),
)

PATIENT_RELATIONS: dict[str, PatientRelationType] = {
    r.name: r
    for r in (
        PatientRelationType("HAS_REPORT", "Patient", "Report"),
        PatientRelationType("HAS_IMAGE", "Patient", "Image"),
        PatientRelationType(
            "MENTIONS",
            "Report",
            "Concept",
            FINDING_PROPERTIES
            + (("section", "STRING"), ("sentence", "STRING"), ("start", "INT64"), ("end", "INT64")),
        ),
        PatientRelationType(
            "SHOWS",
            "Image",
            "Concept",
            # ``scope`` in_scope / unverified / out_of_scope ("" or null: scored before the
            # checks); ``in_scope`` true only for in_scope (null when unchecked), for filtering;
            # ``scope_reason`` why; ``ood_score`` pixel OOD score / threshold (> 1 flagged).
            FINDING_PROPERTIES
            + (
                ("probability", "DOUBLE"),
                ("model_id", "STRING"),
                ("scope", "STRING"),
                ("in_scope", "BOOLEAN"),
                ("scope_reason", "STRING"),
                ("ood_score", "DOUBLE"),
            ),
        ),
        # Shares the name (and, in LadybugDB, the table) with the KG's disease HAS_FINDING
        # relation: queries that walk KG paths must keep to Concept nodes (see ``concept_only``).
        # ``sources``: the documents (report and image ids) as a JSON list, like KG relations;
        # ``sections``: the report sections of the mentions behind the edge, a sorted JSON list
        # (null for a mention of unknown section; "" when only images show it, or stored before
        # sections were kept).
        PatientRelationType(
            "HAS_FINDING",
            "Patient",
            "Concept",
            FINDING_PROPERTIES + (("sources", "STRING"), ("sections", "STRING")),
        ),
        PatientRelationType("DIAGNOSED_WITH", "Patient", "Concept"),
        PatientRelationType("HAS_PREDICTION", "Patient", "Prediction"),
        PatientRelationType("PREDICTS", "Prediction", "Concept"),
        # Concepts on the explanation paths of a prediction: path index and position on it.
        PatientRelationType(
            "EXPLAINED_BY", "Prediction", "Concept", (("path", "INT64"), ("step", "INT64"))
        ),
    )
}

ALL_RELATION_TYPES: frozenset[str] = frozenset(KG_RELATIONS) | frozenset(PATIENT_RELATIONS)


def relation_tables() -> dict[str, tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]]:
    """Each relation table: its ``(src_label, dst_label)`` pairs and the union of its properties.

    A name used both in the KG and in the patient graph (``HAS_FINDING``) becomes one table with
    both endpoint pairs; properties the other pair lacks are left null.
    """
    tables: dict[str, tuple[list[tuple[str, str]], dict[str, str]]] = {}
    for name in KG_RELATIONS:
        tables[name] = ([("Concept", "Concept")], dict(KG_RELATION_PROPERTIES))
    for spec in PATIENT_RELATIONS.values():
        pairs, props = tables.setdefault(spec.name, ([], {}))
        pairs.append((spec.src, spec.dst))
        for prop, prop_type in spec.properties:
            props.setdefault(prop, prop_type)
    return {name: (tuple(pairs), tuple(props.items())) for name, (pairs, props) in tables.items()}


def check_label(label: str) -> str:
    """Return ``label`` if the schema defines it, else raise :class:`SchemaError`."""
    if label not in NODE_PROPERTIES:
        raise SchemaError(f"unknown node label {label!r}; expected one of {list(NODE_LABELS)}")
    return label


def check_relation_type(name: str) -> str:
    """Return ``name`` if it is a KG or patient relation type, else raise :class:`SchemaError`."""
    if name not in ALL_RELATION_TYPES:
        raise SchemaError(
            f"unknown relation type {name!r}; expected one of {sorted(ALL_RELATION_TYPES)}"
        )
    return name


def inverse_name(relation: str) -> str:
    """Name of a KG relation walked backwards (``HAS_FINDING`` -> ``FINDING_OF``)."""
    return (
        KG_RELATIONS[check_relation_type(relation)].inverse
        if relation in KG_RELATIONS
        else relation
    )


# ---------------------------------------------------------------- GNN metagraph
PATIENT_NODE_TYPE = "patient"

# Patient -> concept edge types by assertion. Family findings do not describe the patient.
FINDING_EDGE_TYPES: tuple[str, ...] = (
    "has_finding_present",
    "has_finding_possible",
    "has_finding_absent",
    "has_finding_historical",
)


def finding_edge_relation(assertion: Assertion) -> str | None:
    """GNN edge relation for a patient finding, or ``None`` when it must not link the patient."""
    if assertion.experiencer is Experiencer.FAMILY:
        return None
    if assertion.polarity is Polarity.ABSENT:
        return "has_finding_absent"
    if assertion.temporality is Temporality.HISTORICAL:
        return "has_finding_historical"
    if assertion.certainty is Certainty.POSSIBLE:
        return "has_finding_possible"
    return "has_finding_present"


def concept_node_type(kind: ConceptKind | str) -> str:
    """GNN node type of a concept kind (the kind's value)."""
    return ConceptKind(kind).value


EdgeType = tuple[str, str, str]


def metagraph(kg_edge_kinds: set[tuple[str, str, str]] | None = None) -> list[EdgeType]:
    """Edge types of the heterogeneous graph, in a stable order.

    Args:
        kg_edge_kinds: ``(src_kind, relation, dst_kind)`` triples present in the KG; when ``None``
            every kind pair for every KG relation is listed.

    Returns:
        Patient finding edges (one per finding relation and concept kind), each KG edge type, and
        the reverse of every edge type (``rev_<relation>``) so messages flow both ways.
    """
    kinds = [k.value for k in ConceptKind]
    forward: list[EdgeType] = [
        (PATIENT_NODE_TYPE, rel, kind) for rel in FINDING_EDGE_TYPES for kind in kinds
    ]
    if kg_edge_kinds is None:
        kg_edge_kinds = {(a, r, b) for r in KG_RELATIONS for a in kinds for b in kinds}
    forward += sorted(kg_edge_kinds)
    return forward + [(dst, f"rev_{rel}", src) for src, rel, dst in forward]


def node_types() -> list[str]:
    """Node types of the heterogeneous graph: the patient plus one per concept kind."""
    return [PATIENT_NODE_TYPE] + [k.value for k in ConceptKind]
