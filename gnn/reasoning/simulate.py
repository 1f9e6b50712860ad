"""Patients simulated from disease annotations (as SHEPHERD, Alsentzer et al., npj Digit. Med.
2025, trains on simulated patients): what kgdx learns about diseases no training case has.

A simulated patient of disease ``D`` draws terms from ``D``'s annotations with probability
rising with their frequency, then adds the noise real case reports have: a term replaced by an
ancestor (less specific reporting), terms dropped (incomplete reporting), unrelated terms
(comorbidity, noise), and excluded findings: annotated terms of low frequency that this patient
does not show, and unrelated terms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gnn.reasoning.similarity import Similarity


@dataclass(frozen=True)
class SimulationConfig:
    """Noise of simulated patients.

    Args:
        min_terms / max_terms: observed terms before noise.
        ancestor_rate: chance a term is replaced by one of its ancestors (not the root area).
        noise_rate: expected unrelated observed terms per patient (Poisson).
        excluded_rate: chance a patient has excluded findings at all.
    """

    min_terms: int = 2
    max_terms: int = 12
    ancestor_rate: float = 0.3
    noise_rate: float = 0.5
    excluded_rate: float = 0.5
    min_ic: float = 1.0  # an ancestor this general says nothing; keep the term instead


def simulate_patient(
    sim: Similarity, disease: int, rng: np.random.Generator, config: SimulationConfig
) -> tuple[list[int], list[int]]:
    """``(observed, excluded)`` term indices of one simulated patient of ``disease``."""
    row = sim.frequency.getrow(disease)
    terms, frequency = row.indices, row.data.astype(np.float64)
    if len(terms) == 0:
        return [], []
    n = int(rng.integers(config.min_terms, config.max_terms + 1))
    n = min(n, len(terms))
    chosen = rng.choice(len(terms), size=n, replace=False, p=frequency / frequency.sum())
    observed: list[int] = []
    for i in chosen:
        term = int(terms[i])
        if rng.random() < config.ancestor_rate:
            ancestors = [
                a for a in sim.ancestors_of(term) if a != term and sim.ic[a] >= config.min_ic
            ]
            if ancestors:
                term = int(rng.choice(ancestors))
        observed.append(term)
    pool = sim.kg.num_terms
    for _ in range(rng.poisson(config.noise_rate)):
        observed.append(
            int(sim.noise_terms[rng.integers(len(sim.noise_terms))])
            if len(sim.noise_terms)
            else int(rng.integers(pool))
        )
    excluded: list[int] = []
    if rng.random() < config.excluded_rate:
        rest = np.setdiff1d(np.arange(len(terms)), chosen)
        if len(rest):
            weights = 1.0 - frequency[rest] + 1e-3
            k = min(int(rng.integers(1, 5)), len(rest))
            excluded += [
                int(terms[i])
                for i in rng.choice(rest, size=k, replace=False, p=weights / weights.sum())
            ]
        for _ in range(int(rng.integers(0, 3))):
            excluded.append(int(sim.noise_terms[rng.integers(len(sim.noise_terms))]))
    observed = list(dict.fromkeys(observed))
    excluded = [t for t in dict.fromkeys(excluded) if t not in observed]
    return observed, excluded
