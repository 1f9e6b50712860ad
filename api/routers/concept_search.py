"""Concept search for ``GET /v1/concepts?q=``: by name, synonym or id, ranked, paged.

The KG's concepts are read once per app (the first search) into an in-memory index of
lower-cased names and synonyms; a search is a scan of it, so it never holds the store. The KG
cannot change under a running server on the embedded store (a build needs the database to
itself); after changing a Neo4j KG, restart the server.

Ranking (score, then the shorter name, then the id): the id itself 1.0; the name equal to the
query 1.0, a synonym equal 0.9; the name starting with it 0.8, a synonym 0.7; a word of the name
starting with it 0.6, of a synonym 0.5; the name containing it 0.4, a synonym 0.3.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass

from api.long_lived import freeze_long_lived
from graph.records import Concept
from graph.store import GraphStore

_WORD = re.compile(r"[^a-z0-9]+")
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Hit:
    concept: Concept
    score: float
    matched: str


def _fold(text: str) -> str:
    return " ".join(_WORD.sub(" ", text.casefold()).split())


def _score(query: str, text: str, exact: float) -> float:
    """How well folded ``text`` matches folded ``query`` (0: not at all); ``exact`` is the
    score of an equal text, each looser match 0.2 less."""
    if text == query:
        return exact
    if text.startswith(query):
        return exact - 0.2
    if f" {query}" in f" {text}":
        return exact - 0.4
    if query in text:
        return exact - 0.6
    return 0.0


class ConceptIndex:
    """Every concept of the KG with its folded name and synonyms."""

    def __init__(self, concepts: list[Concept], replaced_by: dict[str, str] | None = None) -> None:
        """``replaced_by``: obsolete id -> its replacement (the KG leaves obsolete terms out;
        a record coded with one still names a term, as ``kgdx diagnose`` reads it)."""
        self._entries = [
            (c, c.id.casefold(), _fold(c.name), tuple(_fold(s) for s in c.synonyms))
            for c in concepts
        ]

        self.names = {c.id: c.name for c in concepts}
        # a cross-reference (HP:0001250 on the crosswalk's UMLS:C0014544 "Seizure") -> the node
        # that carries it; the smallest node id when several do (as PhenotypeKG.hpo_index)
        self.codes: dict[str, str] = {}
        for concept in sorted(concepts, key=lambda c: c.id):
            for code in concept.xrefs:
                self.codes.setdefault(code, concept.id)
        self.replaced_by = dict(replaced_by or {})

    def resolve(self, concept_id: str) -> str | None:
        """The node id ``concept_id`` names: itself when it is a node, else the node carrying
        it as a cross-reference, else (an obsolete id) the node its replacement names, through
        chains of replacements; ``None`` when none of these."""
        from gnn.reasoning.hpo_ids import follow_replacements

        found = follow_replacements(
            concept_id, self.replaced_by, lambda code: code in self.names or code in self.codes
        )
        if found is None:
            return None
        return found if found in self.names else self.codes[found]

    def __len__(self) -> int:
        return len(self._entries)

    def search(self, q: str) -> list[Hit]:
        """The concepts matching ``q``, best first."""
        query, raw = _fold(q), q.strip().casefold()
        hits: list[Hit] = []
        if not query and not raw:
            return hits
        for concept, cid, name, synonyms in self._entries:
            if raw and cid == raw:
                hits.append(Hit(concept, 1.0, "id"))
                continue
            best, matched = (_score(query, name, 1.0), "name") if query else (0.0, "")
            for synonym in synonyms if query else ():
                score = _score(query, synonym, 0.9)
                if score > best:
                    best, matched = score, "synonym"
            if best > 0:
                hits.append(Hit(concept, round(best, 2), matched))
        hits.sort(key=lambda h: (-h.score, len(h.concept.name), h.concept.id))
        return hits


_build_lock = threading.Lock()


def concept_index(state: object, store: GraphStore) -> ConceptIndex:
    """The app's index (``state``: ``app.state``), read from ``store`` on first use; call with
    the store lock held."""
    with _build_lock:
        index = getattr(state, "concept_index", None)
        if index is None:
            index = ConceptIndex(list(store.iter_concepts()), obsolete_hpo_ids(store))
            state.concept_index = index  # type: ignore[attr-defined]
            freeze_long_lived()  # kept for the app's life (api/long_lived.py)
        return index


def obsolete_hpo_ids(store: GraphStore) -> dict[str, str]:
    """Obsolete HPO id -> ``replaced_by``, from the ``hp.obo`` the store's KG was built from
    (its build record); empty when the store names none, or the file cannot be read (logged:
    the concept routes and ingest still answer, without this mapping)."""
    from gnn.reasoning.hpo_ids import hp_obo_of_build, read_replaced_by
    from graph.errors import KgdxError

    path = hp_obo_of_build(store)
    if path is None:
        return {}
    try:
        return read_replaced_by(path)
    except (KgdxError, OSError, UnicodeError, EOFError) as exc:
        logger.warning("obsolete HPO ids not read from %s: %s", path, exc)
        return {}
