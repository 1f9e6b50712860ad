"""SNOMED CT RF2 snapshot release: concepts, descriptions and relationships.

Files (found anywhere under the release folder, e.g. ``Snapshot/Terminology/``):
``sct2_Concept_Snapshot_*.txt``, ``sct2_Description_Snapshot-*_*.txt`` and
``sct2_Relationship_Snapshot_*.txt`` (tab-separated, with a header row).

Descriptions are not ordered by concept, so the reader spools the active ones of the wanted
language into a temporary SQLite file and reads them back joined to the active concepts, in
concept order: memory stays flat however large the release. The FSN's semantic tag
(``(disorder)``, ``(finding)``, ``(body structure)``) gives the concept's kind.
"""

from __future__ import annotations

import re
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from graph.errors import InputError
from graph.records import Concept, ConceptKind
from kg_loaders.base import RelationRow, RelationTable, SourceReader, open_text

FSN = "900000000000003001"
SYNONYM = "900000000000013009"

# Relationship typeId -> schema type.
SNOMED_RELATIONS: dict[str, str | None] = {
    "116680003": "IS_A",  # is a
    "363698007": "FINDING_SITE",  # finding site
    "116676008": "ASSOCIATED_MORPHOLOGY",  # associated morphology
    "42752001": "CAUSED_BY",  # due to
    "246075003": "CAUSED_BY",  # causative agent
    "370135005": "CAUSED_BY",  # pathological process
    "363705008": "HAS_FINDING",  # has definitional manifestation
    "47429007": "ASSOCIATED_WITH",  # associated with
    "246454002": None,  # occurrence (a time period, not a concept of the KG)
    "263502005": None,  # clinical course
}
# Semantic tag of the FSN -> kind.
TAG_KINDS: dict[str, ConceptKind] = {
    "disorder": ConceptKind.DISEASE,
    "finding": ConceptKind.FINDING,
    "situation": ConceptKind.FINDING,
    "event": ConceptKind.FINDING,
    "morphologic abnormality": ConceptKind.FINDING,
    "body structure": ConceptKind.ANATOMY,
    "cell structure": ConceptKind.ANATOMY,
    "cell": ConceptKind.ANATOMY,
    "procedure": ConceptKind.PROCEDURE,
    "regime/therapy": ConceptKind.PROCEDURE,
    "substance": ConceptKind.SUBSTANCE,
    "product": ConceptKind.SUBSTANCE,
    "medicinal product": ConceptKind.SUBSTANCE,
    "clinical drug": ConceptKind.SUBSTANCE,
    "organism": ConceptKind.ORGANISM,
    "qualifier value": ConceptKind.QUALIFIER,  # laterality, severity, course ...
}
_TAG = re.compile(r"\s*\(([^()]+)\)\s*$")
_RELEASE_DATE = re.compile(r"_(\d{8})\.txt$")
CONCEPT_COLUMNS = ("id", "effectiveTime", "active", "moduleId", "definitionStatusId")
DESCRIPTION_COLUMNS = (
    "id", "effectiveTime", "active", "moduleId", "conceptId", "languageCode", "typeId", "term",
    "caseSignificanceId",
)  # fmt: skip
RELATIONSHIP_COLUMNS = (
    "id", "effectiveTime", "active", "moduleId", "sourceId", "destinationId",
    "relationshipGroup", "typeId", "characteristicTypeId", "modifierId",
)  # fmt: skip
PATTERNS = {
    "concepts": "sct2_Concept_Snapshot*.txt",
    "descriptions": "sct2_Description_Snapshot*.txt",
    "relationships": "sct2_Relationship_Snapshot*.txt",
}


def split_tag(fsn: str) -> tuple[str, str]:
    """``("Cardiomegaly", "finding")`` from ``"Cardiomegaly (finding)"``."""
    match = _TAG.search(fsn)
    if match is None:
        return fsn.strip(), ""
    return fsn[: match.start()].strip(), match.group(1)


class SnomedReader(SourceReader):
    """Read a SNOMED CT RF2 snapshot.

    Args:
        path: the release folder (or its ``Snapshot`` folder).
        languages: description language codes to keep.
        lenient: skip malformed lines instead of failing.

    Raises:
        InputError: one of the three snapshot files is missing (the message lists them).
    """

    name = "SNOMEDCT"

    def __init__(
        self, path: Path | str, *, languages: tuple[str, ...] = ("en",), lenient: bool = False
    ) -> None:
        super().__init__(path, lenient=lenient)
        self.files: dict[str, Path] = {}
        for role, pattern in PATTERNS.items():
            found = sorted(self.path.rglob(pattern)) + sorted(self.path.rglob(f"{pattern}.gz"))
            if not found:
                expected = ", ".join(PATTERNS.values())
                raise InputError(f"{self.path}: no SNOMED CT {role} file; expected {expected}")
            self.files[role] = found[0]
        self.languages = frozenset(languages)
        self.table = RelationTable(SNOMED_RELATIONS, self.stats)
        self._spool: tempfile.TemporaryDirectory[str] | None = None

    @property
    def version(self) -> str:
        match = _RELEASE_DATE.search(self.files["concepts"].name.removesuffix(".gz"))
        return match.group(1) if match else "unknown"

    def _rows(self, role: str, columns: tuple[str, ...]) -> Iterator[tuple[int, list[str]]]:
        path = self.files[role]
        with open_text(path) as handle:
            header = handle.readline().rstrip("\r\n").split("\t")
            if tuple(header) != columns:
                raise InputError(f"{path}:1: not an RF2 {role} file; header must be {columns}")
            for line_no, line in enumerate(handle, 2):
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) != len(columns):
                    if line.strip():
                        self.bad_line(
                            path, line_no, f"expected {len(columns)} tab-separated fields"
                        )
                    continue
                if fields[2] not in ("0", "1") or not fields[0].isdigit():
                    self.bad_line(path, line_no, "id must be digits and active 0 or 1")
                    continue
                yield line_no, fields

    def _database(self) -> Path:
        """Spool active concepts and descriptions into SQLite once per reader."""
        if self._spool is not None:
            return Path(self._spool.name) / "rf2.sqlite"
        self._spool = tempfile.TemporaryDirectory(prefix="kgdx-rf2-")
        path = Path(self._spool.name) / "rf2.sqlite"
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE concept (id INTEGER PRIMARY KEY)")
            db.execute("CREATE TABLE description (concept_id INTEGER, fsn INTEGER, term TEXT)")
            inactive = set()
            rows = []
            for _, f in self._rows("concepts", CONCEPT_COLUMNS):
                if f[2] == "1":
                    rows.append((int(f[0]),))
                else:
                    inactive.add(f[0])
            db.executemany("INSERT OR IGNORE INTO concept VALUES (?)", rows)
            self.stats.skipped_ids.update(f"SNOMEDCT:{i}" for i in inactive)
            wanted = (FSN, SYNONYM)
            db.executemany(
                "INSERT INTO description VALUES (?, ?, ?)",
                (
                    (int(f[4]), f[6] == FSN, f[7])
                    for _, f in self._rows("descriptions", DESCRIPTION_COLUMNS)
                    if f[2] == "1" and f[5] in self.languages and f[6] in wanted
                ),
            )
            db.execute("CREATE INDEX description_concept ON description (concept_id)")
        return path

    def concepts(self) -> Iterator[Concept]:
        provenance = (self.provenance,)
        db = sqlite3.connect(self._database())
        try:
            cursor = db.execute(
                "SELECT c.id, d.fsn, d.term FROM concept c "
                "LEFT JOIN description d ON d.concept_id = c.id ORDER BY c.id, d.fsn DESC"
            )
            current: int | None = None
            terms: list[tuple[int, str]] = []
            for concept_id, fsn, term in cursor:
                if concept_id != current:
                    if current is not None:
                        yield self._concept(current, terms, provenance)
                    current, terms = concept_id, []
                if term is not None:
                    terms.append((fsn, term))
            if current is not None:
                yield self._concept(current, terms, provenance)
        finally:
            db.close()

    @staticmethod
    def _concept(concept_id: int, terms: list[tuple[int, str]], sources) -> Concept:
        fsn = next((term for is_fsn, term in terms if is_fsn), "")
        name, tag = split_tag(fsn) if fsn else ("", "")
        synonyms = [term for is_fsn, term in terms if not is_fsn]
        if not name:
            name = synonyms[0] if synonyms else f"SNOMEDCT:{concept_id}"
        return Concept(
            id=f"SNOMEDCT:{concept_id}",
            name=name,
            kind=TAG_KINDS.get(tag, ConceptKind.OTHER),
            synonyms=tuple(dict.fromkeys(s for s in synonyms if s != name)),
            sources=sources,
        )

    def relation_rows(self) -> Iterator[RelationRow]:
        table = self.table
        for _, f in self._rows("relationships", RELATIONSHIP_COLUMNS):
            if f[2] != "1":
                continue
            rel_type = table.map(f[7])
            if rel_type is None:
                continue
            attributes = {"group": f[6]} if f[6] != "0" else None
            yield (f"SNOMEDCT:{f[4]}", f"SNOMEDCT:{f[5]}", rel_type, False, 1.0, attributes)
