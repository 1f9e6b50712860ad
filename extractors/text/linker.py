"""Fuzzy linker: character n-gram TF-IDF nearest neighbours over KG terms, for spans the exact
matcher misses (misspellings, spelling variants, hyphenation).

scispaCy's ``CandidateGenerator`` builds the same kind of index (char 3-gram TF-IDF, cosine
neighbours) but its ANN index builder does not run on Python 3.11 here. The index is the
L2-normalised scikit-learn ``TfidfVectorizer`` matrix of the KG terms; a sparse product with the
query vectors gives exact cosine nearest neighbours. Candidate spans are runs of content words
outside the exact matches (and their sub-runs up to ``max_words``) that contain a word no KG
term has; a link needs the cosine above ``threshold`` and every word close to the term's word.
"""

import re
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans

from extractors.text.matcher import FINDING_LABEL, NER_SPANS, register_extensions
from extractors.text.vocabulary import GENERIC_WORDS, Vocabulary

# Words that end a candidate: function words and the trigger words of negation/uncertainty,
# which must never be linked as part of a finding.
_BREAK_WORDS = frozenset(
    """
    a an the and or of in on at to for with without by from as is are was were be been there
    this that these those it its no not nor any some which who per than then versus vs
    may might could can cannot likely unlikely possible probable evidence suspicious
    again also both each either seen noted identified demonstrated visualized appear appears
    """.split()
)


def words_match(candidate: str, term: str, *, min_ratio: float = 0.8) -> bool:
    """True when ``candidate`` and ``term`` have the same words up to small spelling edits.

    Char n-gram cosine is high for a candidate that differs from a term by one whole word
    ("stable cardiomediastinal silhouette" vs "enlarged ..."); a fuzzy link is meant for
    typos and spelling variants, so each word must be close to its counterpart.
    """
    candidate_words, term_words = candidate.split(), term.split()
    if len(candidate_words) != len(term_words):
        return False
    return all(
        a == b or (a[:1] == b[:1] and SequenceMatcher(None, a, b).ratio() >= min_ratio)
        for a, b in zip(candidate_words, term_words, strict=True)
    )


_NGRAM = 3
_SPACES_RE = re.compile(r"\s\s+")


def char_wb_ngrams(text: str) -> list[str]:
    """The char 3-grams of ``text`` inside word boundaries, words padded with a space
    (scikit-learn's ``analyzer="char_wb"`` on lower-cased text)."""
    grams = []
    for word in _SPACES_RE.sub(" ", text.lower()).split():
        word = f" {word} "
        grams.extend(word[i : i + _NGRAM] for i in range(max(1, len(word) - _NGRAM + 1)))
    return grams


@dataclass
class TermIndex:
    """The char 3-gram TF-IDF index of a vocabulary's terms.

    :meth:`fit` uses scikit-learn's ``TfidfVectorizer`` (smooth idf, L2 rows); queries are
    vectorised here with the fitted n-gram columns and idf weights, the same numbers without
    importing scikit-learn (about 1 s of a cached start).

    Args:
        columns: n-gram -> column.
        idf: idf weight of each column.
        matrix: L2-normalised term vectors, transposed (n-grams x terms, CSR).
    """

    columns: dict[str, int]
    idf: np.ndarray
    matrix: Any

    @classmethod
    def fit(cls, keys: list[str]) -> "TermIndex":
        """Fit the index over normalised term keys (in the linker's term order)."""
        from sklearn.feature_extraction.text import TfidfVectorizer

        vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(_NGRAM, _NGRAM), min_df=1, dtype=np.float32
        )
        # Rows are L2-normalised, so a sparse product is the cosine similarity; it only touches
        # terms that share an n-gram with the query (sklearn's brute-force NearestNeighbors
        # computes a dense row per query, 10x slower on a 60k-term KG).
        matrix = vectorizer.fit_transform(keys).T.tocsr()
        columns = {gram: int(column) for gram, column in vectorizer.vocabulary_.items()}
        return cls(columns, np.asarray(vectorizer.idf_, dtype=np.float32), matrix)

    def transform(self, texts: list[str]) -> Any:
        """L2-normalised TF-IDF rows of ``texts`` (CSR, texts x n-grams); unknown n-grams
        are left out, as ``TfidfVectorizer.transform`` does."""
        from scipy.sparse import csr_matrix

        indptr, indices, data = [0], [], []
        for text in texts:
            counts: dict[int, int] = {}
            for gram in char_wb_ngrams(text):
                column = self.columns.get(gram)
                if column is not None:
                    counts[column] = counts.get(column, 0) + 1
            row = sorted(counts)
            weights = np.array([counts[c] for c in row], np.float32) * self.idf[row]
            norm = float(np.sqrt(np.dot(weights, weights)))
            indices.extend(row)
            data.extend((weights / norm if norm else weights).tolist())
            indptr.append(len(indices))
        shape = (len(texts), len(self.idf))
        return csr_matrix((np.array(data, np.float32), indices, indptr), shape=shape)

    def arrays(self) -> dict[str, np.ndarray]:
        """The index as plain arrays (for :mod:`extractors.text.cache`; no pickle)."""
        ngrams = sorted(self.columns, key=self.columns.__getitem__)
        return {
            "ngrams": np.array(ngrams, dtype=str),
            "idf": self.idf,
            "data": self.matrix.data,
            "indices": self.matrix.indices,
            "indptr": self.matrix.indptr,
            "shape": np.array(self.matrix.shape, dtype=np.int64),
        }

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> "TermIndex":
        """The index that :meth:`arrays` wrote.

        Raises:
            ValueError: the arrays do not fit together.
        """
        from scipy.sparse import csr_matrix

        ngrams = arrays["ngrams"].tolist()
        idf = arrays["idf"].astype(np.float32)
        shape = tuple(int(n) for n in arrays["shape"])
        if len(ngrams) != len(idf) or shape[0] != len(idf):
            raise ValueError(f"{len(ngrams)} n-grams, {len(idf)} idf weights, a {shape} matrix")
        matrix = csr_matrix((arrays["data"], arrays["indices"], arrays["indptr"]), shape=shape)
        return cls(dict(zip(ngrams, range(len(ngrams)), strict=True)), idf, matrix)


@Language.factory(
    "kgdx_fuzzy_linker",
    default_config={"threshold": 0.85, "max_words": 4, "min_chars": 5},
)
def make_fuzzy_linker(
    nlp: Language, name: str, threshold: float, max_words: int, min_chars: int
) -> "FuzzyLinker":
    return FuzzyLinker(nlp, name, threshold=threshold, max_words=max_words, min_chars=min_chars)


class FuzzyLinker:
    """Link uncovered word runs to their nearest KG term by char 3-gram TF-IDF cosine.

    Args:
        threshold: minimum cosine similarity (0-1) to accept a link; it becomes the finding's
            confidence.
        max_words: longest candidate, in words.
        min_chars: shortest candidate, in characters.
    """

    def __init__(
        self,
        nlp: Language,
        name: str = "kgdx_fuzzy_linker",
        *,
        threshold: float = 0.85,
        max_words: int = 4,
        min_chars: int = 5,
    ) -> None:
        register_extensions()
        self.name = name
        self.threshold = threshold
        self.max_words = max_words
        self.min_chars = min_chars
        self.keys: list[str] = []
        self.known_words: set[str] = set()
        self.concepts: list[tuple[str, ...]] = []
        self.term_index: TermIndex | None = None
        self.index = None
        self._cache: dict[str, tuple[int, float] | None] = {}

    def set_vocabulary(self, vocabulary: Vocabulary, index: "TermIndex | None" = None) -> None:
        """Use the vocabulary's terms, with their TF-IDF ``index`` (fitted here when ``None``;
        a cached one must come from :meth:`TermIndex.fit` over the same terms)."""
        self.keys = list(vocabulary.terms)
        self.concepts = [vocabulary.terms[key] for key in self.keys]
        self.known_words = set(" ".join(self.keys).split())  # one C-level split: 10x faster
        self._cache = {}
        if not self.keys:
            self.term_index = self.index = None
            return
        index = index or TermIndex.fit(self.keys)
        if index.matrix.shape[1] != len(self.keys):
            raise ValueError(
                f"a TF-IDF index of {index.matrix.shape[1]} terms for {len(self.keys)}"
            )
        self.term_index, self.index = index, index.matrix

    def lookup(self, texts: list[str]) -> list[tuple[int, float] | None]:
        """Nearest term index and cosine similarity for each text (``None`` below threshold)."""
        missing = [text for text in dict.fromkeys(texts) if text not in self._cache]
        if missing and self.index is not None:
            similarities = (self.term_index.transform(missing) @ self.index).tocsr()
            indices = np.asarray(similarities.argmax(axis=1)).ravel()
            scores = similarities.max(axis=1).toarray().ravel()
            for text, score, index in zip(missing, scores.tolist(), indices.tolist(), strict=True):
                ok = score >= self.threshold and words_match(text, self.keys[index])
                self._cache[text] = (int(index), score) if ok else None
            if len(self._cache) > 500_000:  # bound memory on endless streams
                self._cache.clear()
        return [self._cache.get(text) for text in texts]

    def candidates(self, doc: Doc) -> list[Span]:
        """Runs of content words (and their sub-runs) that no exact match covers."""
        covered = {i for ent in doc.ents for i in range(ent.start, ent.end)}
        runs: list[list[int]] = []
        current: list[int] = []
        for token in doc:
            usable = token.i not in covered and token.is_alpha and token.norm_ not in _BREAK_WORDS
            if current and (not usable or token.is_sent_start):
                runs.append(current)
                current = []
            if usable:
                current.append(token.i)
        if current:
            runs.append(current)
        spans = []
        for run in runs:
            for size in range(min(self.max_words, len(run)), 0, -1):
                for offset in range(len(run) - size + 1):
                    span = doc[run[offset] : run[offset] + size]
                    if len(span.text) < self.min_chars:
                        continue
                    if size == 1 and span.text.lower() in GENERIC_WORDS:
                        continue
                    # Misspellings make words the KG does not have; a span whose words all
                    # occur in KG terms, in a combination the exact matcher did not find,
                    # rarely links (each word must match its counterpart), so only spans with
                    # an unknown word are looked up: this keeps a 60k-term KG fast.
                    if all(token.norm_ in self.known_words for token in span):
                        continue
                    spans.append(span)
        for span in doc.spans.get(NER_SPANS, ()):
            if covered.isdisjoint(range(span.start, span.end)) and len(span.text) >= self.min_chars:
                spans.append(span)
        return spans

    def __call__(self, doc: Doc) -> Doc:
        if self.index is None:
            return doc
        candidates = self.candidates(doc)
        if not candidates:
            return doc
        results = self.lookup([" ".join(token.norm_ for token in span) for span in candidates])
        linked: list[tuple[Span, tuple[str, ...], float]] = []
        for span, result in zip(candidates, results, strict=True):
            if result is not None:
                index, score = result
                linked.append((Span(doc, span.start, span.end, label=FINDING_LABEL), index, score))
        if not linked:
            return doc
        # Prefer the higher score, then the longer span, among overlapping links.
        linked.sort(key=lambda item: (-item[2], -(item[0].end - item[0].start)))
        taken: set[int] = set()
        chosen = []
        for span, index, score in linked:
            if taken.isdisjoint(range(span.start, span.end)):
                taken.update(range(span.start, span.end))
                chosen.append((span, index, score))
        new_spans = []
        for span, index, score in chosen:
            ids = self.concepts[index]  # one concept per span, as the matcher keeps
            span._.concept_ids, span._.alternative_ids = ids[:1], ids[1:]
            span._.link_score = round(score, 4)
            span._.linked_by = "fuzzy"
            new_spans.append(span)
        doc.ents = filter_spans([*doc.ents, *new_spans])
        return doc
