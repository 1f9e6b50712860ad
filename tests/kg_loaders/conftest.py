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


@pytest.fixture()
def same_build(settings, small_sources, stored_graph):
    """A function: build ``small_sources``, run ``change()``, build again into another database
    (with ``build_kwargs``), check both report and store the same graph; returns both results."""
    from kg_loaders.build import build_kg

    def check(change=lambda: None, **build_kwargs):
        first = build_kg(sources=small_sources, settings=settings)
        change()
        other = settings.model_copy(update={"db_path": settings.db_path.with_name("again.lbug")})
        second = build_kg(sources=small_sources, settings=other, **build_kwargs)
        assert second.crosswalk == first.crosswalk and second.concepts == first.concepts
        assert second.relations == first.relations > 0
        stored, again = stored_graph(settings), stored_graph(other)
        for part, before, after in zip(("concepts", "relations"), stored, again, strict=True):
            lost, gained = sorted(set(before) - set(after)), sorted(set(after) - set(before))
            assert before == after, f"{part}: lost {lost[:3]}, gained {gained[:3]}"
        return first, second

    return check
