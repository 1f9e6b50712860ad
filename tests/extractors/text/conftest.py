"""Extractors shared by the text tests (built once per session: each takes a few seconds)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def seed_extractor():
    """kgdx's extractor over the shipped chest seed KG plus the ChestX-ray14 lexicon."""
    from extractors.text import ReportExtractor
    from extractors.text.labels import LabelMap
    from kg_loaders.seed import read_seed_concepts

    return ReportExtractor.from_concepts(
        read_seed_concepts(), extra_synonyms=LabelMap.load().extra_synonyms()
    )


@pytest.fixture(scope="session")
def seed_names():
    """Seed concept name -> id, so tests read as radiology, not as CUIs."""
    from kg_loaders.seed import read_seed_concepts

    return {concept.name: concept.id for concept in read_seed_concepts()}
