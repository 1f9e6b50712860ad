"""``ReportExtractor``: report text -> KG-linked :class:`~graph.records.Finding` records."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from extractors.text.pipeline import PipelineConfig, build_pipeline
from extractors.text.vocabulary import Vocabulary
from graph.errors import ConfigError, InputError
from graph.records import (
    Assertion,
    Certainty,
    Concept,
    ConceptKind,
    Experiencer,
    Finding,
    Polarity,
    Temporality,
    TextSpan,
)

if TYPE_CHECKING:
    from spacy.tokens import Doc

    from extractors.text.state import PipelineState
    from graph.store import GraphStore

# medspaCy ConText compares every modifier with every target of a doc (quadratic), so long
# documents go through in pieces of about this size (most radiology reports fit in one).
DEFAULT_CHUNK_CHARS = 5_000
_BREAK_RE = re.compile(r"\n\s*\n|\n|(?<=[.!?])\s+")


def coerce_text(text: str | bytes) -> str:
    """Return report text as ``str``.

    Raises:
        InputError: ``text`` is neither ``str`` nor ``bytes``, or its bytes are not valid UTF-8.
    """
    if isinstance(text, bytes):
        try:
            return text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                f"report bytes are not valid UTF-8 (byte {exc.start}); decode the file with its "
                "real encoding first, e.g. text.decode('latin-1')"
            ) from None
    if not isinstance(text, str):
        raise InputError(f"report text must be str or bytes, got {type(text).__name__}")
    # Lone surrogates (from a lossy decode) cannot be encoded later; replace them.
    return text.encode("utf-8", "replace").decode("utf-8") if _has_surrogates(text) else text


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def chunk_offsets(text: str, max_chars: int) -> list[tuple[int, int]]:
    """Split ``text`` into ``[start, end)`` pieces of at most ``max_chars``, at line or sentence
    breaks where there is one (so no finding is cut in two)."""
    pieces = []
    start = 0
    while len(text) - start > max_chars:
        window_end = start + max_chars
        cut = None
        for match in _BREAK_RE.finditer(text, start + max_chars // 2, window_end):
            cut = match.end()
        if cut is None or cut <= start:
            space = text.rfind(" ", start + 1, window_end)
            cut = space + 1 if space > start else window_end
        pieces.append((start, cut))
        start = cut
    pieces.append((start, len(text)))
    return pieces


class ReportExtractor:
    """Extract KG-linked findings (with assertion and provenance) from radiology reports.

    Args:
        vocabulary: the KG terms to match (see :meth:`from_concepts`).
        config: pipeline switches.
        chunk_chars: longer texts are processed in pieces of about this size.
        state: the matcher's patterns and linker's index for ``vocabulary`` when they were built
            before (:mod:`extractors.text.cache`).
    """

    def __init__(
        self,
        vocabulary: Vocabulary,
        config: PipelineConfig | None = None,
        *,
        chunk_chars: int = DEFAULT_CHUNK_CHARS,
        state: PipelineState | None = None,
    ) -> None:
        if len(vocabulary) == 0:
            raise ConfigError(
                "the extractor's vocabulary is empty: give it KG concepts with names "
                "(build the KG first, e.g. `kgdx kg build`)"
            )
        self.vocabulary = vocabulary
        self.config = config or PipelineConfig()
        self.chunk_chars = chunk_chars
        self.nlp = build_pipeline(vocabulary, self.config, state=state)
        self.nlp.max_length = max(self.nlp.max_length, chunk_chars + 1)

    @classmethod
    def from_concepts(
        cls,
        concepts: Iterable[Concept],
        *,
        extra_synonyms: Mapping[str, Iterable[str]] | None = None,
        kinds: Iterable[ConceptKind | str] | None = None,
        exclude_kinds: Iterable[ConceptKind | str] = (ConceptKind.ANATOMY,),
        chunk_chars: int = DEFAULT_CHUNK_CHARS,
        **config: Any,
    ) -> ReportExtractor:
        """Build an extractor whose vocabulary is the names and synonyms of ``concepts``.

        Args:
            concepts: KG concepts (e.g. ``store.iter_concepts()``).
            extra_synonyms: concept id -> extra surface forms (a curated lexicon).
            kinds: keep only concepts of these kinds.
            exclude_kinds: leave out concepts of these kinds (anatomy by default).
            chunk_chars: see the class.
            **config: :class:`PipelineConfig` fields (``linker``, ``assertion``, ...).

        Raises:
            ConfigError: an unknown config key, or no usable term.
        """
        known = {f.name for f in fields(PipelineConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ConfigError(
                f"unknown extractor option(s) {unknown}; expected some of {sorted(known)}"
            )
        vocabulary = Vocabulary.from_concepts(
            concepts, extra_synonyms=extra_synonyms, kinds=kinds, exclude_kinds=exclude_kinds
        )
        return cls(vocabulary, PipelineConfig(**config), chunk_chars=chunk_chars)

    @classmethod
    def from_store(cls, store: GraphStore, **kwargs: Any) -> ReportExtractor:
        """Build an extractor over all concepts of a graph store (see :meth:`from_concepts`)."""
        return cls.from_concepts(store.iter_concepts(), **kwargs)

    # ------------------------------------------------------------------ extraction
    def extract(self, text: str | bytes, doc_id: str = "report") -> list[Finding]:
        """Findings of one report, in text order.

        Args:
            text: the report (``bytes`` must be UTF-8).
            doc_id: id written to each finding's provenance.

        Raises:
            InputError: ``text`` is not text or not valid UTF-8.
        """
        return next(iter(self.extract_many([(text, doc_id)])))

    def extract_many(
        self, items: Iterable[str | bytes | tuple[str | bytes, str]], *, batch_size: int = 64
    ) -> Iterator[list[Finding]]:
        """Findings of many reports, one list per report, streamed with ``nlp.pipe``.

        Args:
            items: report texts, or ``(text, doc_id)`` pairs (ids default to the position).
            batch_size: reports per spaCy batch.
        """
        jobs = self._jobs(items)
        current_id: str | None = None
        current: list[Finding] = []
        last_section = ""
        for doc, (doc_id, offset, is_last) in self.nlp.pipe(
            jobs, as_tuples=True, batch_size=batch_size
        ):
            if doc_id != current_id:
                current_id, current, last_section = doc_id, [], ""
            findings, last_section = self._findings(doc, doc_id, offset, last_section)
            current.extend(findings)
            if is_last:
                yield current

    def _jobs(
        self, items: Iterable[str | bytes | tuple[str | bytes, str]]
    ) -> Iterator[tuple[str, tuple[str, int, bool]]]:
        for position, item in enumerate(items):
            text, doc_id = item if isinstance(item, tuple) else (item, str(position))
            text = coerce_text(text)
            if not text.strip():
                yield "", (doc_id, 0, True)
                continue
            pieces = chunk_offsets(text, self.chunk_chars)
            for number, (start, end) in enumerate(pieces):
                yield text[start:end], (doc_id, start, number == len(pieces) - 1)

    def _findings(
        self, doc: Doc, doc_id: str, offset: int, inherited_section: str
    ) -> tuple[list[Finding], str]:
        """Findings of one processed chunk, and the section open at its end."""
        findings = []
        for span in doc.ents:
            concept_ids = span._.concept_ids
            if not concept_ids:
                continue
            section = span[0]._.section_category or inherited_section
            assertion = self._assertion(span, section)
            sentence = span.sent
            provenance = TextSpan(
                doc_id=doc_id,
                section=section or "",
                sentence=sentence.text.strip(),
                start=offset + span.start_char,
                end=offset + span.end_char,
                text=span.text,
            )
            confidence = float(min(1.0, max(0.0, span._.link_score)))
            for concept_id in concept_ids:
                findings.append(
                    Finding(
                        concept_id=concept_id,
                        assertion=assertion,
                        confidence=confidence,
                        provenance=provenance,
                    )
                )
        last_section = inherited_section
        if len(doc) and doc[-1]._.section_category:
            last_section = doc[-1]._.section_category
        return findings, last_section

    def _assertion(self, span: Any, section: str) -> Assertion:
        """Assertion from the span's ConText (or NegEx) attributes and its section.

        A section implies an assertion only where the rule file says so (``section_assertion``
        rows: past medical history and comparison are historical, family history is a
        relative's); a ``HISTORY:`` or ``INDICATION:`` header is the presenting problem. A
        relative's finding is never historical: temporality is the patient's timeline, and a
        family history is past by nature ("father with history of COPD" is the father's COPD).
        """
        from extractors.text.rules import load_assertion_rules

        section_effect = load_assertion_rules(self.config.assertion_rules).section_assertions
        negated = uncertain = historical = family = False
        if self.config.assertion == "context":
            negated, uncertain = span._.is_negated, span._.is_uncertain or span._.is_hypothetical
            historical, family = span._.is_historical, span._.is_family
        elif self.config.assertion == "negex":
            negated = bool(span._.negex)
        family = family or section_effect.get(section) == "FAMILY"
        historical = historical or section_effect.get(section) == "HISTORICAL"
        return Assertion(
            polarity=Polarity.ABSENT if negated else Polarity.PRESENT,
            certainty=Certainty.POSSIBLE if uncertain else Certainty.DEFINITE,
            temporality=Temporality.HISTORICAL
            if historical and not family
            else Temporality.CURRENT,
            experiencer=Experiencer.FAMILY if family else Experiencer.PATIENT,
        )

    def concept_name(self, concept_id: str) -> str:
        """The display name of a concept of the vocabulary (its id when unknown)."""
        return self.vocabulary.names.get(concept_id, concept_id)
