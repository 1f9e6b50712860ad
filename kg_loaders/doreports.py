"""Disease Ontology TSV reports (DOreports): classes, cross-references, disease-symptom pairs and
the anonymous ``subClassOf`` axioms (``'has symptom' some fever``).

Files in the release folder (each may be gzipped):

- ``HumanDO.tsv``: ``id  label  subClassOf`` (the parent by *label*, one row per parent)
- ``allXREFinDO.tsv``: ``id  label  xref``
- ``disease-symptom.tsv``: ``disease_id  disease_label  symptom_id  symptom_label`` (optional)
- ``DO-subClassOf-anonymous.tsv``: ``ID  LABEL  SubClass Of [ANON]`` (optional)

The reports name parents and axiom targets by label, so the reader keeps a label -> id map of DO
(about 12k entries) and of the symptoms; targets it cannot name are counted as unresolved.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from graph.records import Concept, ConceptKind
from kg_loaders.base import RelationRow, RelationTable, SourceReader, find_file, open_text
from kg_loaders.curies import normalize_curie

# DO's object properties, by the label the reports print -> schema type.
DO_RELATIONS: dict[str, str | None] = {
    "subClassOf": "IS_A",
    "has symptom": "HAS_SYMPTOM",
    "has phenotype": "HAS_PHENOTYPE",
    "disease has feature": "HAS_FINDING",
    "disease has location": "FINDING_SITE",
    "has material basis in": "CAUSED_BY",
    "disease has basis in": "CAUSED_BY",
    "has allergic trigger": "CAUSED_BY",
    "has disease driver": "CAUSED_BY",
    "has major susceptibility factor": "ASSOCIATED_WITH",
    "derives from": "ASSOCIATED_WITH",
    "transmitted by": "ASSOCIATED_WITH",
    "existence starts during": None,  # a life stage, not a concept of the KG
}

_AXIOM = re.compile(r"^'([^']+)'\s+some\s+(.+)$")
_CLASSES = ("HumanDO.tsv",)
_XREFS = ("allXREFinDO.tsv",)
_SYMPTOMS = ("disease-symptom.tsv",)
_ANONYMOUS = ("DO-subClassOf-anonymous.tsv",)


def _optional(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    return None


class DoReportsReader(SourceReader):
    """Read a folder of Disease Ontology TSV reports.

    Args:
        path: the folder holding the reports.
        version: the release (default: a ``VERSION`` file in the folder, else the date of
            ``HumanDO.tsv``).
        lenient: skip malformed lines instead of failing.

    Raises:
        InputError: ``HumanDO.tsv`` is missing (the message lists the expected files).
    """

    name = "DOID"

    def __init__(self, path: Path | str, *, version: str | None = None, lenient: bool = False):
        super().__init__(path, lenient=lenient)
        self.classes_file = find_file(self.path, _CLASSES, what="Disease Ontology classes")
        self.xrefs_file = _optional(self.path, _XREFS)
        self.symptoms_file = _optional(self.path, _SYMPTOMS)
        self.anonymous_file = _optional(self.path, _ANONYMOUS)
        self._version = version
        self.table = RelationTable(DO_RELATIONS, self.stats)
        self._labels: dict[str, str] | None = None

    @property
    def version(self) -> str:
        if self._version is None:
            marker = self.path / "VERSION"
            if marker.is_file():
                self._version = marker.read_text(encoding="utf-8").strip()
            else:
                mtime = self.classes_file.stat().st_mtime
                self._version = datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%d")
        return self._version

    # ---------------------------------------------------------------- file rows
    def _rows(self, path: Path, width: int) -> Iterator[tuple[int, list[str]]]:
        """Data rows of a TSV report (header skipped), each checked to have ``width`` fields."""
        with open_text(path) as handle:
            reader = csv.reader(handle, delimiter="\t", quotechar='"')
            for row in reader:
                if reader.line_num == 1 or not row:
                    continue
                if len(row) < width:
                    self.bad_line(path, reader.line_num, f"expected {width} tab-separated fields")
                    continue
                yield reader.line_num, row

    def _class_rows(self) -> Iterator[tuple[int, str, str, str]]:
        for line_no, row in self._rows(self.classes_file, 2):
            curie = normalize_curie(row[0])
            if curie is None or not curie.startswith("DOID:"):
                self.bad_line(self.classes_file, line_no, f"not a DOID: {row[0]!r}")
                continue
            yield line_no, curie, row[1].strip(), row[2].strip() if len(row) > 2 else ""

    def labels(self) -> dict[str, str]:
        """DO label -> DOID, plus symptom label -> SYMP id from ``disease-symptom.tsv``."""
        if self._labels is None:
            labels: dict[str, str] = {}
            if self.symptoms_file is not None:
                for _, row in self._rows(self.symptoms_file, 4):
                    labels.setdefault(row[3].strip(), row[2].strip())
            for _, curie, label, _ in self._class_rows():
                labels[label] = curie  # a disease label wins over a symptom of the same name
            self._labels = labels
        return self._labels

    # ---------------------------------------------------------------- records
    def concepts(self) -> Iterator[Concept]:
        xrefs: dict[str, list[str]] = defaultdict(list)
        if self.xrefs_file is not None:
            for line_no, row in self._rows(self.xrefs_file, 3):
                xref = normalize_curie(row[2])
                if xref is None:
                    self.bad_line(self.xrefs_file, line_no, f"xref is not PREFIX:id: {row[2]!r}")
                    continue
                xrefs[row[0].strip()].append(xref)
        provenance = (self.provenance,)
        seen: set[str] = set()
        for _, curie, label, _ in self._class_rows():
            if curie in seen:  # one row per parent
                continue
            seen.add(curie)
            yield Concept(
                id=curie,
                name=label or curie,
                kind=ConceptKind.DISEASE,
                xrefs=tuple(dict.fromkeys(xrefs.get(curie, ()))),
                sources=provenance,
            )

    def relation_rows(self) -> Iterator[RelationRow]:
        labels = self.labels()
        is_a = self.table.map("subClassOf")
        for _, curie, _, parent_label in self._class_rows():
            if not parent_label:
                continue
            parent = labels.get(parent_label)
            if parent is None:
                self.stats.unresolved += 1
                continue
            yield (curie, parent, is_a, False, 1.0, None)
        if self.symptoms_file is not None:
            has_symptom = self.table.map("has symptom")
            for line_no, row in self._rows(self.symptoms_file, 4):
                disease, symptom = normalize_curie(row[0]), normalize_curie(row[2])
                if disease is None or symptom is None:
                    self.bad_line(
                        self.symptoms_file, line_no, "disease or symptom id is not PREFIX:id"
                    )
                    continue
                yield (disease, symptom, has_symptom, False, 1.0, None)
        if self.anonymous_file is not None:
            yield from self._axiom_rows(labels)

    def _axiom_rows(self, labels: dict[str, str]) -> Iterator[RelationRow]:
        assert self.anonymous_file is not None
        for line_no, row in self._rows(self.anonymous_file, 3):
            disease = normalize_curie(row[0])
            if disease is None:
                self.bad_line(self.anonymous_file, line_no, f"not a DOID: {row[0]!r}")
                continue
            for axiom in row[2].split("|"):
                match = _AXIOM.match(axiom.strip())
                if match is None:  # a named superclass written inline; HumanDO.tsv has those
                    continue
                rel_type = self.table.map(match.group(1))
                target = labels.get(match.group(2).strip().strip("'"))
                if rel_type is None:
                    continue
                if target is None:
                    self.stats.unresolved += 1
                    continue
                yield (disease, target, rel_type, False, 1.0, None)
