"""What the cache stores: the matcher's patterns (matched as spaCy's PhraseMatcher would) and the
linker's TF-IDF index (vectorised as scikit-learn would), through their plain-array form."""

from __future__ import annotations

import numpy as np
import pytest

from extractors.text.linker import TermIndex
from extractors.text.pipeline import new_nlp
from extractors.text.state import PipelineState
from extractors.text.vocabulary import Vocabulary
from kg_loaders.seed import read_seed_concepts

TEXTS = [
    "FINDINGS: Small right pleural effusion; no pneumothorax. Mild cardiomegaly.",
    "Bibasilar atelectasis versus consolidation. Pleural effusions, bilateral.",
    "IMPRESSION: Congestive heart failure with pulmonary edema. Emphysema.",
    "Hrat size normal. Pnuemothorax not seen.  Double  spaces\tand tabs.",
    "",
    "é ü — unicode words, x, ab",
]


@pytest.fixture(scope="module")
def vocabulary() -> Vocabulary:
    return Vocabulary.from_concepts(read_seed_concepts())


def test_matches_are_those_of_a_phrase_matcher(vocabulary) -> None:
    from spacy.matcher import PhraseMatcher

    from extractors.text.matcher import ConceptMatcher, set_norms, term_patterns

    nlp = new_nlp()
    matcher = ConceptMatcher(nlp)
    matcher.set_patterns(vocabulary, term_patterns(nlp.tokenizer, vocabulary))
    reference = PhraseMatcher(nlp.vocab, attr="NORM")
    for pattern in matcher.concepts_by_pattern:
        reference.add("TERM", [list(pattern)])
    total = 0
    for doc in nlp.tokenizer.pipe(TEXTS * 2 + [" ".join(vocabulary.surfaces.values())]):
        set_norms(doc)
        ours = sorted(matcher.matches(doc))
        assert ours == sorted((start, end) for _, start, end in reference(doc))
        total += len(ours)
    assert total > len(vocabulary)  # every term matched itself in the joined surfaces


def test_term_index_vectorises_as_tfidf_vectorizer(vocabulary) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    keys = list(vocabulary.terms)
    index = TermIndex.fit(keys)
    reference = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 3), dtype=np.float32)
    reference.fit(keys)
    queries = [*TEXTS, *keys[:50], "pleural efusion", "PLEURAL   EFFUSION"]
    ours, theirs = index.transform(queries).toarray(), reference.transform(queries).toarray()
    assert ours.shape == theirs.shape and np.allclose(ours, theirs, atol=1e-6)


def test_state_round_trips_through_plain_arrays(vocabulary) -> None:
    state = PipelineState.build(new_nlp().tokenizer, vocabulary)
    arrays = state.arrays()
    assert all(a.dtype != object for a in arrays.values())  # savez without pickle
    back = PipelineState.from_arrays(arrays, terms=len(vocabulary))
    assert back.patterns == state.patterns
    assert (back.index.matrix != state.index.matrix).nnz == 0
    assert back.index.columns == state.index.columns
    queries = ["pleural efusion", "cardiomegally"]
    assert np.array_equal(
        back.index.transform(queries).toarray(), state.index.transform(queries).toarray()
    )
    with pytest.raises(ValueError):
        PipelineState.from_arrays(arrays, terms=len(vocabulary) + 1)
    no_linker = PipelineState.build(new_nlp().tokenizer, vocabulary, linker=False)
    assert PipelineState.from_arrays(no_linker.arrays(), terms=len(vocabulary)).index is None
