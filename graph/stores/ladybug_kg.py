"""The embedded store's KG reads (``EmbeddedStore`` mixes them in): concepts by id or in pages,
relations by type, a concept's neighbours, shortest paths between two concepts and the
subgraph around seeds. The statements are in ``graph.stores.ladybug_cypher``; rows become
records through ``graph.kg_tables``, as the bulk loads' tables do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from graph.kg_tables import row_concept, row_relation
from graph.schema import KG_RELATIONS
from graph.store_types import Direction, Neighbour, Subgraph
from graph.stores import ladybug_cypher as cy

if TYPE_CHECKING:
    from graph.records import Concept, Relation


class KnowledgeReads:
    """``GraphStore`` KG read hooks over the store's ``_rows`` / ``_missing_concepts``
    (declared here for type checkers only)."""

    if TYPE_CHECKING:

        def _rows(self, cypher: str, params: dict[str, Any] | None = None) -> list[list[Any]]: ...

        def _missing_concepts(self, concept_ids: set[str]) -> set[str]: ...

    def _get_concepts(self, concept_ids: list[str]) -> dict[str, Concept]:
        return {
            row[0]: row_concept(row) for row in self._rows(cy.GET_CONCEPTS, {"ids": concept_ids})
        }

    def _iter_concepts(self, batch_size: int) -> Iterator[Concept]:
        after = ""
        while True:
            rows = self._rows(cy.PAGE_CONCEPTS, {"after": after, "n": batch_size})
            yield from (row_concept(row) for row in rows)
            if len(rows) < batch_size:
                return
            after = rows[-1][0]

    def _iter_relations(self, types: list[str]) -> Iterator[Relation]:
        for rel_type in types:
            for src, dst, *props in self._rows(cy.all_relations(rel_type)):
                yield row_relation(rel_type, src, dst, props)

    def _neighbours(
        self, concept_id: str, types: list[str], direction: Direction, limit: int
    ) -> list[Neighbour]:
        found: list[Neighbour] = []
        for way in ("out", "in") if direction == "both" else (direction,):
            rows = self._rows(cy.neighbours(types, way), {"id": concept_id, "limit": limit})
            for rel_type, own_id, *rest in rows:
                props, concept = rest[:4], row_concept(rest[4:])
                src, dst = (own_id, concept.id) if way == "out" else (concept.id, own_id)
                found.append(
                    Neighbour(
                        relation=row_relation(rel_type, src, dst, props),
                        concept=concept,
                        direction=way,
                    )
                )
        return found[:limit]

    def _paths(self, src_id: str, dst_id: str, max_hops: int, limit: int) -> list[list[Neighbour]]:
        rows = self._rows(
            cy.shortest_paths(list(KG_RELATIONS), max_hops),
            {"src": src_id, "dst": dst_id, "limit": limit},
        )
        paths = []
        for nodes, rels in rows:
            by_internal = {(n["_ID"]["table"], n["_ID"]["offset"]): n for n in nodes}
            steps = []
            for position, rel in enumerate(rels):
                here, there = nodes[position], nodes[position + 1]
                src_node = by_internal[(rel["_SRC"]["table"], rel["_SRC"]["offset"])]
                forward = src_node["id"] == here["id"]
                props = [
                    rel.get("sources"),
                    rel.get("weight"),
                    rel.get("negated"),
                    rel.get("attributes"),
                ]
                relation = row_relation(
                    rel["_LABEL"],
                    here["id"] if forward else there["id"],
                    there["id"] if forward else here["id"],
                    props,
                )
                concept = row_concept(
                    [there[k] for k in ("id", "name", "kind", "synonyms", "xrefs", "sources")]
                )
                steps.append(
                    Neighbour(
                        relation=relation, concept=concept, direction="out" if forward else "in"
                    )
                )
            paths.append(steps)
        return paths

    def _subgraph(self, seeds: list[str], hops: int, types: list[str]) -> Subgraph:
        ids = set(seeds) - self._missing_concepts(set(seeds))
        if hops > 0 and ids:
            ids |= {row[0] for row in self._rows(cy.k_hop_ids(types, hops), {"ids": sorted(ids)})}
        ordered = sorted(ids)
        relations = [
            row_relation(rel_type, src, dst, props)
            for rel_type in types
            for src, dst, *props in self._rows(cy.induced_relations(rel_type), {"ids": ordered})
        ]
        concepts = self._get_concepts(ordered) if ordered else {}
        return Subgraph(concepts=tuple(concepts[i] for i in ordered), relations=tuple(relations))
