"""HPO ids as a release knows them: obsolete ids and their replacements, secondary (alt) ids,
read from the ``hp.obo`` that built the store (its build record, ``kg_build.json``).

A patient's or a query's HPO id may be one the KG's release retired (``replaced_by``) or lists
as a secondary id of a term: :class:`gnn.reasoning.knowledge.PhenotypeKG` resolves those to the
current term, and the concept search (:mod:`api.routers.concept_search`) finds them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from kg_loaders.base import open_text

if TYPE_CHECKING:
    from graph.store import GraphStore


def hp_obo_of_build(store: GraphStore):
    """The ``hp.obo`` named by the store's build record (``kg_build.json``, which ``kgdx kg
    build`` writes in its home), if it is there: the record beside the store or in the store's
    home, one naming this store's database first. Neo4j stores (no path) read the home's."""
    path = getattr(store, "path", None)
    settings = getattr(store, "settings", None)
    folders = [Path(path).parent] if path is not None else []
    if settings is not None:
        folders.append(Path(settings.home))
    records = []
    for folder in dict.fromkeys(folders):
        try:
            record = json.loads((folder / "kg_build.json").read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict):
            records.append(record)
    records.sort(key=lambda r: path is None or str(r.get("db_path")) != str(path))
    for record in records:
        for source in record.get("sources") or []:
            name, _, file = str(source).partition("=")
            if name == "hpo" and Path(file).is_file():
                return Path(file)
    return None


def follow_replacements(
    code: str, replaced_by: Mapping[str, str], known: Callable[[str], bool]
) -> str | None:
    """The first id ``known`` accepts along ``code``'s chain of replacements (``code`` itself
    first, then its ``replaced_by``, then that one's, ...); ``None`` when none is known or the
    chain loops back."""
    seen: set[str] = set()
    while code not in seen:
        if known(code):
            return code
        seen.add(code)
        if code not in replaced_by:
            return None
        code = replaced_by[code]
    return None


def read_replaced_by(path) -> dict[str, str]:
    """Obsolete term id -> its ``replaced_by`` in an OBO file (``.gz`` too)."""
    mapping: dict[str, str] = {}
    term_id, obsolete, replaced = None, False, None
    with open_text(path) as handle:
        for line in handle:
            if line.startswith("["):
                if term_id and obsolete and replaced:
                    mapping[term_id] = replaced
                term_id, obsolete, replaced = None, False, None
            elif line.startswith("id: "):
                term_id = line[4:].strip()
            elif line.startswith("is_obsolete: true"):
                obsolete = True
            elif line.startswith("replaced_by: "):
                replaced = line[13:].strip()
    if term_id and obsolete and replaced:
        mapping[term_id] = replaced
    return mapping


def read_alt_ids(path) -> set[str]:
    """Every ``alt_id`` of an OBO file (secondary ids of a term)."""
    with open_text(path) as handle:
        return {line[8:].strip() for line in handle if line.startswith("alt_id: ")}
