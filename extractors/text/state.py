"""What a report pipeline derives from its vocabulary: the matcher's patterns, the linker's index.

Deriving them is most of the cost of starting an extractor on a large KG (tokenizing every term,
fitting the TF-IDF index), so :mod:`extractors.text.cache` keeps them on disk as plain arrays
and :func:`extractors.text.pipeline.build_pipeline` takes them ready-made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from extractors.text.linker import TermIndex
from extractors.text.matcher import Pattern, term_patterns
from extractors.text.vocabulary import Vocabulary

_INDEX_PREFIX = "index."


@dataclass(frozen=True)
class PipelineState:
    """The vocabulary-derived parts of a pipeline.

    Args:
        patterns: the NORM-hash pattern of each term, in ``Vocabulary.terms`` order.
        index: the fuzzy linker's TF-IDF index (``None``: no linker, or no terms).
    """

    patterns: list[Pattern]
    index: TermIndex | None

    @classmethod
    def build(
        cls,
        tokenizer: Any,
        vocabulary: Vocabulary,
        *,
        linker: bool = True,
        track: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
        on_step: Callable[[str], None] | None = None,
    ) -> PipelineState:
        """Derive the state of ``vocabulary``.

        Args:
            tokenizer: the pipeline's tokenizer (:func:`extractors.text.pipeline.new_nlp`).
            vocabulary: the terms.
            linker: also fit the fuzzy linker's index.
            track: wraps the tokenized terms (progress), see :func:`term_patterns`.
            on_step: called with a line that says what is being built.
        """
        if on_step is not None:
            on_step(f"tokenizing {len(vocabulary):,} terms")
        patterns = term_patterns(tokenizer, vocabulary, track=track)
        index = None
        if linker and len(vocabulary):
            if on_step is not None:
                on_step(f"fitting the fuzzy linker's index over {len(vocabulary):,} terms")
            index = TermIndex.fit(list(vocabulary.terms))
        return cls(patterns=patterns, index=index)

    def arrays(self) -> dict[str, np.ndarray]:
        """The state as plain numeric and string arrays (``np.savez`` without pickle)."""
        lengths = np.fromiter((len(p) for p in self.patterns), np.int64, len(self.patterns))
        values = np.fromiter(
            (token for pattern in self.patterns for token in pattern), np.uint64, int(lengths.sum())
        )
        arrays = {"patterns.lengths": lengths, "patterns.values": values}
        if self.index is not None:
            arrays.update({_INDEX_PREFIX + k: v for k, v in self.index.arrays().items()})
        return arrays

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], *, terms: int) -> PipelineState:
        """The state that :meth:`arrays` wrote, for a vocabulary of ``terms`` terms.

        Raises:
            ValueError: the arrays do not hold a state of that many terms.
        """
        lengths = arrays["patterns.lengths"].astype(np.int64)
        values = arrays["patterns.values"].astype(np.uint64)
        if len(lengths) != terms or int(lengths.sum()) != len(values) or (lengths < 0).any():
            raise ValueError(f"patterns of {len(lengths)} terms for a vocabulary of {terms}")
        flat = values.tolist()
        ends = np.cumsum(lengths).tolist()
        starts = [0, *ends[:-1]]
        patterns = [tuple(flat[a:b]) for a, b in zip(starts, ends, strict=True)]
        index_arrays = {
            key.removeprefix(_INDEX_PREFIX): value
            for key, value in arrays.items()
            if key.startswith(_INDEX_PREFIX)
        }
        index = TermIndex.from_arrays(index_arrays) if index_arrays else None
        if index is not None and index.matrix.shape[1] != terms:
            raise ValueError(f"a linker index of {index.matrix.shape[1]} terms for {terms}")
        return cls(patterns=patterns, index=index)
