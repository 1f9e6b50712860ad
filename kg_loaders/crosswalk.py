"""Merge concepts across sources through UMLS CUIs, and rewrite relations to the merged ids.

Two concepts are one node when they carry the same UMLS CUI, directly (a ``UMLS:C...`` id or
xref) or through a cross-reference: an id that a CUI-bearing concept lists as its only xref of
that prefix (DO's ``MIM:`` xref names the OMIM disease of an HPO annotation; UMLS's
``SNOMEDCT:`` atoms name a SNOMED CT concept). The merged node's id is the CUI (``UMLS:C...``);
every source id stays in its ``xrefs``.

A finding or symptom record that neither reaches a CUI (most Symptom Ontology terms have no
UMLS xref: ``SYMP:0000107`` "pleural effusion") joins the CUI node whose finding or symptom
record has the same preferred name (case and punctuation aside), when exactly one CUI has that
name (``via_name``). Diseases never join by name: an OMIM or Orphanet id must stay the id an
annotation names.

Memory: pass one keeps an id map (id -> CUI, and the xref aliases of CUI-bearing concepts); pass
two streams the concepts again and holds only the members of a group until the group is
complete. Relations stream once as Arrow batches, rewritten column-wise (``kg_loaders.rewrite``).
"""

from __future__ import annotations

import re
from array import array
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from graph.records import Concept, ConceptKind
from kg_loaders.curies import SOURCE_PRIORITY, is_cui, prefix_of

if TYPE_CHECKING:
    import pyarrow as pa

    from kg_loaders.rewrite import RelationRewriter

_AMBIGUOUS = ""  # alias seen with two different CUIs
# Kinds of the records that may join a CUI node by name, and that such a node is found by.
NAME_KINDS = frozenset({ConceptKind.FINDING, ConceptKind.SYMPTOM})
_WORDS = re.compile(r"[^\W_]+")
# A merged concept as ``(id, name, kind, synonyms, xrefs, sources)``.
ConceptRow = tuple[str, str, str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]


@dataclass
class CrosswalkReport:
    """What the crosswalk did; ``conflicting`` concepts were left unmerged or merged by a rule."""

    concepts_in: int = 0
    concepts_out: int = 0
    merged_nodes: int = 0  # nodes built from more than one source record
    merged_records: int = 0  # source records folded into those nodes
    renamed: int = 0  # records whose id became a CUI
    via_xref: int = 0  # records that reached a CUI through another concept's xref
    via_name: int = 0  # records with no CUI that joined the one CUI node of their name
    conflicting: int = 0  # several CUIs for one record, or two records of one source on a CUI
    unmapped: int = 0  # records with no CUI at all (they keep their own id)
    relations_in: int = 0
    relations_out: int = 0
    dangling: int = 0  # an endpoint that no loaded source defines
    self_loops: int = 0  # both endpoints merged into one node
    duplicates: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def name_key(name: str) -> int:
    """What two preferred names must share to be one name: their words, case-folded."""
    return hash(" ".join(_WORDS.findall(name.casefold())))


def _cui_number(cui: str) -> int:
    return int(cui[6:])


def _priority(concept_id: str) -> tuple[int, str]:
    return (SOURCE_PRIORITY.get(prefix_of(concept_id), len(SOURCE_PRIORITY)), concept_id)


def merge_concepts(canonical_id: str, records: list[Concept]) -> Concept:
    """One concept from the records of a group: name and kind from the highest-priority source
    (UMLS, SNOMED CT, HPO, DO, SYMP, then others), synonyms, xrefs and sources united."""
    ordered = sorted(records, key=lambda c: _priority(c.id))
    best = ordered[0]
    names: dict[str, str] = {}
    xrefs: dict[str, None] = {}
    sources: dict[str, None] = {}
    for record in ordered:
        for text in (record.name, *record.synonyms):
            names.setdefault(text.casefold(), text)
        for xref in (record.id, *record.xrefs):
            xrefs[xref] = None
        for source in record.sources:
            sources[source] = None
    xrefs.pop(canonical_id, None)
    names.pop(best.name.casefold(), None)
    return Concept(
        id=canonical_id,
        name=best.name,
        kind=best.kind,
        synonyms=tuple(names.values()),
        xrefs=tuple(sorted(xrefs)),
        sources=tuple(sorted(sources)),
    )


class Crosswalk:
    """Index concepts, then stream merged concepts and rewritten relations.

    Usage: ``index(streams)`` once, then ``concepts(streams)`` with the same streams again,
    then ``relations(row_streams)``; ``report`` holds the counts.
    """

    def __init__(self) -> None:
        self.report = CrosswalkReport()
        self.known: set[str] = set()
        self._cuis: dict[str, tuple[str, ...]] = {}  # non-UMLS id -> its CUIs
        self._unmapped_xrefs: dict[str, tuple[str, ...]] = {}  # id without a CUI -> its xrefs
        self._aliases: dict[str, str] = {}  # xref id -> CUI (or _AMBIGUOUS)
        self._record_counts: Counter[str] = Counter()  # ids given by more than one record
        self.canonical: dict[str, str] = {}  # id -> canonical id, only where they differ
        self._group_sizes: dict[str, int] = {}  # canonical id -> records, only where > 1
        # Name keys of finding/symptom records with one CUI, and that CUI's number, side by side
        # (16 bytes a record: a UMLS release has millions); names of such records with no CUI.
        self._name_keys = array("q")
        self._name_cuis = array("q")
        self._unmapped_names: dict[str, int] = {}
        self._indexed = False
        self._rewriter: RelationRewriter | None = None

    # ---------------------------------------------------------------- pass one
    def index(self, streams: Iterable[Iterable[Concept]]) -> None:
        """Read every concept once and decide which records become which node."""
        for stream in streams:
            for concept in stream:
                self._index_one(concept)
        self._resolve()
        self._indexed = True

    def _index_one(self, concept: Concept) -> None:
        self.report.concepts_in += 1
        cid = concept.id
        if cid in self.known:
            self._record_counts[cid] += 1
        else:
            self.known.add(cid)
        cuis = (cid,) if is_cui(cid) else tuple(x for x in concept.xrefs if is_cui(x))
        by_name = concept.kind in NAME_KINDS
        if not cuis:
            self._unmapped_xrefs[cid] = tuple(x for x in concept.xrefs if x != cid)
            if by_name:
                self._unmapped_names[cid] = name_key(concept.name)
            return
        if cid != cuis[0] or len(cuis) > 1:
            self._cuis[cid] = tuple(dict.fromkeys(self._cuis.get(cid, ()) + cuis))
        if len(set(cuis)) != 1:
            return
        if by_name:
            self._name_keys.append(name_key(concept.name))
            self._name_cuis.append(_cui_number(cuis[0]))
        # An xref is an alias of the CUI only if it is this concept's single xref of its prefix:
        # DO lists dozens of OMIM ids on a disease family, and those are subtypes, not synonyms.
        prefixes = [x.partition(":")[0] for x in concept.xrefs]
        for xref, prefix in zip(concept.xrefs, prefixes, strict=True):
            if prefix == "UMLS" and is_cui(xref) or prefixes.count(prefix) != 1:
                continue
            previous = self._aliases.get(xref)
            if previous is None:
                self._aliases[xref] = cuis[0]
            elif previous != cuis[0]:
                self._aliases[xref] = _AMBIGUOUS

    def _resolve(self) -> None:
        report = self.report
        members: dict[str, list[str]] = defaultdict(list)
        for cid, cuis in self._cuis.items():
            members[self._pick_cui(cid, cuis)].append(cid)
        unnamed: list[str] = []
        for cid, xrefs in self._unmapped_xrefs.items():
            cui = self._alias_for(cid, xrefs)
            if cui is None:
                unnamed.append(cid)
                continue
            report.via_xref += 1
            members[cui].append(cid)
        kept: dict[str, tuple[set[str], int]] = {}  # CUI -> prefixes of its members, records
        for cui, ids in members.items():
            kept_prefixes: set[str] = {"UMLS"} if cui in self.known else set()
            size = 1 if cui in self.known else 0
            size += self._record_counts.get(cui, 0)
            for cid in sorted(ids, key=_priority):
                prefix = prefix_of(cid)
                if prefix in kept_prefixes:
                    # Two terms of one source on one CUI: merging them would erase a distinction
                    # the source makes (and turn their IS_A into a self-loop).
                    report.conflicting += 1
                    continue
                kept_prefixes.add(prefix)
                self.canonical[cid] = cui
                size += 1 + self._record_counts.get(cid, 0)
            kept[cui] = (kept_prefixes, size)
            if size > 1:
                self._group_sizes[cui] = size
        self._join_by_name(unnamed, kept)
        for cid, extra in self._record_counts.items():  # one id given by several records
            if cid not in self.canonical and cid not in self._group_sizes:
                self._group_sizes[cid] = 1 + extra
        self._cuis.clear()
        self._unmapped_xrefs.clear()
        self._aliases.clear()
        self._unmapped_names.clear()
        self._name_keys, self._name_cuis = array("q"), array("q")

    def _join_by_name(self, ids: list[str], kept: dict[str, tuple[set[str], int]]) -> None:
        """Records with no CUI join the one CUI node of their preferred name (see the module);
        the others stay unmapped. A node that already has a record of the same source is left
        alone, as for CUIs."""
        report = self.report
        wanted = {self._unmapped_names[cid] for cid in ids if cid in self._unmapped_names}
        cui_of: dict[int, str] = {}  # name key -> its one CUI (or _AMBIGUOUS)
        if wanted:
            for key, number in zip(self._name_keys, self._name_cuis, strict=True):
                if key in wanted:
                    cui = f"UMLS:C{number:07d}"
                    cui_of[key] = cui if cui_of.get(key, cui) == cui else _AMBIGUOUS
        for cid in sorted(ids, key=_priority):
            key = self._unmapped_names.get(cid)
            cui = cui_of.get(key) if key is not None else None
            if cui and cui not in kept and cui in self.known:  # a CUI record on its own
                kept[cui] = ({"UMLS"}, 1 + self._record_counts.get(cui, 0))
            if not cui or cui not in kept or prefix_of(cid) in kept[cui][0]:
                report.unmapped += 1
                continue
            prefixes, size = kept[cui]
            prefixes.add(prefix_of(cid))
            size += 1 + self._record_counts.get(cid, 0)
            kept[cui] = (prefixes, size)
            report.via_name += 1
            self.canonical[cid] = cui
            self._group_sizes[cui] = size

    def _pick_cui(self, cid: str, cuis: tuple[str, ...]) -> str:
        """The CUI a record joins when it has its own CUI(s), and maybe an alias too.

        A CUI that is a loaded concept wins (the record then joins that node): first one of the
        record's own, then the one another concept names it by (a curated source listing the
        record as its xref), then the record's first own CUI.
        """
        alias = self._aliases.get(cid) or None
        if len(cuis) > 1 or (alias is not None and alias not in cuis):
            self.report.conflicting += 1
        loaded = sorted(c for c in cuis if c in self.known)
        if loaded:
            return loaded[0]
        if alias is not None and alias in self.known:
            return alias
        return sorted(cuis)[0]

    def _alias_for(self, cid: str, xrefs: tuple[str, ...]) -> str | None:
        direct = self._aliases.get(cid)
        if direct:
            return direct
        found = {self._aliases.get(x) for x in xrefs} - {None}
        if len(found) == 1 and _AMBIGUOUS not in found:
            return found.pop()
        if found:
            self.report.conflicting += 1
        return None

    # ---------------------------------------------------------------- pass two
    def concept_rows(self, streams: Iterable[Iterable[Concept]]) -> Iterator[ConceptRow]:
        """Stream the merged concepts as rows in ``graph.kg_tables.CONCEPT_SCHEMA`` order (what
        a bulk build turns into tables); call :meth:`index` with the same streams first."""
        if not self._indexed:
            raise RuntimeError("Crosswalk.index() must run before concepts()")
        canonical, sizes, report = self.canonical, self._group_sizes, self.report
        pending: dict[str, list[Concept]] = {}
        for stream in streams:
            for concept in stream:
                cid = concept.id
                target = canonical.get(cid, cid)
                size = sizes.get(target, 1)
                if size == 1:
                    report.concepts_out += 1
                    xrefs = concept.xrefs
                    if target != cid:
                        # Both ids were validated as CURIEs when their records were built.
                        report.renamed += 1
                        xrefs = tuple(
                            sorted(x for x in dict.fromkeys((cid, *xrefs)) if x != target)
                        )
                    kind = concept.kind.value
                    yield (target, concept.name, kind, concept.synonyms, xrefs, concept.sources)
                    continue
                group = pending.setdefault(target, [])
                group.append(concept)
                if len(group) == size:
                    del pending[target]
                    yield self._merged(target, group)
        for target, group in pending.items():  # streams changed between passes
            yield self._merged(target, group)

    def concepts(self, streams: Iterable[Iterable[Concept]]) -> Iterator[Concept]:
        """:meth:`concept_rows` as records."""
        for cid, name, kind, synonyms, xrefs, sources in self.concept_rows(streams):
            yield Concept.model_construct(
                id=cid,
                name=name,
                kind=ConceptKind(kind),
                synonyms=synonyms,
                xrefs=xrefs,
                sources=sources,
            )

    def _merged(self, target: str, group: list[Concept]) -> ConceptRow:
        self.report.concepts_out += 1
        self.report.merged_nodes += 1
        self.report.merged_records += len(group)
        c = merge_concepts(target, group)
        return (c.id, c.name, c.kind.value, c.synonyms, c.xrefs, c.sources)

    # ---------------------------------------------------------------- relations
    def relation_tables(
        self, batches: Iterable[tuple[pa.Table, tuple[str, ...]]]
    ) -> Iterator[tuple[str, pa.Table]]:
        """Relation batches (``kg_loaders.columns``) with endpoints rewritten to merged ids,
        per type, in the store's bulk layout (``graph.kg_tables``).

        Rows whose endpoint no loaded source defines are dropped (``dangling``); so are rows
        that became self-loops and repeats of an earlier ``(src, type, dst)``.
        """
        if not self._indexed:
            raise RuntimeError("Crosswalk.index() must run before relation_tables()")
        from kg_loaders.rewrite import RelationRewriter

        if self._rewriter is None:
            self._rewriter = RelationRewriter(self.known, self.canonical, self.report)
        for batch, sources in batches:
            yield from self._rewriter.tables(batch, sources)

    def release(self) -> None:
        """Drop the id maps once every relation is rewritten (a 2M-concept release holds
        hundreds of MB in them, which the store's final bulk loads can use instead)."""
        self.known = set()
        self.canonical = {}
        self._group_sizes = {}
        self._record_counts = Counter()
        self._rewriter = None
