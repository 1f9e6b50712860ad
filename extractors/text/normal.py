"""Normal statements: "heart size is within normal limits" is an absent cardiomegaly.

A report often says a structure is normal instead of naming the finding it lacks. The rule file
(:mod:`extractors.text.rules`) lists the subjects of such statements ("heart size", "cardiac
silhouette", "lungs") with the concepts a normal statement about them makes absent, and NORMAL
triggers ("within normal limits", "is normal", "normal", "clear", "not enlarged") with their own
pseudo-triggers ("upper limits of normal") and terminators. This component matches the subjects
outside the concept mentions, runs a ConText of the NORMAL rules over them alone (so ordinary
negation never touches them), and adds each subject a NORMAL trigger reaches to ``doc.ents`` as
a negated finding of its concepts. Subjects no trigger reaches are dropped: "heart size" alone
says nothing.
"""

from typing import TYPE_CHECKING

from spacy.language import Language
from spacy.matcher import Matcher
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from extractors.text.matcher import FINDING_LABEL, register_extensions

if TYPE_CHECKING:
    from extractors.text.rules import AssertionRuleSet
    from extractors.text.vocabulary import Vocabulary

SUBJECT_LABEL = "NORMAL_SUBJECT"
SUBJECT_SPANS = "kgdx_normal_subjects"


@Language.factory("kgdx_normal_statements")
def make_normal_statements(nlp: Language, name: str) -> "NormalStatements":
    return NormalStatements(nlp, name)


class NormalStatements:
    """Absent findings read from normal statements; call :meth:`configure` before use.

    Args:
        nlp: the pipeline (its vocab and tokenizer build the matchers).
        name: component name.
    """

    def __init__(self, nlp: Language, name: str = "kgdx_normal_statements") -> None:
        register_extensions()
        for attribute in ("is_normal", "is_negated"):
            if not Span.has_extension(attribute):
                Span.set_extension(attribute, default=False)
        self.nlp = nlp
        self.name = name
        self.matcher = Matcher(nlp.vocab)
        self.concepts_by_key: dict[int, tuple[str, ...]] = {}
        self.context = None

    def configure(self, rules: "AssertionRuleSet", vocabulary: "Vocabulary") -> None:
        """Load the subjects and NORMAL rules of ``rules``; keep concepts ``vocabulary`` has."""
        from medspacy.context import ConText

        from extractors.text.rules import NORMAL_SPAN_ATTRS, expand_first_token

        self.matcher = Matcher(self.nlp.vocab, validate=True)
        self.concepts_by_key = {}
        for subject in rules.normal_subjects:
            concept_ids = tuple(c for c in subject.concept_ids if c in vocabulary.names)
            if not concept_ids:
                continue
            pattern = list(subject.pattern or ()) or [
                {"LOWER": token.lower_} for token in self.nlp.tokenizer(subject.literal)
            ]
            key = self.nlp.vocab.strings.add(f"{SUBJECT_LABEL}:{subject.literal}")
            self.matcher.add(key, expand_first_token(pattern))
            self.concepts_by_key[key] = concept_ids
        self.context = ConText(
            self.nlp,
            name=f"{self.name}_context",
            rules=None,
            span_attrs=NORMAL_SPAN_ATTRS,
            input_span_type="group",
            span_group_name=SUBJECT_SPANS,
        )
        self.context.add(rules.context_rules(self.nlp, normal=True))

    def __call__(self, doc: Doc) -> Doc:
        if self.context is None or not self.concepts_by_key:
            return doc
        taken = {i for ent in doc.ents for i in range(ent.start, ent.end)}
        concepts = {
            (start, end): self.concepts_by_key[key]
            for key, start, end in self.matcher(doc)
            if not taken.intersection(range(start, end))
        }
        if not concepts:
            return doc
        subjects = filter_spans(
            [Span(doc, start, end, label=SUBJECT_LABEL) for start, end in concepts]
        )
        doc.spans[SUBJECT_SPANS] = subjects
        graph = doc._.context_graph  # the assertion ConText's graph stays the doc's graph
        self.context(doc)
        doc._.context_graph = graph
        statements = []
        for subject in subjects:
            if not subject._.is_normal:
                continue
            span = Span(doc, subject.start, subject.end, label=FINDING_LABEL)
            span._.concept_ids = concepts[(subject.start, subject.end)]
            span._.link_score = 1.0
            span._.linked_by = "normal_statement"
            span._.is_negated = True
            statements.append(span)
        del doc.spans[SUBJECT_SPANS]
        if statements:
            doc.ents = sorted([*doc.ents, *statements], key=lambda span: span.start)
        return doc
