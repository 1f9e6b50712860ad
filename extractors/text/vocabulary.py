"""The matcher's vocabulary: surface terms taken from KG concept names and synonyms.

A term is normalised token by token (lower case, a light singular form) so that "Pleural
Effusions" and "pleural effusion" are the same key; the same normaliser runs over report tokens
(see :mod:`extractors.text.matcher`), which is how plural and lemma variants match without
listing them.

What never becomes a term: concepts of kind ``qualifier`` (laterality, severity, spatial pattern,
frequency, course: HPO's Clinical modifier and Frequency branches, UMLS qualitative, spatial,
temporal, functional and quantitative concepts, SNOMED CT qualifier values; see
:class:`graph.records.ConceptKind`), and, as a second line for KGs whose loaders do not type
them, terms made only of qualifier and generic words (:data:`GENERIC_WORDS`: "Right-sided",
"Mild to moderate", "Focal").

One span, one concept: when several concepts share a term, :meth:`Vocabulary.from_concepts`
orders them best first (:func:`concept_rank`) and the matcher and linker keep the first.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from graph.records import Concept, ConceptKind

# Words that ontologies carry as concept names (HPO modifiers like "Left", "Mild", "Chronic",
# the root "All") but that, without a content word beside them, never name a finding in a
# report: a term made of these alone ("Right-sided", "Mild to moderate") is not a term.
GENERIC_WORDS = frozenset(
    """
    all left right bilateral unilateral mild moderate severe profound chronic acute subacute
    normal abnormal abnormality disease disorder finding findings syndrome sign symptom
    change changes increased decreased large small high low onset death frequent occasional
    very rare present absent history family episodic progressive recurrent stable
    phenotypic congenital generalized localized proximal distal central peripheral lateral
    medial anterior posterior upper lower focal multifocal diffuse sided side excluded
    obligate to and or of the in""".split()
)
# Bump when the way terms are made from concepts changes (what a cached matcher was built by).
VOCABULARY_VERSION = "2"
# Kinds that are never findings, whatever a caller's ``kinds`` / ``exclude_kinds`` say.
NEVER_FINDINGS = frozenset({ConceptKind.QUALIFIER})
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
                or "lungs" in a report is where a finding is, not a finding. Qualifiers
                (:data:`NEVER_FINDINGS`) are left out whatever this says.
            min_chars: shorter terms are dropped (single letters, "Ca").

        Returns:
            The vocabulary; terms made only of generic words are left out, and each term's
            concept ids are ordered best first (:func:`concept_rank`).
        """
        keep_kinds = {ConceptKind(kind) for kind in kinds} if kinds is not None else None
        drop_kinds = {ConceptKind(kind) for kind in exclude_kinds} | NEVER_FINDINGS
        # term -> concept id -> the best rank the concept has for the term
        by_term: dict[str, dict[str, tuple]] = defaultdict(dict)
        surfaces: dict[str, str] = {}
        names: dict[str, str] = {}

        def add(key: str, concept_id: str, rank: tuple, surface: str) -> None:
            ranks = by_term[key]
            if concept_id not in ranks or rank < ranks[concept_id]:
                ranks[concept_id] = rank
            surfaces.setdefault(key, surface.strip().lower())

        for concept in concepts:
            if concept.kind in drop_kinds or (
                keep_kinds is not None and concept.kind not in keep_kinds
            ):
                continue
            names[concept.id] = concept.name
            name_key = term_key(concept.name, min_chars=min_chars)
            for surface in (concept.name, *concept.synonyms):
                key = term_key(surface, min_chars=min_chars)
                if key:
                    add(key, concept.id, concept_rank(concept, own_name=key == name_key), surface)
        for concept_id, forms in (extra_synonyms or {}).items():
            forms = list(forms)
            for surface in forms:
                key = term_key(surface, min_chars=min_chars)
                if key:
                    add(key, concept_id, concept_rank(concept_id, curated=True), surface)
            names.setdefault(concept_id, forms[0] if forms else concept_id)
        terms = {key: tuple(sorted(ranks, key=ranks.__getitem__)) for key, ranks in by_term.items()}
        return cls(terms=terms, names=names, surfaces=surfaces)


# Id prefixes, best first, when nothing else tells two concepts of one term apart: a UMLS CUI is
# what the crosswalk merges sources into (kg_loaders.curies.SOURCE_PRIORITY has the same order).
_PREFIX_ORDER = {"UMLS": 0, "SNOMEDCT": 1, "HP": 2, "DOID": 3, "SYMP": 4}


def concept_rank(
    concept: Concept | str, *, own_name: bool = False, curated: bool = False
) -> tuple[int, int, int, int, str]:
    """Sort key of a concept among those that share a term (lower is better).

    In order: a curated lexicon form (``extra_synonyms``: the curator named this concept for
    the form), a node merged from more sources (the crosswalk's canonical concept, over a
    source's term it could not merge), the concept's own preferred name (not merely one of its
    synonyms), its id prefix (UMLS CUI first), its id.
    """
    concept_id = concept if isinstance(concept, str) else concept.id
    sources = 0 if isinstance(concept, str) else len(concept.sources)
    prefix = concept_id.partition(":")[0]
    return (
        0 if curated else 1,
        -sources,
        0 if own_name else 1,
        _PREFIX_ORDER.get(prefix, len(_PREFIX_ORDER)),
        concept_id,
    )


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
    if len(words) == 1 and len(words[0]) < min_chars:
        return None
    content = [word for word in words if word.isalnum()]
    if all(word in GENERIC_WORDS or word.isdigit() for word in content):
        return None  # "Right", "Right-sided", "Mild to moderate": qualifiers, not findings
    return " ".join(words)
