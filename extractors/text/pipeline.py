"""Assemble the report pipeline from real components.

scispaCy's rule tokenizer and ``AbbreviationDetector``, medspaCy's PyRuSH sentence splitter
(rules written for clinical text), medspaCy's ``Sectionizer`` with radiology headers, the KG
concept matcher, the fuzzy linker, an optional ``en_core_sci_*`` NER feeding the linker,
medspaCy's ``ConText`` with the radiology assertion rules of ``data/nlp/assertion_rules.tsv``,
and normal statements ("heart size is normal": cardiomegaly absent) from the same file.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from spacy.language import Language

from extractors.text.vocabulary import Vocabulary

if TYPE_CHECKING:
    from extractors.text.state import PipelineState

ASSERTION_MODES = ("context", "negex", "none")


@dataclass(frozen=True)
class PipelineConfig:
    """Switches of the report pipeline.

    Args:
        linker: run the fuzzy linker on spans the exact matcher misses.
        link_threshold: minimum cosine similarity of a fuzzy link (its confidence).
        assertion: how assertions are read: ``"context"`` (medspaCy ConText: negation,
            uncertainty, history, family), ``"negex"`` (negspacy's default NegEx, negation only;
            a comparison baseline) or ``"none"`` (every mention present; a baseline).
        radiology_rules: ConText reads the radiology rule set (``assertion_rules``) and normal
            statements become absent findings; off, ConText runs medspaCy's clinical-note
            defaults alone (a baseline).
        assertion_rules: path of an assertion rule file (:mod:`extractors.text.rules`); ``None``
            is the shipped ``data/nlp/assertion_rules.tsv``. Its section headers are used in
            every mode.
        abbreviations: run scispaCy's ``AbbreviationDetector`` (long forms replace short ones).
        sentences: ``"rules"`` (:mod:`extractors.text.sentences`, fast radiology rules) or
            ``"pyrush"`` (medspaCy's PyRuSH; same kind of rules, several times slower).
        sci_model: name of an installed ``en_core_sci_*`` model whose NER spans feed the linker;
            ``None`` (default) runs without one.
    """

    linker: bool = True
    link_threshold: float = 0.85
    assertion: str = "context"
    radiology_rules: bool = True
    assertion_rules: str | None = None
    abbreviations: bool = True
    sentences: str = "rules"
    sci_model: str | None = None


def _rush_rules() -> str:
    import medspacy

    return str(Path(medspacy.__file__).resolve().parents[1] / "resources" / "en" / "rush_rules.tsv")


def new_nlp() -> Language:
    """A blank English pipeline with scispaCy's rule tokenizer (the tokenizer of every pipeline:
    term patterns must be tokenized as reports are)."""
    import spacy

    if TOKENIZER not in spacy.registry.tokenizers:
        spacy.registry.tokenizers.register(TOKENIZER, func=_scispacy_tokenizer)
    return spacy.blank("en", config={"nlp": {"tokenizer": {"@tokenizers": TOKENIZER}}})


TOKENIZER = "kgdx.scispacy_tokenizer.v1"


def _scispacy_tokenizer() -> Callable[[Language], Any]:
    """scispaCy's ``combined_rule_tokenizer`` as the pipeline's tokenizer factory: made directly,
    not after spaCy's default tokenizer (which it only reads ``token_match`` from)."""
    from scispacy.custom_tokenizer import combined_rule_tokenizer

    def create(nlp: Language) -> Any:
        default = SimpleNamespace(token_match=nlp.Defaults.token_match)
        with warnings.catch_warnings():
            # Python's re flags a character class of scispaCy's suffix pattern as a possible
            # future set union ("Possible set union at position 6328"); it compiles and
            # matches as written today, and every user saw the warning on stderr
            warnings.filterwarnings("ignore", "Possible set union", FutureWarning)
            return combined_rule_tokenizer(
                SimpleNamespace(vocab=nlp.vocab, Defaults=nlp.Defaults, tokenizer=default)
            )

    return create


def build_pipeline(
    vocabulary: Vocabulary,
    config: PipelineConfig | None = None,
    *,
    state: PipelineState | None = None,
) -> Language:
    """A spaCy pipeline that writes KG-linked finding spans with ConText attributes.

    Args:
        vocabulary: the KG terms to match and link.
        config: pipeline switches (defaults when ``None``).
        state: the matcher's patterns and the linker's index for ``vocabulary``, built before
            (:mod:`extractors.text.cache`); derived here when ``None``.

    Returns:
        The pipeline; ``doc.ents`` are the findings, each with ``Span._.concept_ids``,
        ``Span._.link_score`` and ConText's ``is_negated`` / ``is_uncertain`` / ... attributes.

    Raises:
        ConfigError: ``sci_model`` names a model that is not installed, or the assertion rule
            file is missing or malformed.
    """
    import medspacy.context  # noqa: F401  (register the medspaCy factories)
    import medspacy.section_detection  # noqa: F401
    import negspacy.negation  # noqa: F401  (registers "negex")

    import extractors.text.abbreviations  # noqa: F401  (registers the factories)
    import extractors.text.linker  # noqa: F401
    import extractors.text.normal  # noqa: F401
    import extractors.text.sentences  # noqa: F401
    from extractors.text.matcher import FINDING_LABEL
    from extractors.text.rules import CONTEXT_SPAN_ATTRS, context_rules, load_assertion_rules
    from extractors.text.state import PipelineState
    from graph.errors import ConfigError

    config = config or PipelineConfig()
    if config.assertion not in ASSERTION_MODES:
        raise ConfigError(
            f"unknown assertion mode {config.assertion!r}; expected one of {ASSERTION_MODES}"
        )
    rule_set = load_assertion_rules(config.assertion_rules)
    _quiet_pyrush()
    nlp = new_nlp()
    if config.sentences == "pyrush":
        nlp.add_pipe("medspacy_pyrush", config={"rules_path": _rush_rules()})
    elif config.sentences == "rules":
        nlp.add_pipe("kgdx_sentences")
    else:
        raise ConfigError(
            f"unknown sentence splitter {config.sentences!r}; use 'rules' or 'pyrush'"
        )
    if config.abbreviations:
        nlp.add_pipe("kgdx_abbreviations")
    sectionizer = nlp.add_pipe("medspacy_sectionizer", config={"rules": None, "span_attrs": None})
    sectionizer.add(rule_set.section_rules())
    if state is None:
        state = PipelineState.build(nlp.tokenizer, vocabulary, linker=config.linker)
    nlp.add_pipe("kgdx_concept_matcher").set_patterns(vocabulary, state.patterns)
    if config.sci_model:
        _add_sci_ner(nlp, config.sci_model, ConfigError)
    if config.linker:
        linker = nlp.add_pipe("kgdx_fuzzy_linker", config={"threshold": config.link_threshold})
        linker.set_vocabulary(vocabulary, state.index)
    if config.assertion == "negex":
        nlp.add_pipe("negex", config={"ent_types": [FINDING_LABEL]})
    elif config.assertion == "context":
        from spacy.tokens import Span

        for attributes in CONTEXT_SPAN_ATTRS.values():
            for attribute in attributes:
                if not Span.has_extension(attribute):
                    Span.set_extension(attribute, default=False)
        context = nlp.add_pipe(
            "medspacy_context", config={"rules": None, "span_attrs": CONTEXT_SPAN_ATTRS}
        )
        if config.radiology_rules:
            context.add(rule_set.context_rules(nlp))
            nlp.add_pipe("kgdx_normal_statements").configure(rule_set, vocabulary)
        else:
            context.add(context_rules(radiology=False))
    return nlp


def _quiet_pyrush() -> None:
    """PyRuSH logs every sentence decision at DEBUG through loguru; keep it quiet."""
    try:
        from loguru import logger
    except ImportError:  # pragma: no cover - PyRuSH depends on loguru
        return
    logger.disable("PyRuSH")


def _add_sci_ner(nlp: Language, model: str, error: type[Exception]) -> None:
    """Source the NER of an installed scispaCy model; its spans become linker candidates."""
    import spacy

    try:
        source = spacy.load(model, exclude=["tagger", "parser", "lemmatizer", "attribute_ruler"])
    except OSError as exc:
        raise error(
            f"scispaCy model {model!r} is not installed; install it or set sci_model=None"
        ) from exc
    nlp.add_pipe("tok2vec", source=source, name="sci_tok2vec", before="kgdx_concept_matcher")
    nlp.add_pipe("ner", source=source, name="sci_ner", after="sci_tok2vec")
