"""Knowledge-graph loaders: one streaming reader per source format, the UMLS crosswalk,
``build_kg`` (``kgdx kg build``) and the compaction of a built database
(:mod:`kg_loaders.compact`, ``kgdx kg compact``), which stages and swaps the same way.

Readers: :class:`~kg_loaders.umls.UmlsReader` (RRF), :class:`~kg_loaders.snomed.SnomedReader`
(RF2), :class:`~kg_loaders.owl.OwlReader` (rdflib), :class:`~kg_loaders.obo.OboReader`,
:class:`~kg_loaders.doreports.DoReportsReader`, :class:`~kg_loaders.hpoa.HpoaReader` and the
chest seed (:mod:`kg_loaders.seed`); by name in :data:`kg_loaders.sources.READERS`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kg_loaders.build import BuildResult


def build_kg(**kwargs: Any) -> BuildResult:
    """Build the knowledge graph; see :func:`kg_loaders.build.build_kg`."""
    from kg_loaders.build import build_kg as _build_kg

    return _build_kg(**kwargs)


__all__ = ["build_kg"]
