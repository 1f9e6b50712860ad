"""Concept matcher: a spaCy component that finds KG terms in a report (longest match wins).

Tokens are matched on a normalised form (lower case, singular; see
:func:`extractors.text.vocabulary.normalise_word`) written to ``Token.norm_``, so one pattern per
term covers "Effusion", "effusions" and "EFFUSIONS". Matches become ``doc.ents`` with the concept
id in ``Span._.concept_ids`` and ``Span._.link_score = 1.0``: one concept per span, the first of
the term's (the vocabulary orders them best first); the other concepts the term names are in
``Span._.alternative_ids``, never findings.

A pattern is the tuple of its tokens' NORM hashes (:func:`term_patterns`, cached on disk by
:mod:`extractors.text.cache`), and matching looks token runs up in the dict of patterns, from
each token that starts one, at the lengths of the patterns starting with it: every match, as
spaCy's ``PhraseMatcher`` finds them, from a structure built in a few hundredths of a second for a
60k-term KG (``PhraseMatcher.add`` took 9 s with a key per term, as it makes a lexeme per key,
and 0.7 s with one key).
"""

from collections.abc import Callable, Iterable, Sequence

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from extractors.text.vocabulary import Vocabulary, normalise_word

FINDING_LABEL = "FINDING"
NER_SPANS = "sci_ner"
Pattern = tuple[int, ...]  # NORM hashes of a term's tokens


def register_extensions() -> None:
    """Span attributes the text pipeline writes (idempotent)."""
    for name, default in (
        ("concept_ids", ()),
        ("alternative_ids", ()),  # other concepts the matched term names (not findings)
        ("link_score", 1.0),
        ("linked_by", ""),
    ):
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)


def set_norms(doc: Doc) -> None:
    """Write the normalised form of each token to ``Token.norm_`` (what patterns match on)."""
    for token in doc:
        token.norm_ = normalise_word(token.text)


def term_patterns(
    tokenizer: Callable[[str], Doc],
    vocabulary: Vocabulary,
    *,
    track: Callable[[Iterable[Doc], int], Iterable[Doc]] | None = None,
) -> list[Pattern]:
    """The NORM-hash pattern of each term of ``vocabulary``, in ``vocabulary.terms`` order.

    Args:
        tokenizer: the pipeline's tokenizer (patterns must be tokenized as reports are).
        vocabulary: the terms.
        track: wraps the tokenized terms, e.g. to show progress (called with the count).
    """
    surfaces = [vocabulary.surfaces.get(key, key) for key in vocabulary.terms]
    docs: Iterable[Doc] = tokenizer.pipe(surfaces)  # type: ignore[attr-defined]
    if track is not None:
        docs = track(docs, len(surfaces))
    patterns = []
    for doc in docs:
        set_norms(doc)
        patterns.append(tuple(token.norm for token in doc))
    return patterns


@Language.factory("kgdx_concept_matcher")
def make_concept_matcher(nlp: Language, name: str) -> "ConceptMatcher":
    return ConceptMatcher(nlp, name)


class ConceptMatcher:
    """Phrase matcher over a :class:`Vocabulary`; call :meth:`set_vocabulary` (or
    :meth:`set_patterns`) before use.

    Args:
        nlp: the pipeline (its tokenizer turns terms into patterns).
        name: component name.
    """

    def __init__(self, nlp: Language, name: str = "kgdx_concept_matcher") -> None:
        register_extensions()
        self.nlp = nlp
        self.name = name
        self.concepts_by_pattern: dict[Pattern, tuple[str, ...]] = {}
        self._lengths: dict[int, tuple[int, ...]] = {}  # first NORM -> its patterns' lengths

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Replace the patterns with the terms of ``vocabulary``."""
        self.set_patterns(vocabulary, term_patterns(self.nlp.tokenizer, vocabulary))

    def set_patterns(self, vocabulary: Vocabulary, patterns: Sequence[Pattern]) -> None:
        """Replace the patterns with ``patterns`` (:func:`term_patterns` of ``vocabulary``).

        Terms that tokenize to the same pattern ("pleural-effusion", "pleural effusion") name
        the concepts of both, the first term's first.
        """
        by_pattern: dict[Pattern, tuple[str, ...]] = {}
        for key, pattern in zip(vocabulary.terms, patterns, strict=True):
            if not pattern:
                continue
            ids = vocabulary.terms[key]
            known = by_pattern.get(pattern)
            by_pattern[pattern] = ids if known is None else tuple(dict.fromkeys(known + ids))
        lengths: dict[int, set[int]] = {}
        for pattern in by_pattern:
            lengths.setdefault(pattern[0], set()).add(len(pattern))
        self.concepts_by_pattern = by_pattern
        self._lengths = {first: tuple(sorted(sizes)) for first, sizes in lengths.items()}

    def matches(self, doc: Doc) -> list[tuple[int, int]]:
        """``(start, end)`` of every token run whose NORMs are a pattern (overlaps included)."""
        norms = [token.norm for token in doc]
        patterns, lengths, count = self.concepts_by_pattern, self._lengths, len(norms)
        found = []
        for start, norm in enumerate(norms):
            for size in lengths.get(norm, ()):
                if start + size > count:
                    break
                if size == 1 or tuple(norms[start : start + size]) in patterns:
                    found.append((start, start + size))
        return found

    def concepts_of(self, span: Span) -> tuple[str, ...]:
        """The concept ids of a matched span (by its tokens' NORM hashes)."""
        return self.concepts_by_pattern.get(tuple(token.norm for token in span), ())

    def __call__(self, doc: Doc) -> Doc:
        set_norms(doc)
        if doc.ents:  # entities of an upstream NER model: keep them as linker candidates
            doc.spans[NER_SPANS] = list(doc.ents)
        spans = []
        for start, end in self.matches(doc):
            span = Span(doc, start, end, label=FINDING_LABEL)
            spans.append((span, self.concepts_of(span)))
        spans.extend(self._abbreviation_spans(doc, spans))
        kept = filter_spans([span for span, _ in spans])
        ids_by_bounds = {(span.start, span.end): ids for span, ids in spans}
        for span in kept:
            # One concept per span: the first (the vocabulary orders a term's ids best first).
            ids = ids_by_bounds[(span.start, span.end)]
            span._.concept_ids, span._.alternative_ids = ids[:1], ids[1:]
            span._.link_score = 1.0
            span._.linked_by = "exact"
        doc.ents = kept
        return doc

    @staticmethod
    def _abbreviation_spans(
        doc: Doc, spans: list[tuple[Span, tuple[str, ...]]]
    ) -> list[tuple[Span, tuple[str, ...]]]:
        """Short forms defined in the report ("pneumothorax (PTX)") take their long form's ids."""
        if not Doc.has_extension("abbreviations") or not doc._.abbreviations:
            return []
        extra = []
        for short in doc._.abbreviations:
            long_form = short._.long_form
            if long_form is None:
                continue
            inside = [
                (span.end - span.start, ids)
                for span, ids in spans
                if span.start >= long_form.start and span.end <= long_form.end
            ]
            if inside:
                ids = max(inside)[1]
                extra.append((Span(doc, short.start, short.end, label=FINDING_LABEL), ids))
        return extra
