"""The matcher's vocabulary: surface terms taken from KG concept names and synonyms.

A term is normalised token by token (lower case, a light singular form) so that "Pleural
Effusions" and "pleural effusion" are the same key; the same normaliser runs over report tokens
(see :mod:`extractors.text.matcher`), which is how plural and lemma variants match without
listing them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from graph.records import Concept, ConceptKind

# Single words that ontologies carry as concept names (HPO modifiers like "Left", "Mild",
# "Chronic", the root "All") but that, alone, never name a finding in a report.
GENERIC_WORDS = frozenset(
    """
    all left right bilateral unilateral mild moderate severe profound chronic acute subacute
    normal abnormal abnormality disease disorder finding findings syndrome sign symptom
    change changes increased decreased large small high low onset death frequent occasional
    very rare present absent history family episodic progressive recurrent stable
    phenotypic congenital generalized localized proximal distal central peripheral lateral
    medial anterior posterior upper lower""".split()
)
# Endings after which a trailing "s" is part of the word, not a plural ("atelectasis",
# "pneumothorax" is already safe; "process", "bronchus", "pancreas", "status").
_KEEP_S = ("ss", "us", "is", "as", "os", "ys")
_WORD_RE = re.compile(r"[a-z]")


@lru_cache(maxsize=200_000)
def normalise_word(word: str) -> str:
    """Lower-case ``word`` and reduce a regular English plural to its singular."""
    lower = word.lower()
    if len(lower) <= 3 or not lower.isalpha():
        return lower
    if lower.endswith("ies") and len(lower) > 4:
        return lower[:-3] + "y"
    if lower.endswith(("sses", "xes", "ches", "shes")):
        return lower[:-2]
    if lower.endswith("s") and not lower.endswith(_KEEP_S):
        return lower[:-1]
    return lower


@dataclass(frozen=True)
class Term:
    """One surface form and the concepts it names."""

    text: str
    concept_ids: tuple[str, ...]


@dataclass
class Vocabulary:
    """Surface terms -> concept ids, plus concept names for display.

    Args:
        terms: normalised term text -> concept ids it names (several ids when sources disagree).
        names: concept id -> preferred name.
        surfaces: normalised term text -> one lower-cased surface form (what the tokenizer sees).
    """

    terms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    surfaces: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.terms)

    @classmethod
    def from_concepts(
        cls,
        concepts: Iterable[Concept],
        *,
        extra_synonyms: Mapping[str, Iterable[str]] | None = None,
        kinds: Iterable[ConceptKind | str] | None = None,
        exclude_kinds: Iterable[ConceptKind | str] = (ConceptKind.ANATOMY,),
        min_chars: int = 3,
    ) -> Vocabulary:
        """Collect the names and synonyms of ``concepts`` as terms.

        Args:
            concepts: KG concepts (any iterable; a store's ``iter_concepts()`` streams).
            extra_synonyms: concept id -> extra surface forms (e.g. a curated radiology lexicon).
            kinds: keep only concepts of these kinds (all kinds when ``None``).
            exclude_kinds: leave out concepts of these kinds; anatomy by default, since "heart"
                or "lungs" in a report is where a finding is, not a finding.
            min_chars: shorter terms are dropped (single letters, "Ca").

        Returns:
            The vocabulary; terms that are generic single words are left out.
        """
        keep_kinds = {ConceptKind(kind) for kind in kinds} if kinds is not None else None
        drop_kinds = {ConceptKind(kind) for kind in exclude_kinds}
        by_term: dict[str, set[str]] = defaultdict(set)
        surfaces: dict[str, str] = {}
        names: dict[str, str] = {}
        for concept in concepts:
            if concept.kind in drop_kinds or (
                keep_kinds is not None and concept.kind not in keep_kinds
            ):
                continue
            names[concept.id] = concept.name
            for surface in (concept.name, *concept.synonyms):
                key = term_key(surface, min_chars=min_chars)
                if key:
                    by_term[key].add(concept.id)
                    surfaces.setdefault(key, surface.strip().lower())
        for concept_id, forms in (extra_synonyms or {}).items():
            forms = list(forms)
            for surface in forms:
                key = term_key(surface, min_chars=min_chars)
                if key:
                    by_term[key].add(concept_id)
                    surfaces.setdefault(key, surface.strip().lower())
            names.setdefault(concept_id, forms[0] if forms else concept_id)
        terms = {key: tuple(sorted(ids)) for key, ids in by_term.items()}
        return cls(terms=terms, names=names, surfaces=surfaces)


def split_words(text: str) -> list[str]:
    """Split into word and punctuation pieces the way the tokenizer roughly does."""
    return re.findall(r"[A-Za-z0-9]+|[^\sA-Za-z0-9]", text)


def term_key(surface: str, *, min_chars: int = 3) -> str | None:
    """The normalised key of a surface form, or ``None`` when it cannot name a finding."""
    surface = surface.strip()
    if len(surface) < min_chars or not _WORD_RE.search(surface.lower()):
        return None
    words = [normalise_word(word) for word in split_words(surface)]
    if not words:
        return None
    if len(words) == 1 and (words[0] in GENERIC_WORDS or len(words[0]) < min_chars):
        return None
    return " ".join(words)
