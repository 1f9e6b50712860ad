"""Concept matcher: a spaCy component that finds KG terms in a report (longest match wins).

Tokens are matched on a normalised form (lower case, singular; see
:func:`extractors.text.vocabulary.normalise_word`) written to ``Token.norm_``, so one pattern per
term covers "Effusion", "effusions" and "EFFUSIONS". Matches become ``doc.ents`` with the concept
ids in ``Span._.concept_ids`` and ``Span._.link_score = 1.0``.
"""

from spacy.language import Language
from spacy.matcher import PhraseMatcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from extractors.text.vocabulary import Vocabulary, normalise_word

FINDING_LABEL = "FINDING"
NER_SPANS = "sci_ner"


def register_extensions() -> None:
    """Span attributes the text pipeline writes (idempotent)."""
    for name, default in (("concept_ids", ()), ("link_score", 1.0), ("linked_by", "")):
        if not Span.has_extension(name):
            Span.set_extension(name, default=default)


def set_norms(doc: Doc) -> None:
    """Write the normalised form of each token to ``Token.norm_`` (what patterns match on)."""
    for token in doc:
        token.norm_ = normalise_word(token.text)


@Language.factory("kgdx_concept_matcher")
def make_concept_matcher(nlp: Language, name: str) -> "ConceptMatcher":
    return ConceptMatcher(nlp, name)


class ConceptMatcher:
    """Phrase matcher over a :class:`Vocabulary`; call :meth:`set_vocabulary` before use.

    Args:
        nlp: the pipeline (its tokenizer turns terms into patterns).
        name: component name.
    """

    def __init__(self, nlp: Language, name: str = "kgdx_concept_matcher") -> None:
        register_extensions()
        self.nlp = nlp
        self.name = name
        self.matcher = PhraseMatcher(nlp.vocab, attr="NORM")
        self.concepts_by_key: dict[int, tuple[str, ...]] = {}

    def set_vocabulary(self, vocabulary: Vocabulary) -> None:
        """Replace the patterns with the terms of ``vocabulary``."""
        self.matcher = PhraseMatcher(self.nlp.vocab, attr="NORM")
        self.concepts_by_key = {}
        keys = list(vocabulary.terms)
        surfaces = [vocabulary.surfaces.get(key, key) for key in keys]
        for key, pattern in zip(keys, self.nlp.tokenizer.pipe(surfaces), strict=True):
            set_norms(pattern)
            match_id = self.nlp.vocab.strings.add(key)
            self.concepts_by_key[match_id] = vocabulary.terms[key]
            self.matcher.add(key, [pattern])

    def __call__(self, doc: Doc) -> Doc:
        set_norms(doc)
        if doc.ents:  # entities of an upstream NER model: keep them as linker candidates
            doc.spans[NER_SPANS] = list(doc.ents)
        spans = []
        for match_id, start, end in self.matcher(doc):
            span = Span(doc, start, end, label=FINDING_LABEL)
            spans.append((span, self.concepts_by_key[match_id]))
        spans.extend(self._abbreviation_spans(doc, spans))
        kept = filter_spans([span for span, _ in spans])
        ids_by_bounds = {(span.start, span.end): ids for span, ids in spans}
        for span in kept:
            span._.concept_ids = ids_by_bounds[(span.start, span.end)]
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
