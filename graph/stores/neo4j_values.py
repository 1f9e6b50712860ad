"""Turn driver values (nodes, relationships, paths, temporal types) into JSON-ready Python."""

from __future__ import annotations

from typing import Any

from neo4j.graph import Node, Path, Relationship


def plain_value(value: Any) -> Any:
    """A JSON-friendly copy of a value returned by the Neo4j driver.

    Nodes become their properties plus ``_label``; relationships their properties plus
    ``_label``, ``_src`` and ``_dst`` (endpoint ids); paths a dict of ``nodes`` and ``rels``.
    The ``_label`` key matches what the embedded store returns, so researchers' code reads the
    same shape from both backends.
    """
    if isinstance(value, Node):
        labels = sorted(value.labels)
        return {"_label": labels[0] if len(labels) == 1 else labels, **dict(value)}
    if isinstance(value, Relationship):
        start, end = value.start_node, value.end_node
        return {
            "_label": value.type,
            "_src": start.get("id") if start is not None else None,
            "_dst": end.get("id") if end is not None else None,
            **dict(value),
        }
    if isinstance(value, Path):
        return {
            "nodes": [plain_value(n) for n in value.nodes],
            "rels": [plain_value(r) for r in value.relationships],
        }
    if isinstance(value, dict):
        return {key: plain_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(item) for item in value]
    if hasattr(value, "iso_format"):  # neo4j.time.Date / DateTime / Duration
        return value.iso_format()
    return value
