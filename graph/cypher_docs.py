"""The researchers' Cypher guide, tied to the code: schema section generated, examples parsed.

``docs/cypher.md`` holds a section between :data:`BEGIN` and :data:`END` that is exactly
:func:`schema_markdown` (a test keeps it so; ``python -m graph.cypher_docs`` rewrites it), and
example queries, each a ``cypher`` block after a marker comment::

    <!-- query: cohort_by_finding; params: {"finding": "UMLS:C0032227"}; expect: P001 -->

:func:`guide_queries` reads them back so tests and the notebook run the very text researchers
read. A ``cypher-neo4j`` block right after an example is its Neo4j form, where the dialects differ.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.errors import InputError
from graph.records import ConceptKind
from graph.schema import (
    FINDING_EDGE_TYPES,
    KG_RELATION_PROPERTIES,
    KG_RELATIONS,
    NODE_PROPERTIES,
    PATIENT_RELATIONS,
)
from graph.settings import PROJECT_ROOT

GUIDE_PATH = PROJECT_ROOT / "docs" / "cypher.md"
BEGIN = "<!-- BEGIN GENERATED SCHEMA (python -m graph.cypher_docs) -->"
END = "<!-- END GENERATED SCHEMA -->"

# LadybugDB column types and what Neo4j stores for them.
NEO4J_TYPES = {
    "STRING": "String",
    "STRING[]": "List<String>",
    "DOUBLE": "Float",
    "INT64": "Integer",
    "BOOLEAN": "Boolean",
}
NODE_NOTES = {
    "Concept": "`kind` is one of " + ", ".join(kind.value for kind in ConceptKind),
    "Patient": "`attributes` is JSON text (age, sex, ...)",
    "Report": "`id` is `<patient id>/<report id>`",
    "Image": "`id` is `<patient id>/<image id>`",
    "Prediction": "`id` is `<patient>/<model>/<concept>`; `rank` 1 is the most probable; "
    "`paths` is the explanation paths as JSON; `input_sections` the report sections whose "
    'findings the model read, as JSON (`{"include": null, "exclude": ["impression"], '
    '"unknown": true}`: every section but the impression; empty: not recorded); `kg_release` the '
    "KG release the model ran on, its sources and content hash (empty: not recorded); `linked` "
    "the number of its `EXPLAINED_BY` steps (the path steps that were stored concepts when it "
    "was saved; null: saved by an older kgdx)",
}


def _props(props: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"`{name}` {kind}" for name, kind in props) or "(none)"


def schema_markdown() -> str:
    """The graph schema as Markdown tables, generated from :mod:`graph.schema`."""
    lines = [
        "### Node labels",
        "",
        "| label | properties (LadybugDB type) | notes |",
        "|---|---|---|",
    ]
    for label, props in NODE_PROPERTIES.items():
        lines.append(f"| `{label}` | {_props(props)} | key `{props[0][0]}`; {NODE_NOTES[label]} |")
    lines += [
        "",
        "### Knowledge-graph relations, `(:Concept)-[r]->(:Concept)`",
        "",
        f"Every KG relation carries {_props(KG_RELATION_PROPERTIES)} "
        '(`sources` is a JSON list of source releases as text, e.g. `["HPO:2025-01-16"]`, '
        "so `r.sources CONTAINS 'HPO:'` filters by source; `attributes` is JSON text; `negated` "
        "marks a source statement that the relation does NOT hold).",
        "",
        "| type | read backwards | meaning |",
        "|---|---|---|",
    ]
    for rel in KG_RELATIONS.values():
        lines.append(f"| `{rel.name}` | `{rel.inverse}` | {rel.description} |")
    lines += [
        "",
        "### Patient-graph relations",
        "",
        "| type | from | to | properties |",
        "|---|---|---|---|",
    ]
    for rel in PATIENT_RELATIONS.values():
        lines.append(f"| `{rel.name}` | `{rel.src}` | `{rel.dst}` | {_props(rel.properties)} |")
    shared = sorted(set(KG_RELATIONS) & set(PATIENT_RELATIONS))
    if shared:
        names = ", ".join(f"`{n}`" for n in shared)
        lines += [
            "",
            f"{names} links both `(:Concept)->(:Concept)` (knowledge graph) and "
            "`(:Patient)->(:Concept)` (patient findings): a pattern that walks KG paths must keep "
            "to `Concept` nodes, e.g. `(a:Concept)-[:HAS_FINDING]->(b:Concept)`, or in a "
            "variable-length walk `(e, n | WHERE label(n) = 'Concept')` (LadybugDB) / "
            "`WHERE all(n IN nodes(p) WHERE n:Concept)` (Neo4j). On a patient's edge, "
            "`sources` is the JSON list of the report and image ids the finding came from, and "
            '`sections` the JSON list of the report sections of its mentions (`["findings", '
            '"impression"]`; `null` in the list for a mention under no header; empty when only '
            "an image shows it or it was stored before sections were kept).",
            "",
            "A `MENTIONS` edge's `section` is the report section the mention sits under "
            "(`findings`, `impression`, `indication`, `history`, `comparison`, ...), null when "
            "no header precedes it. The impression often names the diagnosis itself "
            '("IMPRESSION: CHF"): leave it out of features for a diagnosis task, as the GNN '
            "does by default.",
        ]
    lines += [
        "",
        "### Property types in Neo4j",
        "",
        "| LadybugDB | Neo4j |",
        "|---|---|",
        *(f"| `{k}` | `{v}` |" for k, v in NEO4J_TYPES.items()),
        "",
        "### GNN edge types of patient findings",
        "",
        "The GNN reads each `HAS_FINDING` edge as one of "
        + ", ".join(f"`{name}`" for name in FINDING_EDGE_TYPES)
        + " (from `polarity`, `certainty`, `temporality`; family findings are left out), so a "
        "present and an absent finding are never the same edge type.",
    ]
    return "\n".join(lines)


def section_between(text: str, begin: str, end: str) -> str:
    """The text between two generated-section markers of a doc.

    Raises:
        InputError: the markers are missing or out of order.
    """
    start, stop = text.find(begin), text.find(end)
    if start < 0 or stop < start:
        raise InputError(f"the guide has no '{begin}' ... '{end}' section")
    return text[start + len(begin) : stop].strip("\n")


def rewrite_section(path: Path, begin: str, end: str, fresh: str) -> bool:
    """Replace a doc's generated section with ``fresh``; returns whether the file changed."""
    text = path.read_text(encoding="utf-8")
    if section_between(text, begin, end) == fresh:
        return False
    head, tail = text.split(begin, 1)[0], text.split(end, 1)[1]
    path.write_text(f"{head}{begin}\n{fresh}\n{end}{tail}", encoding="utf-8")
    return True


def generated_section(text: str) -> str:
    """The generated schema section of the Cypher guide."""
    return section_between(text, BEGIN, END)


def write_schema(path: Path = GUIDE_PATH) -> bool:
    """Rewrite the generated section of the guide at ``path``; returns whether it changed."""
    return rewrite_section(path, BEGIN, END, schema_markdown())


@dataclass(frozen=True)
class GuideQuery:
    """One example of the guide: its Cypher (LadybugDB), Neo4j form if different, parameters."""

    name: str
    title: str
    cypher: str
    params: dict[str, Any] = field(default_factory=dict)
    expect: tuple[str, ...] = ()
    neo4j: str | None = None


_MARKER = re.compile(r"<!--\s*query:\s*(?P<body>.*?)-->", re.S)
_BLOCK = re.compile(r"```(?P<lang>cypher(?:-neo4j)?)\n(?P<code>.*?)```", re.S)
_TITLE = re.compile(r"^#+\s+(.*)$", re.M)


def _marker_fields(body: str) -> tuple[str, dict[str, Any], tuple[str, ...]]:
    parts = [p.strip() for p in body.split(";")]
    name, params, expect = parts[0], {}, ()
    for part in parts[1:]:
        key, _, value = part.partition(":")
        if key.strip() == "params":
            params = json.loads(value)
        elif key.strip() == "expect":
            expect = tuple(v.strip() for v in value.split("|") if v.strip())
    return name, params, expect


def guide_queries(path: Path = GUIDE_PATH) -> list[GuideQuery]:
    """The guide's example queries in order.

    Raises:
        InputError: a marker without a ``cypher`` block after it, or a duplicate name.
    """
    text = path.read_text(encoding="utf-8")
    markers = list(_MARKER.finditer(text))
    queries: list[GuideQuery] = []
    for index, marker in enumerate(markers):
        stop = markers[index + 1].start() if index + 1 < len(markers) else len(text)
        blocks = list(_BLOCK.finditer(text, marker.end(), stop))
        name, params, expect = _marker_fields(marker.group("body"))
        if not blocks or blocks[0].group("lang") != "cypher":
            raise InputError(f"guide query {name!r} has no ```cypher block after its marker")
        titles = _TITLE.findall(text, 0, marker.start())
        neo4j = next(
            (b.group("code") for b in blocks[1:] if b.group("lang") == "cypher-neo4j"), None
        )
        queries.append(
            GuideQuery(
                name=name,
                title=titles[-1] if titles else name,
                cypher=blocks[0].group("code").strip(),
                params=params,
                expect=expect,
                neo4j=neo4j.strip() if neo4j else None,
            )
        )
    names = [q.name for q in queries]
    if len(set(names)) != len(names):
        raise InputError(f"duplicate guide query names in {path}")
    return queries


if __name__ == "__main__":  # python -m graph.cypher_docs [guide.md]
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else GUIDE_PATH
    print("updated" if write_schema(target) else "up to date", target)
