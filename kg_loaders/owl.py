"""OWL / RDF ontologies through rdflib (RDF/XML, Turtle, ...).

Named classes become concepts (``rdfs:label``, ``oboInOwl`` exact and related synonyms,
``hasDbXref``); ``rdfs:subClassOf`` a named class is ``IS_A``, and ``subClassOf`` an
``owl:someValuesFrom`` restriction is a relation typed by its property through
:data:`OWL_RELATIONS`. Deprecated classes are skipped. rdflib parses the whole document into
memory, so for large ontologies prefer the OBO edition and :class:`~kg_loaders.obo.OboReader`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from graph.errors import InputError
from graph.records import Concept, ConceptKind
from kg_loaders.base import RelationRow, RelationTable, SourceReader
from kg_loaders.curies import normalize_curie
from kg_loaders.obo import PREFIX_KINDS

# Object properties (as CURIEs of their IRIs) -> schema type.
OWL_RELATIONS: dict[str, str | None] = {
    "RO:0002452": "HAS_SYMPTOM",  # has symptom
    "RO:0002200": "HAS_PHENOTYPE",  # has phenotype
    "RO:0004029": "HAS_FINDING",  # disease has feature
    "RO:0001025": "FINDING_SITE",  # located in
    "RO:0004026": "FINDING_SITE",  # disease has location
    "RO:0004019": "CAUSED_BY",  # disease has basis in
    "RO:0004020": "CAUSED_BY",  # has material basis in
    "RO:0002573": None,  # has modifier (a quality, not a concept of the KG)
    "BFO:0000050": "ASSOCIATED_WITH",  # part of
    "BFO:0000051": "ASSOCIATED_WITH",  # has part
}
_OBO_IRI = re.compile(r"^https?://purl\.obolibrary\.org/obo/([A-Za-z][A-Za-z0-9]*)_(\w+)$")
_DATE = re.compile(r"(\d{4}-\d{2}-\d{2})")
OBO_IN_OWL = "http://www.geneontology.org/formats/oboInOwl#"


def iri_to_curie(iri: str) -> str | None:
    """``HP:0001640`` from ``http://purl.obolibrary.org/obo/HP_0001640`` (None if not OBO)."""
    match = _OBO_IRI.match(iri)
    return f"{match.group(1)}:{match.group(2)}" if match else None


class OwlReader(SourceReader):
    """Read an OWL ontology file.

    Args:
        path: the ontology file (``.owl``/``.rdf`` as RDF/XML, ``.ttl`` as Turtle).
        name: the source name used in provenance (default: the file's prefix, e.g. ``HP``).
        lenient: accepted for symmetry with the line readers (a parse error always fails).

    Raises:
        InputError: the file cannot be parsed as RDF.
    """

    name = "OWL"

    def __init__(self, path: Path | str, *, name: str | None = None, lenient: bool = False):
        super().__init__(path, lenient=lenient)
        if name:
            self.name = name
            self.stats.source = name
        self.table = RelationTable(OWL_RELATIONS, self.stats)
        self._graph = None

    def graph(self):
        """The parsed rdflib graph (parsed once)."""
        if self._graph is None:
            import rdflib

            fmt = "turtle" if self.path.suffix in (".ttl", ".n3") else "xml"
            graph = rdflib.Graph()
            try:
                graph.parse(str(self.path), format=fmt)
            except FileNotFoundError:
                raise InputError(f"{self.path}: file not found") from None
            except Exception as exc:  # rdflib raises many parser-specific types
                raise InputError(f"{self.path}: not a readable {fmt} ontology ({exc})") from None
            self._graph = graph
        return self._graph

    @property
    def version(self) -> str:
        from rdflib import OWL, RDF

        graph = self.graph()
        for ontology in graph.subjects(RDF.type, OWL.Ontology):
            for prop in (OWL.versionInfo, OWL.versionIRI):
                for value in graph.objects(ontology, prop):
                    match = _DATE.search(str(value))
                    return match.group(1) if match else str(value)
        return "unknown"

    def _classes(self) -> Iterator[tuple[object, str]]:
        from rdflib import OWL, RDF, Literal, URIRef

        graph = self.graph()
        for cls in sorted(set(graph.subjects(RDF.type, OWL.Class))):
            if not isinstance(cls, URIRef):
                continue
            curie = iri_to_curie(str(cls))
            if curie is None:
                continue
            if any(
                v == Literal(True) or str(v) == "true" for v in graph.objects(cls, OWL.deprecated)
            ):
                self.stats.skipped_ids.add(curie)
                continue
            yield cls, curie

    def concepts(self) -> Iterator[Concept]:
        from rdflib import RDFS, URIRef

        graph = self.graph()
        provenance = (self.provenance,)
        exact = URIRef(OBO_IN_OWL + "hasExactSynonym")
        related = URIRef(OBO_IN_OWL + "hasRelatedSynonym")
        xref = URIRef(OBO_IN_OWL + "hasDbXref")
        if self.name == "OWL":
            first = next(self._classes(), None)
            if first is not None:
                self.name = first[1].partition(":")[0]
                self.stats.source = self.name
                provenance = (self.provenance,)
        for cls, curie in self._classes():
            label = next((str(v) for v in graph.objects(cls, RDFS.label)), curie)
            synonyms = [str(v) for p in (exact, related) for v in graph.objects(cls, p)]
            xrefs = [normalize_curie(str(v)) for v in graph.objects(cls, xref)]
            yield Concept(
                id=curie,
                name=label,
                kind=PREFIX_KINDS.get(curie.partition(":")[0], ConceptKind.OTHER),
                synonyms=tuple(sorted({s for s in synonyms if s != label})),
                xrefs=tuple(sorted({x for x in xrefs if x and x != curie})),
                sources=provenance,
            )

    def relation_rows(self) -> Iterator[RelationRow]:
        from rdflib import OWL, RDFS, BNode, URIRef

        graph = self.graph()
        for cls, curie in self._classes():
            for parent in graph.objects(cls, RDFS.subClassOf):
                if isinstance(parent, URIRef):
                    target = iri_to_curie(str(parent))
                    if target is not None:
                        yield (curie, target, "IS_A", False, 1.0, None)
                    continue
                if not isinstance(parent, BNode):
                    continue
                prop = next(graph.objects(parent, OWL.onProperty), None)
                filler = next(graph.objects(parent, OWL.someValuesFrom), None)
                if prop is None or not isinstance(filler, URIRef):
                    continue  # an intersection or a non-existential restriction
                target = iri_to_curie(str(filler))
                if target is None:
                    self.stats.unresolved += 1
                    continue
                prop_curie = iri_to_curie(str(prop)) or str(prop)
                rel_type = self.table.map(prop_curie)
                if rel_type is not None:
                    yield (curie, target, rel_type, False, 1.0, None)
