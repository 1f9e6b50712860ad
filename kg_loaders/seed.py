"""Reader of the curated chest seed KG shipped in ``data/kg/`` (two TSV files).

``chest_seed_concepts.tsv``: ``id, name, kind, synonyms, xrefs, cui_check`` (lists are
``|``-separated; ``cui_check`` records where the curator verified the id and is not loaded).
``chest_seed_relations.tsv``: ``src, type, dst, source, src_name, dst_name``; the names are there
for reviewers and are checked against the concept file when both files are read together.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from pydantic import ValidationError

from graph.errors import InputError
from graph.records import Concept, Relation
from graph.settings import DATA_DIR

SEED_DIR = DATA_DIR / "kg"
SEED_CONCEPTS = SEED_DIR / "chest_seed_concepts.tsv"
SEED_RELATIONS = SEED_DIR / "chest_seed_relations.tsv"
SEED_SOURCE = "kgdx-chest-seed:2026-11"

CONCEPT_COLUMNS = ("id", "name", "kind", "synonyms", "xrefs", "cui_check")
RELATION_COLUMNS = ("src", "type", "dst", "source", "src_name", "dst_name")


def _split(cell: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in cell.split("|") if part.strip())


def _rows(path: Path, columns: tuple[str, ...]) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows of a TSV as dicts with their 1-based line numbers, after checking the header."""
    if not path.is_file():
        raise InputError(f"seed file not found: {path}; pass an existing TSV path")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t")
        header = next(reader, None)
        if header is None or tuple(header) != columns:
            expected = "\t".join(columns)
            raise InputError(f"{path}: header must be {expected!r}, got {header!r}")
        for line_no, cells in enumerate(reader, start=2):
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(columns):
                raise InputError(
                    f"{path}:{line_no}: expected {len(columns)} tab-separated columns, "
                    f"got {len(cells)}"
                )
            yield line_no, dict(zip(columns, (c.strip() for c in cells), strict=True))


def read_seed_concepts(path: str | Path | None = None) -> list[Concept]:
    """Concepts of the curated chest seed KG.

    Args:
        path: a concepts TSV; the shipped ``data/kg/chest_seed_concepts.tsv`` when ``None``.

    Raises:
        InputError: missing file, wrong header, a bad row or a duplicate id (with its line).
    """
    path = Path(path) if path is not None else SEED_CONCEPTS
    concepts: list[Concept] = []
    seen: dict[str, int] = {}
    for line_no, row in _rows(path, CONCEPT_COLUMNS):
        if row["id"] in seen:
            first = seen[row["id"]]
            raise InputError(f"{path}:{line_no}: duplicate id {row['id']} (first on line {first})")
        seen[row["id"]] = line_no
        try:
            concepts.append(
                Concept(
                    id=row["id"],
                    name=row["name"],
                    kind=row["kind"],
                    synonyms=_split(row["synonyms"]),
                    xrefs=_split(row["xrefs"]),
                    sources=(SEED_SOURCE,),
                )
            )
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise InputError(f"{path}:{line_no}: bad concept row: {reason}") from None
    return concepts


def read_seed_relations(
    path: str | Path | None = None, *, concepts: list[Concept] | None = None
) -> list[Relation]:
    """Relations of the curated chest seed KG, each with the source it was taken from.

    Args:
        path: a relations TSV; the shipped ``data/kg/chest_seed_relations.tsv`` when ``None``.
        concepts: when given, every endpoint must be one of them and carry the name in the row;
            by default the shipped relations are checked against the shipped concepts.

    Raises:
        InputError: missing file, wrong header, a bad row, an unknown endpoint or a name that
            does not match its id.
    """
    if path is None:
        path = SEED_RELATIONS
        if concepts is None:
            concepts = read_seed_concepts()
    path = Path(path)
    names = {c.id: c.name for c in concepts} if concepts is not None else None
    relations: list[Relation] = []
    for line_no, row in _rows(path, RELATION_COLUMNS):
        if names is not None:
            for end in ("src", "dst"):
                if row[end] not in names:
                    raise InputError(f"{path}:{line_no}: {end} {row[end]} is not a seed concept")
                if row[f"{end}_name"] and row[f"{end}_name"] != names[row[end]]:
                    raise InputError(
                        f"{path}:{line_no}: {end}_name {row[f'{end}_name']!r} does not match "
                        f"{row[end]} ({names[row[end]]!r})"
                    )
        if not row["source"]:
            raise InputError(f"{path}:{line_no}: every seed relation needs a source")
        try:
            relations.append(
                Relation(src=row["src"], dst=row["dst"], type=row["type"], sources=(row["source"],))
            )
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"]
            raise InputError(f"{path}:{line_no}: bad relation row: {reason}") from None
    return relations
