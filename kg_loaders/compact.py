"""Compaction of an embedded database: the same content in a fresh file, without dead space.

LadybugDB never gives back the space of deleted rows: a server whose patients' diagnoses keep
changing deletes and re-creates prediction nodes and edges on every save that changes them, and
its database grows (15,000 such saves of the demo's predicted patients took it from 4.8 to 18.3
MB; saves and checkpoints slow as it grows: docs/rest.md, Load). :func:`compact_database`
rebuilds it the way a KG build does (:mod:`kg_loaders.build`), in a staging folder beside it:

1. the database's layout is checked against kgdx's schema (a table or column the schema does not
   know would be left out: refused);
2. every table is dumped to Parquet and copied into a fresh database laid out by the schema
   (:mod:`kg_loaders.compact_tables`; one table in memory at a time);
3. the copy is checked: the same counts per table, and every table's rows equal to its dump
   (the KG's concepts and the patients included);
4. it is swapped in, keeping the file's permissions (and owner and group, where this user may
   set them), while no process has the database open and only if nothing wrote to it
   meanwhile. A symlinked path is opened by its own name (LadybugDB keeps the log beside the
   name it was given) and the file it names is replaced.

A compaction that fails anywhere leaves the database's content as it was (step 1 may add the
columns this kgdx's schema has and the file lacks, as any read-write open does). It refuses a
database another process has open (a running ``kgdx serve``): stop it first.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.errors import KgdxError, StoreError
from graph.log import logger
from graph.stores.lock import exclusive_database
from kg_loaders import compact_tables as tables
from kg_loaders.staging import remove_stale_staging, side_names, staging_folder, swap_in

if TYPE_CHECKING:
    from graph.settings import Settings
    from graph.store_types import StoreCounts

_ACTION = "compact it"


@dataclass
class CompactResult:
    """What a compaction did: the database's size before and after (bytes, with its WAL) and
    what it holds (the same before and after: checked)."""

    db_path: str
    bytes_before: int
    bytes_after: int
    seconds: float
    nodes: dict[str, int] = field(default_factory=dict)
    relations: dict[str, int] = field(default_factory=dict)

    @property
    def saved_fraction(self) -> float:
        return 1 - self.bytes_after / self.bytes_before if self.bytes_before else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "saved_fraction": round(self.saved_fraction, 4)}


def compact_database(settings: Settings, path: Path | None = None) -> CompactResult:
    """Rewrite the embedded database ``path`` (default: the settings' one) without dead space.

    Raises:
        StoreError: no database there, another process has it open, it changed while it was
            being copied, or the copy does not hold the same content; the database is unchanged.
    """
    # opened through the path as given (LadybugDB keeps a WAL beside the name it was given, a
    # symlink's included), swapped in at the file it names
    given = (Path(path) if path is not None else settings.resolved_db_path).absolute()
    target = given.resolve()
    if any(char in str(target) for char in "[]*?"):  # COPY FROM reads a path as a glob
        raise StoreError(
            f"cannot compact {target}: its path holds a glob character ([ ] * ?); move or rename it"
        )
    if target.is_dir():
        raise StoreError(
            f"{target} is a database folder of an older kgdx: compaction works on one-file "
            "databases (build the KG again with `kgdx kg build` to get one)"
        )
    if not target.is_file():
        raise StoreError(f"no embedded database at {target}: nothing to compact")
    began = time.perf_counter()
    remove_stale_staging(target)
    with exclusive_database(target, action=_ACTION):
        before_bytes = _size(target, given)
    try:
        with staging_folder(target) as staging:
            logger.info("compacting %s (%.1f MB): reading its tables", target, before_bytes / 1e6)
            before, dumped = _export(settings, given, staging / "tables")
            stamp = _stamp(target, given)
            built = staging / target.name
            logger.info(
                "compacting %s: copying %d tables into a fresh database", target, len(dumped)
            )
            _import(dumped, settings, built)
            _check_copy(settings, built, before, dumped)
            with exclusive_database(target, action=_ACTION):
                if _stamp(target, given) != stamp:
                    raise StoreError(
                        f"{target} was written while it was being compacted; the database is "
                        "unchanged: run the compaction again while nothing else uses it"
                    )
                swap_in(staging, target, given)
    except KgdxError:
        raise
    except (OSError, RuntimeError) as exc:
        raise StoreError(
            f"compaction of {target} failed, the database is unchanged: {exc}"
        ) from exc
    return CompactResult(
        db_path=str(target),
        bytes_before=before_bytes,
        bytes_after=_size(target, given),
        seconds=time.perf_counter() - began,
        nodes=dict(before.nodes),
        relations={k: v for k, v in before.relations.items() if v},
    )


def _export(
    settings: Settings, target: Path, folder: Path
) -> tuple[StoreCounts, list[tables.TablePart]]:
    """The database's counts per table, and its tables as Parquet files in ``folder`` (opened
    for writing, so that another process's handle refuses it)."""
    from graph.stores.embedded import EmbeddedStore

    folder.mkdir()
    with EmbeddedStore(settings, path=target) as store:
        tables.check_layout(store.connection, target)
        counts = store.counts()
        dumped = [
            tables.dump(store.connection, part, folder, n) for n, part in enumerate(tables.parts())
        ]
    return counts, [part for part in dumped if part.file is not None]


def _import(dumped: list[tables.TablePart], settings: Settings, built: Path) -> None:
    """A fresh database at ``built``, laid out by this kgdx, with the rows of ``dumped``."""
    from graph.stores.embedded import EmbeddedStore

    with EmbeddedStore(settings, path=built, bulk=True) as store:
        for part in dumped:
            tables.load(store.connection, part)


def _check_copy(
    settings: Settings, built: Path, before: StoreCounts, dumped: list[tables.TablePart]
) -> None:
    """Raise unless the copy holds what the database held: the same counts per table (which
    names a lost table), then every table's rows equal to its dump (which covers the KG's
    concepts and the patients too)."""
    from graph.stores.embedded import EmbeddedStore

    with EmbeddedStore(settings, path=built, read_only=True) as store:
        after = store.counts()
        detail = _difference(before, after) if after != before else None
        if detail is None:
            table = tables.differing(store.connection, dumped)
            detail = f"the rows of {table} differ" if table else None
    if detail is not None:
        raise StoreError(
            f"the compacted copy does not hold the same content ({detail}); the database is "
            "unchanged"
        )


def _difference(before: StoreCounts, after: StoreCounts) -> str:
    now = {**after.nodes, **after.relations}
    changed = [
        f"{name}: {was} -> {now.get(name)}"
        for name, was in {**before.nodes, **before.relations}.items()
        if now.get(name) != was
    ]
    return "; ".join(changed) or "the counts differ"


def _watched(target: Path, given: Path) -> list[Path]:
    """The database and where LadybugDB keeps its files beside it (and beside the symlink it
    was named by)."""
    return [target, *side_names(target), *(side_names(given) if given != target else [])]


def _size(target: Path, given: Path) -> int:
    return sum(p.stat().st_size for p in _watched(target, given) if p.exists())


def _stamp(target: Path, given: Path) -> tuple:
    """Size and modification time of each watched file: any write changes them."""
    return tuple(
        (p.stat().st_size, p.stat().st_mtime_ns) if p.exists() else None
        for p in _watched(target, given)
    )
