"""Patients simulated from disease annotations (as SHEPHERD, Alsentzer et al., npj Digit. Med.
2025, trains on simulated patients): what kgdx learns about diseases no training case has.

A simulated patient of disease ``D`` has the shape real case reports have. Measured on the
training cases of a by-disease split of the Phenopacket Store file (seed 1; the defaults of
:class:`SimulationConfig`), a real case lists a median of 7 observed terms (10th–90th
percentile 2–16): about 69% annotated to ``D`` exactly, 4% an ancestor of an annotation (less
specific reporting), 4% a descendant (more specific), and 23% annotated to neither — mostly
terms close to ``D``'s annotations in the ontology (their best common ancestor with ``D`` keeps a
median 38% of their information content, against 0% for a random disease). Which annotations
are reported depends on their frequency, but not in proportion to it (annotations without a
frequency count as 1.0). 83% of cases list excluded findings (median 9), 70% of them annotations
of ``D`` at or below the excluded term — above all the rare ones: an annotation of frequency under
5% is excluded in half the cases, since the annotations of many diseases come from the very
case series that report those features as absent.

The simulation draws: the number of terms (log-normal), for each a kind (exact / ancestor /
descendant / related / unrelated), exact terms without replacement with weights by frequency
bin, and excluded findings the same way from the annotations not drawn, with weights that favour
rare ones, plus related and unrelated excluded terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnn.reasoning.similarity import Similarity

FREQUENCY_BINS = (0.05, 0.3, 0.8, 0.99)  # bins: < 5%, < 30%, < 80%, < 99%, 99%+ (or unknown)


@dataclass(frozen=True)
class SimulationConfig:
    """Shape and noise of simulated patients (defaults: see the module docstring).

    Args:
        median_terms / terms_sigma: log-normal number of observed terms.
        max_terms: at most this many observed terms.
        ancestor_rate / descendant_rate / other_rate: kinds of observed terms besides exact
            annotations (an ancestor of one, a descendant of one, annotated to neither).
        related_rate: share of the "neither" terms taken near an annotation (a sibling or
            cousin in the ontology) rather than anywhere.
        observed_weights: draw weight of an annotation per frequency bin.
        excluded_rate: chance a patient has excluded findings at all.
        median_excluded / excluded_sigma: log-normal number of excluded findings.
        excluded_annotated: share of excluded findings that are annotations of the disease.
        excluded_weights: draw weight of an annotation as excluded, per frequency bin.
        min_ic: an ancestor this general says nothing; keep the term instead.
    """

    median_terms: float = 7.0
    terms_sigma: float = 0.65
    max_terms: int = 40
    ancestor_rate: float = 0.04
    descendant_rate: float = 0.04
    other_rate: float = 0.23
    related_rate: float = 0.7
    observed_weights: tuple[float, ...] = (0.015, 0.05, 0.105, 0.21, 0.17)
    excluded_rate: float = 0.83
    median_excluded: float = 9.0
    excluded_sigma: float = 0.9
    excluded_annotated: float = 0.7
    excluded_weights: tuple[float, ...] = (0.53, 0.26, 0.09, 0.05, 0.07)
    min_ic: float = 1.0


class _Ontology:
    """Children and parents of each term (cached per :class:`Similarity`)."""

    def __init__(self, sim: Similarity) -> None:
        parents = sim.kg.parents.tocsr()
        self.parents = parents
        self.children = parents.T.tocsr()

    @staticmethod
    def row(matrix, term: int) -> np.ndarray:
        return matrix.indices[matrix.indptr[term] : matrix.indptr[term + 1]]


_ONTOLOGIES: dict[int, tuple[Similarity, _Ontology]] = {}


def _ontology(sim: Similarity) -> _Ontology:
    cached = _ONTOLOGIES.get(id(sim))
    if cached is None or cached[0] is not sim:
        cached = (sim, _Ontology(sim))
        _ONTOLOGIES.clear()
        _ONTOLOGIES[id(sim)] = cached
    return cached[1]


def _lognormal_count(rng, median: float, sigma: float, high: int) -> int:
    return int(np.clip(round(rng.lognormal(np.log(median), sigma)), 1, high))


def simulate_patient(
    sim: Similarity, disease: int, rng: np.random.Generator, config: SimulationConfig
) -> tuple[list[int], list[int]]:
    """``(observed, excluded)`` term indices of one simulated patient of ``disease``."""
    row = sim.frequency.getrow(disease)
    terms, frequency = row.indices, row.data.astype(np.float64)
    if len(terms) == 0:
        return [], []
    onto = _ontology(sim)
    bins = np.digitize(frequency, FREQUENCY_BINS)
    n = _lognormal_count(rng, config.median_terms, config.terms_sigma, config.max_terms)
    kinds = rng.choice(
        4,
        size=n,
        p=_normalised(
            [
                1.0 - config.ancestor_rate - config.descendant_rate - config.other_rate,
                config.ancestor_rate,
                config.descendant_rate,
                config.other_rate,
            ]
        ),
    )
    annotated = kinds < 3
    weights = np.asarray(config.observed_weights, np.float64)[bins]
    k = min(int(annotated.sum()), len(terms))
    if k == 0 and not (kinds == 3).any():
        k = 1
    chosen = rng.choice(len(terms), size=k, replace=False, p=weights / weights.sum())
    observed: list[int] = []
    for i, kind in zip(chosen, list(kinds[annotated][:k]) + [0] * k, strict=False):
        term = int(terms[i])
        if kind == 1:
            term = _ancestor(sim, term, rng, config.min_ic)
        elif kind == 2:
            term = _descendant(onto, term, rng)
        observed.append(term)
    for _ in range(int((kinds == 3).sum())):
        observed.append(_other(sim, onto, terms, rng, config.related_rate))
    excluded: list[int] = []
    if rng.random() < config.excluded_rate:
        m = _lognormal_count(rng, config.median_excluded, config.excluded_sigma, 80)
        from_annotations = int(rng.binomial(m, config.excluded_annotated))
        rest = np.setdiff1d(np.arange(len(terms)), chosen)
        if len(rest) and from_annotations:
            w = np.asarray(config.excluded_weights, np.float64)[bins[rest]]
            size = min(from_annotations, len(rest))
            excluded += [
                int(terms[i]) for i in rng.choice(rest, size=size, replace=False, p=w / w.sum())
            ]
        for _ in range(m - from_annotations):
            excluded.append(_other(sim, onto, terms, rng, config.related_rate))
    observed = list(dict.fromkeys(observed))
    excluded = [t for t in dict.fromkeys(excluded) if t not in observed]
    return observed, excluded


def _normalised(p: list[float]) -> np.ndarray:
    a = np.clip(np.asarray(p, np.float64), 0.0, None)
    return a / a.sum()


def _ancestor(sim: Similarity, term: int, rng, min_ic: float) -> int:
    ancestors = [a for a in sim.ancestors_of(term) if a != term and sim.ic[a] >= min_ic]
    return int(rng.choice(ancestors)) if ancestors else term


def _descendant(onto: _Ontology, term: int, rng) -> int:
    """A child, or with even odds a grandchild, of ``term`` (the term itself for a leaf)."""
    for _ in range(2):
        children = onto.row(onto.children, term)
        if not len(children):
            break
        term = int(rng.choice(children))
        if rng.random() < 0.5:
            break
    return term


def _other(sim: Similarity, onto: _Ontology, terms: np.ndarray, rng, related_rate: float) -> int:
    """A term near an annotation (a sibling or cousin: up one or two levels, then down), or
    with ``1 - related_rate`` any term, drawn as often as terms annotate diseases."""
    if rng.random() < related_rate:
        term = int(terms[rng.integers(len(terms))])
        for _ in range(1 + int(rng.random() < 0.5)):
            parents = onto.row(onto.parents, term)
            if len(parents):
                term = int(rng.choice(parents))
        return _descendant(onto, term, rng)
    if len(sim.noise_terms):
        return int(sim.noise_terms[rng.integers(len(sim.noise_terms))])
    return int(rng.integers(sim.kg.num_terms))
