"""UMLS Metathesaurus release files (RRF): MRCONSO, MRSTY and MRREL, streamed.

A release's files are sorted by CUI, so the reader walks MRCONSO and MRSTY side by side (a merge
join) and holds one concept's atoms at a time; MRREL streams row by row. Concepts are English,
unsuppressed atoms by default, optionally of some sources (SAB) only; the preferred name follows
the TS / STT / ISPREF flags and then a term-type order; source codes become xrefs
(``SNOMEDCT:8186001``, ``HP:0001640``), which is what lets the crosswalk join other sources.

MRREL's REL and RELA read "CUI2 is <REL/RELA> of CUI1" (UMLS Reference Manual, MRREL), so each
mapping says whether the schema relation runs CUI2 -> CUI1 or the other way.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from graph.errors import InputError
from graph.records import Concept, ConceptKind
from kg_loaders.base import RelationRow, RelationTable, SourceReader, find_file, open_text
from kg_loaders.curies import normalize_curie

if TYPE_CHECKING:
    import pyarrow as pa

MRCONSO_FIELDS = 18
MRSTY_FIELDS = 6
MRREL_FIELDS = 16

# RELA (or REL when RELA is empty) -> (schema type, True when the relation runs CUI2 -> CUI1);
# None: known, and not a KG relation (synonymy, siblings, qualifiers).
UMLS_RELATIONS: dict[str, tuple[str, bool] | None] = {
    "isa": ("IS_A", True),
    "inverse_isa": ("IS_A", False),
    "PAR": ("IS_A", False),  # CUI2 is a parent of CUI1
    "CHD": ("IS_A", True),  # CUI2 is a child of CUI1
    "has_finding_site": ("FINDING_SITE", True),
    "finding_site_of": ("FINDING_SITE", False),
    "has_associated_morphology": ("ASSOCIATED_MORPHOLOGY", True),
    "associated_morphology_of": ("ASSOCIATED_MORPHOLOGY", False),
    "due_to": ("CAUSED_BY", True),
    "cause_of": ("CAUSED_BY", False),
    "has_causative_agent": ("CAUSED_BY", True),
    "causative_agent_of": ("CAUSED_BY", False),
    "has_manifestation": ("HAS_FINDING", True),
    "manifestation_of": ("HAS_FINDING", False),
    "disease_has_finding": ("HAS_FINDING", True),
    "is_finding_of_disease": ("HAS_FINDING", False),
    "disease_may_have_finding": ("HAS_FINDING", True),
    "may_be_finding_of_disease": ("HAS_FINDING", False),
    "has_associated_finding": ("ASSOCIATED_WITH", True),
    "associated_finding_of": ("ASSOCIATED_WITH", False),
    "associated_with": ("ASSOCIATED_WITH", True),
    "clinically_associated_with": ("ASSOCIATED_WITH", True),
    "RB": ("ASSOCIATED_WITH", True),
    "RN": ("ASSOCIATED_WITH", False),
    "RO": ("ASSOCIATED_WITH", True),
    "RQ": ("ASSOCIATED_WITH", True),
    "RL": ("ASSOCIATED_WITH", True),
    "RU": ("ASSOCIATED_WITH", True),
    "SY": None,
    "SIB": None,
    "AQ": None,
    "QB": None,
    "XR": None,
    "DEL": None,
}

# Semantic type tree numbers (STN) -> kind; the longest matching prefix wins.
STN_KINDS: dict[str, ConceptKind] = {
    "B2.2.1.2": ConceptKind.DISEASE,  # Pathologic Function (Disease or Syndrome, Neoplastic ...)
    "B2.3": ConceptKind.DISEASE,  # Injury or Poisoning
    "A2.2.2": ConceptKind.SYMPTOM,  # Sign or Symptom
    "A2.2": ConceptKind.FINDING,  # Finding, Laboratory or Test Result
    "A1.2.2": ConceptKind.FINDING,  # Anatomical Abnormality (congenital, acquired)
    "A1.2": ConceptKind.ANATOMY,  # Anatomical Structure, Body Part, Tissue, Cell ...
    "A2.1.4.1": ConceptKind.ANATOMY,  # Body System
    "A2.1.5.1": ConceptKind.ANATOMY,  # Body Space or Junction
    "A2.1.5.2": ConceptKind.ANATOMY,  # Body Location or Region
    # Qualifiers ("Right", "Mild", "Focal", "Chronic"): what a finding is qualified by.
    "A2.1.1": ConceptKind.QUALIFIER,  # Temporal Concept (T079)
    "A2.1.2": ConceptKind.QUALIFIER,  # Qualitative Concept (T080)
    "A2.1.3": ConceptKind.QUALIFIER,  # Quantitative Concept (T081)
    "A2.1.4": ConceptKind.QUALIFIER,  # Functional Concept (T169; Body System is anatomy)
    "A2.1.5": ConceptKind.QUALIFIER,  # Spatial Concept (T082; body spaces/locations: anatomy)
    "A2.1.5.3": ConceptKind.OTHER,  # Molecular Sequence
    "A2.1.5.4": ConceptKind.OTHER,  # Geographic Area
    "B1.3.1": ConceptKind.PROCEDURE,  # Health Care Activity and its procedures
    "A1.4": ConceptKind.SUBSTANCE,  # Substance, Chemical, Drug
    "A1.3": ConceptKind.SUBSTANCE,  # Manufactured Object (incl. Clinical Drug)
    "A1.1": ConceptKind.ORGANISM,  # Organism
}
# When a CUI has several semantic types, the first kind in this order wins.
KIND_ORDER = (
    ConceptKind.DISEASE,
    ConceptKind.SYMPTOM,
    ConceptKind.FINDING,
    ConceptKind.ANATOMY,
    ConceptKind.PROCEDURE,
    ConceptKind.ORGANISM,
    ConceptKind.SUBSTANCE,
    ConceptKind.QUALIFIER,
    ConceptKind.OTHER,
)
_KIND_RANK = {kind: rank for rank, kind in enumerate(KIND_ORDER)}
# Term types, best first, to pick a preferred name among the preferred atoms.
TTY_ORDER = ("PN", "PT", "MH", "FN", "PEP", "HT", "ETAL", "SY")
_TTY_RANK = {tty: len(TTY_ORDER) - rank for rank, tty in enumerate(TTY_ORDER)}
# SAB -> CURIE prefix for source codes kept as xrefs; other SABs keep their own name.
SAB_PREFIXES = {"SNOMEDCT_US": "SNOMEDCT", "MSH": "MESH", "NCI": "NCIT", "MDR": "MEDDRA"}
_RELEASE = re.compile(r"^\d{4}[A-Z]{2}$")
MAX_SYNONYMS = 64


@functools.lru_cache(maxsize=4096)  # a release has ~130 semantic types: each matched once
def stn_kind(stn: str) -> ConceptKind:
    """The kind of a semantic type tree number (longest prefix match)."""
    best, best_len = ConceptKind.OTHER, -1
    for prefix, kind in STN_KINDS.items():
        if (stn == prefix or stn.startswith(prefix + ".")) and len(prefix) > best_len:
            best, best_len = kind, len(prefix)
    return best


class UmlsReader(SourceReader):
    """Read a UMLS release folder (``META/`` or a folder holding the RRF files).

    Args:
        path: the release folder.
        languages: MRCONSO languages to keep (``LAT``).
        sabs: keep only atoms and relations of these sources; all when ``None``.
        version: the release (default: the folder name when it looks like ``2025AA``).
        lenient: skip malformed lines instead of failing.

    Raises:
        InputError: MRCONSO or MRSTY is missing (the message lists the expected files).
    """

    name = "UMLS"

    def __init__(
        self,
        path: Path | str,
        *,
        languages: Iterable[str] = ("ENG",),
        sabs: Iterable[str] | None = None,
        version: str | None = None,
        lenient: bool = False,
    ) -> None:
        super().__init__(path, lenient=lenient)
        if (self.path / "META").is_dir():
            self.path = self.path / "META"
        self.mrconso = find_file(self.path, ("MRCONSO.RRF",), what="UMLS MRCONSO")
        self.mrsty = find_file(self.path, ("MRSTY.RRF",), what="UMLS MRSTY")
        self.mrrel = next(
            (p for p in (self.path / "MRREL.RRF", self.path / "MRREL.RRF.gz") if p.is_file()), None
        )
        self.languages = frozenset(languages)
        self.sabs = frozenset(sabs) if sabs is not None else None
        self._version = version
        self.table = RelationTable(
            {k: v[0] if v else None for k, v in UMLS_RELATIONS.items()}, self.stats
        )

    @property
    def version(self) -> str:
        if self._version is None:
            for folder in (self.path, self.path.parent):
                if _RELEASE.match(folder.name):
                    self._version = folder.name
                    break
            else:
                self._version = "unknown"
        return self._version

    # ---------------------------------------------------------------- rows
    def _rrf(self, path: Path, width: int) -> Iterator[tuple[int, list[str]]]:
        with open_text(path) as handle:
            for line_no, line in enumerate(handle, 1):
                fields = line.rstrip("\r\n").split("|")
                if fields and fields[-1] == "":  # every RRF row ends with a bar
                    fields.pop()
                if len(fields) != width:
                    if line.strip():
                        self.bad_line(
                            path, line_no, f"expected {width} '|' fields, found {len(fields)}"
                        )
                    continue
                yield line_no, fields

    def _grouped(self, path: Path, width: int) -> Iterator[tuple[str, list[list[str]]]]:
        """Rows grouped by their first field (the CUI), checking the file is sorted by it."""
        current, rows, last_line = None, [], 0
        for line_no, fields in self._rrf(path, width):
            cui = fields[0]
            if cui != current:
                if current is not None:
                    if cui < current:
                        raise InputError(
                            f"{path}:{line_no}: rows are not sorted by CUI ({cui} after {current}); "
                            "sort the file with: LC_ALL=C sort -t'|' -k1,1 -s"
                        )
                    yield current, rows
                current, rows = cui, []
            rows.append(fields)
            last_line = line_no
        if current is not None and last_line:
            yield current, rows

    def _semantic_kinds(self) -> Iterator[tuple[str, ConceptKind]]:
        for cui, rows in self._grouped(self.mrsty, MRSTY_FIELDS):
            kinds = [stn_kind(row[2]) for row in rows]
            yield cui, min(kinds, key=_KIND_RANK.__getitem__)

    # ---------------------------------------------------------------- records
    def concepts(self) -> Iterator[Concept]:
        provenance = (self.provenance,)
        kinds = self._semantic_kinds()
        kind_cui, kind = next(kinds, (None, ConceptKind.OTHER))
        for cui, atoms in self._grouped(self.mrconso, MRCONSO_FIELDS):
            while kind_cui is not None and kind_cui < cui:
                kind_cui, kind = next(kinds, (None, ConceptKind.OTHER))
            concept_kind = kind if kind_cui == cui else ConceptKind.OTHER
            concept = self._concept(cui, atoms, concept_kind, provenance)
            if concept is None:
                self.stats.skipped_ids.add(f"UMLS:{cui}")
                continue
            yield concept

    def _concept(
        self, cui: str, atoms: list[list[str]], kind: ConceptKind, sources: tuple[str, ...]
    ) -> Concept | None:
        kept = [
            a
            for a in atoms
            if a[1] in self.languages
            and a[16] in ("N", "")
            and (self.sabs is None or a[11] in self.sabs)
        ]
        if not kept:
            return None
        best = max(
            kept,
            key=lambda a: (a[2] == "P", a[4] == "PF", a[6] == "Y", _TTY_RANK.get(a[12], 0)),
        )
        name = best[14]
        synonyms: dict[str, str] = {}
        xrefs: dict[str, None] = {}
        for atom in kept:
            text = atom[14]
            if text and text.casefold() != name.casefold() and len(synonyms) < MAX_SYNONYMS:
                synonyms.setdefault(text.casefold(), text)
            xref = self._xref(atom[11], atom[13])
            if xref is not None:
                xrefs[xref] = None
        return Concept(
            id=f"UMLS:{cui}",
            name=name,
            kind=kind,
            synonyms=tuple(synonyms.values()),
            xrefs=tuple(xrefs),
            sources=sources,
        )

    @staticmethod
    def _xref(sab: str, code: str) -> str | None:
        if not code or code == "NOCODE":
            return None
        if ":" in code:  # HPO and some others write the prefix into the code
            return normalize_curie(code)
        return normalize_curie(f"{SAB_PREFIXES.get(sab, sab)}:{code}")

    def relation_batches(self) -> Iterator[tuple[pa.Table, tuple[str, ...]]]:
        """MRREL as Arrow batches, parsed column-wise (:mod:`kg_loaders.umls_columns`).

        Raises:
            InputError: a malformed row (with its file and line), unless ``lenient``; a corrupt
                file.
        """
        from kg_loaders import umls_columns as uc

        if self.mrrel is None:
            return
        sources = (self.provenance,)
        refused: list[list[str]] = []  # rows without the trailing bar, read in Python
        malformed = 0

        def on_invalid(text: str) -> str:
            nonlocal malformed
            fields = uc.split_row(text)
            if fields is not None:
                refused.append(fields)
            elif text.strip():
                malformed += 1
                return "skip" if self.lenient else "error"
            return "skip"

        def typed(batch: pa.RecordBatch) -> pa.Table:
            return uc.relation_batch(batch, self.table, UMLS_RELATIONS, self.sabs)

        try:
            for batch in uc.mrrel_columns(self.mrrel, on_invalid):
                if batch.num_rows:
                    yield typed(batch), sources
                if refused:
                    yield typed(uc.fields_batch(refused)), sources
                    refused.clear()
        except InputError:
            if malformed:
                self._scan_bad_lines()  # raises with the first bad line's number
            raise
        if malformed:
            self._scan_bad_lines()  # lenient: each bad line counted and logged with its number

    def _scan_bad_lines(self) -> None:
        """Read MRREL line by line only to report its malformed lines (:meth:`bad_line`)."""
        assert self.mrrel is not None
        for _ in self._rrf(self.mrrel, MRREL_FIELDS):
            pass

    def relation_rows(self) -> Iterator[RelationRow]:
        from kg_loaders.columns import table_rows

        for batch, _ in self.relation_batches():
            yield from table_rows(batch)
