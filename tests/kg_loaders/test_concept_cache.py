"""The crosswalk's concept cache: records in memory up to a limit, then Parquet, same stream."""

from __future__ import annotations

import kg_loaders.load as load
from graph.records import Concept, ConceptKind
from kg_loaders.concept_cache import CachedConcept, ConceptCache


def _concepts(prefix: str, n: int) -> list[Concept]:
    return [
        Concept(
            id=f"{prefix}:{i}",
            name=f"name {i} ünï",
            kind=ConceptKind.FINDING if i % 2 else ConceptKind.DISEASE,
            synonyms=(f"syn {i}",) if i % 3 else (),
            xrefs=(f"UMLS:C{i:07d}",),
            sources=("A:1", "B:2"),
        )
        for i in range(n)
    ]


def _fields(c) -> tuple:
    return (c.id, c.name, c.kind, tuple(c.synonyms), tuple(c.xrefs), tuple(c.sources))


def test_past_the_limit_every_reader_goes_to_parquet_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr("kg_loaders.concept_cache.SPILL_ROWS", 7)  # several row groups
    first, second = _concepts("HP", 20), _concepts("DOID", 30)
    cache = ConceptCache(2, limit=25, folder=tmp_path / "c")
    assert [c.id for c in cache.remember(0, first)] == [c.id for c in first]
    assert list(cache.remember(1, second)) == second  # passed through unchanged
    streams = [list(s) for s in cache.streams()]
    assert [_fields(c) for c in streams[0]] == [_fields(c) for c in first]
    assert [_fields(c) for c in streams[1]] == [_fields(c) for c in second]
    assert all(isinstance(c, CachedConcept) for c in streams[0] + streams[1])
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "concepts-0.parquet",
        "concepts-1.parquet",
    ]


def test_under_the_limit_records_stay_in_memory(tmp_path):
    concepts = _concepts("HP", 5)
    cache = ConceptCache(1, limit=10, folder=tmp_path / "c")
    list(cache.remember(0, concepts))
    assert cache.streams() == [concepts] and not (tmp_path / "c").exists()


def test_a_build_through_the_parquet_cache_equals_the_in_memory_build(same_build, monkeypatch):
    same_build(lambda: monkeypatch.setattr(load, "CONCEPT_CACHE", 3))
