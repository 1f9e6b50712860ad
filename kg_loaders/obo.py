"""OBO 1.4 flat files (``hp.obo``, ``symp.obo``, ``doid.obo``), streamed stanza by stanza.

OBO is a line format (``tag: value`` inside ``[Term]`` stanzas). A file of ordinary size (up to
64 MB: HPO, DO, SYMP) is parsed once and its terms kept for the build's passes; a bigger one is
streamed a stanza at a time, keeping only the id -> parents map that gives each term the kind of
the ontology root it descends from. ``pronto`` parses the same files into a full in-memory ontology (and is used in
the tests as an independent check of this reader), but takes seconds and the whole file's memory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from graph.records import Concept, ConceptKind
from kg_loaders.base import RelationRow, RelationTable, SourceReader, open_text
from kg_loaders.curies import normalize_curie

# OBO relationship names (and their RO ids) -> schema type. is_a is the OBO subsumption tag.
OBO_RELATIONS: dict[str, str | None] = {
    "is_a": "IS_A",
    "has_symptom": "HAS_SYMPTOM",
    "RO:0002452": "HAS_SYMPTOM",
    "has_phenotype": "HAS_PHENOTYPE",
    "RO:0002200": "HAS_PHENOTYPE",
    "located_in": "FINDING_SITE",
    "RO:0001025": "FINDING_SITE",
    "disease_has_location": "FINDING_SITE",
    "RO:0004026": "FINDING_SITE",
    "has_material_basis_in": "CAUSED_BY",
    "RO:0004019": "CAUSED_BY",
    "disease_has_basis_in": "CAUSED_BY",
    "RO:0004020": "CAUSED_BY",
    "has_allergic_trigger": "CAUSED_BY",
    "disease_has_feature": "HAS_FINDING",
    "RO:0004029": "HAS_FINDING",
    "derives_from": "ASSOCIATED_WITH",
    "transmitted_by": "ASSOCIATED_WITH",
    "part_of": "ASSOCIATED_WITH",
    "BFO:0000050": "ASSOCIATED_WITH",
}

# Kinds by CURIE prefix, and by root term (a term takes the kind of its nearest listed ancestor).
PREFIX_KINDS: dict[str, ConceptKind] = {
    "HP": ConceptKind.OTHER,  # modes of inheritance, blood groups, past medical history ...
    "DOID": ConceptKind.DISEASE,
    "SYMP": ConceptKind.SYMPTOM,
}
ROOT_KINDS: dict[str, ConceptKind] = {
    "HP:0000118": ConceptKind.FINDING,  # Phenotypic abnormality
    # Qualifiers of a phenotype, never one themselves: laterality, severity, spatial pattern,
    # onset and course ("Right", "Mild", "Focal", "Chronic") and frequency ("Excluded").
    "HP:0012823": ConceptKind.QUALIFIER,  # Clinical modifier
    "HP:0040279": ConceptKind.QUALIFIER,  # Frequency
}

_SYNONYM = re.compile(r'^"((?:[^"\\]|\\.)*)"\s*(EXACT|RELATED|BROAD|NARROW)?\s*([\w:\-]*)')
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")
_OBO_DATE = re.compile(r"^(\d{2}):(\d{2}):(\d{4})")  # dd:MM:yyyy
_KEPT_SCOPES = {"EXACT", "RELATED", None}
CACHE_BYTES = 64 << 20  # OBO files up to this size (uncompressed) are parsed once


@dataclass
class OboTerm:
    """One ``[Term]`` stanza, as parsed."""

    id: str
    line_no: int
    name: str = ""
    synonyms: list[str] = field(default_factory=list)
    xrefs: list[str] = field(default_factory=list)
    parents: list[str] = field(default_factory=list)
    relationships: list[tuple[str, str]] = field(default_factory=list)
    obsolete: bool = False


def _strip_comment(value: str) -> str:
    """Drop a trailing ``! comment`` and ``{qualifiers}`` from an id-valued tag."""
    value = value.split(" !", 1)[0]
    if "{" in value:
        value = value.split("{", 1)[0]
    return value.strip()


class OboReader(SourceReader):
    """Read an OBO ontology.

    Args:
        path: the ``.obo`` file (``.obo.gz`` works too).
        name: the source name used in provenance (``HPO``, ``SYMP``, ``DOID``).
        prefix_kinds / root_kinds: how terms get their :class:`ConceptKind`.
        lenient: skip malformed lines instead of failing.
    """

    name = "OBO"

    def __init__(
        self,
        path: Path | str,
        *,
        name: str = "OBO",
        prefix_kinds: Mapping[str, ConceptKind] = PREFIX_KINDS,
        root_kinds: Mapping[str, ConceptKind] = ROOT_KINDS,
        lenient: bool = False,
    ) -> None:
        super().__init__(path, lenient=lenient)
        self.name = name
        self.stats.source = name
        self.prefix_kinds = dict(prefix_kinds)
        self.root_kinds = dict(root_kinds)
        self.table = RelationTable(OBO_RELATIONS, self.stats)
        self._header: dict[str, str] | None = None
        self._parents: dict[str, list[str]] | None = None
        self._kinds: dict[str, tuple[float, ConceptKind | None]] = {}
        self._terms: list[OboTerm] | None = None

    # ---------------------------------------------------------------- parsing
    def header(self) -> dict[str, str]:
        """The header tags before the first stanza (first value of each tag)."""
        if self._header is None:  # built whole, then published (readers may share threads)
            header: dict[str, str] = {}
            with open_text(self.path) as handle:
                for line in handle:
                    if line.startswith("["):
                        break
                    tag, sep, value = line.partition(":")
                    if sep and tag not in header:
                        header[tag.strip()] = value.strip()
            self._header = header
        return self._header

    def terms(self) -> Iterator[OboTerm]:
        """The ``[Term]`` stanzas (obsolete ones included, flagged).

        A file of up to :data:`CACHE_BYTES` (``hp.obo`` is 10 MB) is parsed once and its terms
        kept for the kind, concept and relation passes; a bigger one is streamed each time.
        """
        if self._terms is not None:
            return iter(self._terms)
        size = self.path.stat().st_size * (5 if self.path.suffix == ".gz" else 1)
        if size > CACHE_BYTES:
            return self._parse()
        self._terms = list(self._parse())
        return iter(self._terms)

    def _parse(self) -> Iterator[OboTerm]:
        term: OboTerm | None = None
        in_term = False
        with open_text(self.path) as handle:
            for line_no, raw in enumerate(handle, 1):
                line = raw.strip()
                if not line or line.startswith("!"):
                    continue
                if line.startswith("["):
                    if term is not None:
                        yield term
                    term = None
                    in_term = line == "[Term]"
                    if not in_term and not line.endswith("]"):
                        self.bad_line(self.path, line_no, f"bad stanza header {line!r}")
                    continue
                if not in_term:
                    continue
                tag, sep, value = line.partition(":")
                if not sep:
                    self.bad_line(self.path, line_no, f"expected 'tag: value', got {line!r}")
                    continue
                value = value.strip()
                if tag == "id":
                    if normalize_curie(value) is None:
                        self.bad_line(self.path, line_no, f"term id is not PREFIX:id: {value!r}")
                        in_term = False
                        continue
                    term = OboTerm(id=normalize_curie(value) or value, line_no=line_no)
                    continue
                if term is None:
                    self.bad_line(self.path, line_no, f"'{tag}' before the term's id")
                    continue
                self._add_tag(term, tag, value, line_no)
        if term is not None:
            yield term

    def _add_tag(self, term: OboTerm, tag: str, value: str, line_no: int) -> None:
        if tag == "name":
            term.name = value
        elif tag == "synonym":
            match = _SYNONYM.match(value)
            if match is None:
                self.bad_line(self.path, line_no, f"synonym is not quoted: {value!r}")
            elif match.group(2) in _KEPT_SCOPES and match.group(3) != "obsolete_synonym":
                term.synonyms.append(match.group(1).replace('\\"', '"'))
        elif tag in ("xref", "alt_id"):
            curie = normalize_curie(_strip_comment(value).split(" ", 1)[0])
            if curie is not None:
                term.xrefs.append(curie)
        elif tag == "is_a":
            parent = normalize_curie(_strip_comment(value))
            if parent is None:
                self.bad_line(self.path, line_no, f"is_a target is not PREFIX:id: {value!r}")
            else:
                term.parents.append(parent)
        elif tag == "relationship":
            parts = _strip_comment(value).split()
            target = normalize_curie(parts[1]) if len(parts) >= 2 else None
            if target is None:
                self.bad_line(self.path, line_no, f"expected 'relationship: REL ID': {value!r}")
            else:
                term.relationships.append((parts[0], target))
        elif tag == "is_obsolete":
            term.obsolete = value.lower() == "true"

    # ---------------------------------------------------------------- records
    @property
    def version(self) -> str:
        header = self.header()
        for tag in ("data-version", "date"):
            value = header.get(tag, "")
            if match := _DATE.search(value):
                return match.group(1)
            if match := _OBO_DATE.match(value):
                return f"{match.group(3)}-{match.group(2)}-{match.group(1)}"
        return header.get("data-version", "unknown") or "unknown"

    def kind_of(self, term_id: str) -> ConceptKind:
        """The kind of the nearest ancestor listed in ``root_kinds`` (breadth-first: the first
        one met, parents in file order), else the prefix's kind."""
        found = self._root_of(term_id)[1]
        if found is None:
            return self.prefix_kinds.get(term_id.partition(":")[0], ConceptKind.OTHER)
        return found

    def _root_of(self, term_id: str) -> tuple[float, ConceptKind | None]:
        """(distance, kind) of the nearest listed root, memoised over the whole DAG.

        A node's answer is the best of its parents' plus one, the first parent winning ties:
        that is the root a breadth-first walk meets first. Iterative, so deep ontologies do not
        hit the recursion limit; a cycle (malformed file) ends the walk at the repeated node.
        """
        memo = self._kinds
        if term_id in memo:
            return memo[term_id]
        parents = self._parent_map()
        stack = [term_id]
        on_path: set[str] = set()
        while stack:
            node = stack[-1]
            if node in memo:
                stack.pop()
                continue
            if node in self.root_kinds:
                memo[node] = (0, self.root_kinds[node])
                stack.pop()
                continue
            pending = [p for p in parents.get(node, ()) if p not in memo and p not in on_path]
            if pending and node not in on_path:
                on_path.add(node)
                stack.extend(reversed(pending))
                continue
            best: tuple[float, ConceptKind | None] = (math.inf, None)
            for parent in parents.get(node, ()):
                distance, kind = memo.get(parent, (math.inf, None))
                if kind is not None and distance + 1 < best[0]:
                    best = (distance + 1, kind)
            memo[node] = best
            on_path.discard(node)
            stack.pop()
        return memo[term_id]

    def _parent_map(self) -> dict[str, list[str]]:
        """Term id -> is_a parents, from a light pre-pass that reads only ``id`` and ``is_a``
        lines (malformed lines are reported by the full passes)."""
        if self._parents is None and self._terms is not None:
            self._parents = {term.id: term.parents for term in self._terms}
        if self._parents is None:
            parents: dict[str, list[str]] = {}
            current: list[str] | None = None
            in_term = False
            with open_text(self.path) as handle:
                for line in handle:
                    if line.startswith("["):
                        in_term, current = line.startswith("[Term]"), None
                    elif in_term and line.startswith("id:"):
                        current = parents.setdefault(normalize_curie(line[3:]) or "", [])
                    elif in_term and current is not None and line.startswith("is_a:"):
                        parent = normalize_curie(_strip_comment(line[5:]))
                        if parent is not None:
                            current.append(parent)
            self._parents = parents
        return self._parents

    def concepts(self) -> Iterator[Concept]:
        provenance = (self.provenance,)
        for term in self.terms():
            if term.obsolete:
                self.stats.skipped_ids.add(term.id)
                continue
            name = term.name or term.id
            yield Concept(
                id=term.id,
                name=name,
                kind=self.kind_of(term.id),
                synonyms=tuple(dict.fromkeys(s for s in term.synonyms if s and s != name)),
                xrefs=tuple(dict.fromkeys(x for x in term.xrefs if x != term.id)),
                sources=provenance,
            )

    def relation_rows(self) -> Iterator[RelationRow]:
        is_a = self.table.map("is_a")
        for term in self.terms():
            if term.obsolete:
                continue
            for parent in term.parents:
                yield (term.id, parent, is_a, False, 1.0, None)
            for rel, target in term.relationships:
                rel_type = self.table.map(rel)
                if rel_type is not None:
                    yield (term.id, target, rel_type, False, 1.0, None)
