"""Shared fixtures of the KG loader tests."""

from __future__ import annotations

import pytest

# The fixture sources a small build reads: UMLS RRF, an HPO OBO extract, HPO annotations.
FIXTURE_SOURCES = ("umls", "umls"), ("hpo", "obo/mini-hp.obo"), ("hpoa", "obo/phenotype.hpoa")


@pytest.fixture()
def small_sources(fixtures) -> list[str]:
    """``name=path`` sources of a small build over the fixtures."""
    return [f"{name}={fixtures / path}" for name, path in FIXTURE_SOURCES]


@pytest.fixture()
def stored_graph():
    """A function: the concepts and relations an embedded store holds, sorted, as JSON."""
    from graph.stores import open_store

    def read(settings) -> tuple[list[str], list[str]]:
        with open_store("embedded", settings=settings) as store:
            return (
                sorted(c.model_dump_json() for c in store.iter_concepts()),
                sorted(r.model_dump_json() for r in store.iter_relations()),
            )

    return read
