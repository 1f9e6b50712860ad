"""Label -> KG concept maps (a data file), with descendants through ``IS_A`` from a store.

The shipped map ``data/labels/chestxray14_text.tsv`` has one row per ChestX-ray14 label:
``label``, ``concept_ids`` (``|``-separated CURIEs: the UMLS CUI first, then the HPO / DO ids the
full KG keeps for the same finding), ``lexicon`` (``;``-separated radiology surface forms,
attached to the first concept id as extra synonyms; ``{a|b|}`` inside a form lists alternatives,
an empty one meaning "nothing", so ``heart is {mildly|} enlarged`` is two forms) and ``note``
(where each id was checked).
"""

from __future__ import annotations

import csv
import re
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from graph.errors import InputError, UnknownConceptError
from graph.records import Concept, ConceptKind, check_curie
from graph.settings import DATA_DIR

if TYPE_CHECKING:
    from graph.store import GraphStore

CHESTXRAY14_TEXT_MAP = DATA_DIR / "labels" / "chestxray14_text.tsv"
COLUMNS = ("label", "concept_ids", "lexicon", "note")


_ALTERNATIVES_RE = re.compile(r"\{([^{}]*)\}")


def expand_form(form: str, *, limit: int = 5000) -> list[str]:
    """All surface forms of a lexicon entry with ``{a|b|}`` alternatives.

    Raises:
        InputError: the entry expands to more than ``limit`` forms.
    """
    forms = [form]
    while any(_ALTERNATIVES_RE.search(item) for item in forms):
        next_forms = []
        for item in forms:
            match = _ALTERNATIVES_RE.search(item)
            if match is None:
                next_forms.append(item)
                continue
            for option in match.group(1).split("|"):
                next_forms.append(item[: match.start()] + option + item[match.end() :])
        forms = next_forms
        if len(forms) > limit:
            raise InputError(f"lexicon entry {form!r} expands to more than {limit} forms")
    return [" ".join(item.split()) for item in forms if item.strip()]


@dataclass
class LabelMap:
    """Labels and the concept ids that make each of them positive.

    Args:
        concepts: label -> concept ids (in file order; descendants appended by :meth:`expand`).
        lexicon: label -> radiology surface forms of its first concept.
    """

    concepts: dict[str, list[str]] = field(default_factory=dict)
    lexicon: dict[str, list[str]] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return list(self.concepts)

    @classmethod
    def load(cls, path: str | Path = CHESTXRAY14_TEXT_MAP) -> LabelMap:
        """Read a label map TSV.

        Raises:
            InputError: missing file, wrong header, or a concept id that is not a CURIE.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"label map not found: {path}; pass a TSV with columns {COLUMNS}")
        label_map = cls()
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            if tuple(reader.fieldnames or ()) != COLUMNS:
                raise InputError(f"{path}: header must be {COLUMNS}, got {reader.fieldnames}")
            for line, row in enumerate(reader, start=2):
                ids = [part.strip() for part in row["concept_ids"].split("|") if part.strip()]
                if not row["label"] or not ids:
                    raise InputError(f"{path}:{line}: a label and at least one concept id needed")
                try:
                    ids = [check_curie(concept_id) for concept_id in ids]
                except ValueError as exc:
                    raise InputError(f"{path}:{line}: {exc}") from None
                label_map.concepts[row["label"]] = ids
                forms = [part.strip() for part in (row["lexicon"] or "").split(";")]
                label_map.lexicon[row["label"]] = [
                    expanded for form in forms if form for expanded in expand_form(form)
                ]
        return label_map

    def lexicon_concepts(self) -> list[Concept]:
        """The lexicon as concepts (first id of each label), to add to a KG vocabulary."""
        return [
            Concept(
                id=ids[0],
                name=(self.lexicon[label] or [label])[0],
                kind=ConceptKind.FINDING,
                synonyms=tuple(self.lexicon[label]),
            )
            for label, ids in self.concepts.items()
        ]

    def extra_synonyms(self) -> dict[str, list[str]]:
        """First concept id of each label -> its lexicon (for ``ReportExtractor.from_concepts``)."""
        return {ids[0]: self.lexicon[label] for label, ids in self.concepts.items()}

    def resolve(self, concepts: Iterable[Concept]) -> LabelMap:
        """A copy whose ids also name the KG nodes they were merged into.

        A built KG merges source ids into one node per CUI (``DOID:9675`` lives on as an xref of
        ``UMLS:C0029607``); a label id that is no concept's id but the xref of exactly one
        concept gains that concept's id (the ids of the file stay first).
        """
        wanted = {cid for ids in self.concepts.values() for cid in ids}
        ids: set[str] = set()
        owners: dict[str, set[str]] = {}
        for concept in concepts:
            ids.add(concept.id)
            for xref in concept.xrefs:
                if xref in wanted:
                    owners.setdefault(xref, set()).add(concept.id)
        resolved = LabelMap(lexicon=dict(self.lexicon))
        for label, label_ids in self.concepts.items():
            extra = [
                next(iter(owners[cid]))
                for cid in label_ids
                if cid not in ids and len(owners.get(cid, ())) == 1
            ]
            resolved.concepts[label] = list(dict.fromkeys([*label_ids, *extra]))
        return resolved

    def expand(self, store: GraphStore, *, max_depth: int = 8, limit: int = 5000) -> LabelMap:
        """A copy whose labels also cover the ``IS_A`` descendants of their concepts in ``store``.

        Concepts the store does not hold are kept as they are (the map also serves small KGs).
        """
        expanded = LabelMap(lexicon=dict(self.lexicon))
        for label, ids in self.concepts.items():
            seen = dict.fromkeys(ids)
            queue = deque((concept_id, 0) for concept_id in ids)
            while queue and len(seen) < limit:
                concept_id, depth = queue.popleft()
                if depth >= max_depth:
                    continue
                try:
                    children = store.neighbours(concept_id, types=["IS_A"], direction="in")
                except UnknownConceptError:
                    continue
                for child in children:
                    if child.concept.id not in seen:
                        seen[child.concept.id] = None
                        queue.append((child.concept.id, depth + 1))
            expanded.concepts[label] = list(seen)
        return expanded

    def label_of(self) -> dict[str, list[str]]:
        """Concept id -> labels it makes positive."""
        index: dict[str, list[str]] = {}
        for label, ids in self.concepts.items():
            for concept_id in ids:
                index.setdefault(concept_id, []).append(label)
        return index
