"""Compaction of an embedded database: the same content in a fresh file, without dead space.

LadybugDB never gives back the space of deleted rows: a server whose patients' diagnoses keep
changing deletes and re-creates prediction nodes and edges on every save that changes them, and
its database grows (24,000 such saves of the demo's 80 patients took it from 17.6 to 35.3 MB;
saves and checkpoints slow as it grows: docs/rest.md, Load). :func:`compact_database` rebuilds
it the way a KG build does (:mod:`kg_loaders.build`): every node table, and every relation table
per endpoint pair, is written to a Parquet file in a staging folder beside the database and
copied (``COPY FROM``) into a fresh database there, laid out by this kgdx's schema; the copy is
checked to hold the same thing (node and relation counts per table, the KG's content hash, the
patient ids), then swapped in. LadybugDB's own ``EXPORT DATABASE`` cannot do it: it refuses a
relation table with several endpoint pairs (``HAS_FINDING`` links Concepts and Patients to
Concepts). A compaction that fails anywhere leaves the database as it was, and one refuses a
database another process has open (a running ``kgdx serve``): stop it first. Memory: one table
at a time (the largest of the default KG, ~130k ``HAS_PHENOTYPE`` rows, is a few MB of Arrow).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.errors import KgdxError, StoreError
from graph.log import logger
from graph.stores.lock import exclusive_database
from kg_loaders.staging import remove_stale_staging, staging_folder, swap_in

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
    target = Path(path) if path is not None else settings.resolved_db_path
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
        before_bytes = _size(target)
    try:
        with staging_folder(target) as staging:
            logger.info("compacting %s (%.1f MB): reading its tables", target, before_bytes / 1e6)
            before, parts = _export(settings, target, staging / "tables")
            stamp = _stamp(target)
            built = staging / target.name
            logger.info(
                "compacting %s: copying %d tables into a fresh database", target, len(parts)
            )
            _import(parts, settings, built)
            after = _contents(settings, built)
            if after != before:
                raise StoreError(
                    f"the compacted copy of {target} does not hold the same content "
                    f"({_difference(before, after)}); the database is unchanged"
                )
            with exclusive_database(target, action=_ACTION):
                if _stamp(target) != stamp:
                    raise StoreError(
                        f"{target} was written while it was being compacted; the database is "
                        "unchanged: run the compaction again while nothing else uses it"
                    )
                swap_in(staging, target)
    except KgdxError:
        raise
    except (OSError, RuntimeError) as exc:
        raise StoreError(
            f"compaction of {target} failed, the database is unchanged: {exc}"
        ) from exc
    counts: StoreCounts = before[0]
    return CompactResult(
        db_path=str(target),
        bytes_before=before_bytes,
        bytes_after=_size(target),
        seconds=time.perf_counter() - began,
        nodes=dict(counts.nodes),
        relations={k: v for k, v in counts.relations.items() if v},
    )


def _export(settings: Settings, target: Path, folder: Path) -> tuple[tuple, list[_Part]]:
    """What the database holds, and its tables as Parquet files in ``folder`` (opened for
    writing, so that another process's handle refuses it)."""
    from graph.stores.embedded import EmbeddedStore

    folder.mkdir()
    with EmbeddedStore(settings, path=target) as store:
        contents = _held(store)
        parts = [
            _Part(table, options, _dump(store, cypher, folder / f"{number:03d}-{table}.parquet"))
            for number, (table, options, cypher) in enumerate(_tables())
        ]
    return contents, [part for part in parts if part.file is not None]


@dataclass(frozen=True)
class _Part:
    table: str  # the node label or relation table it is copied into
    options: str  # the COPY options (a relation table's endpoint pair)
    file: Path | None  # None: no rows


def _tables() -> list[tuple[str, str, str]]:
    """``(table, COPY options, Cypher reading its rows in the table's column order)`` of every
    node table, and every relation table per endpoint pair."""
    from graph.schema import NODE_PROPERTIES, relation_tables

    out = []
    for label, props in NODE_PROPERTIES.items():
        columns = ", ".join(f"n.`{name}`" for name, _ in props)
        out.append((label, "", f"MATCH (n:{label}) RETURN {columns}"))
    for name, (pairs, props) in relation_tables().items():
        columns = "".join(f", r.`{prop}`" for prop, _ in props)
        for src, dst in pairs:
            options = f" (from='{src}', to='{dst}')" if len(pairs) > 1 else ""
            cypher = f"MATCH (a:{src})-[r:{name}]->(b:{dst}) RETURN a.id, b.id{columns}"
            out.append((name, options, cypher))
    return out


def _dump(store, cypher: str, path: Path) -> Path | None:
    import pyarrow.parquet as pq

    try:
        table = store.connection.execute(cypher).get_as_arrow()
    except RuntimeError as exc:
        raise StoreError(f"cannot read {store.path} to compact it: {exc}") from None
    if not table.num_rows:
        return None
    pq.write_table(table, path)
    return path


def _import(parts: list[_Part], settings: Settings, built: Path) -> None:
    """A fresh database at ``built``, laid out by this kgdx, with the rows of ``parts``."""
    from graph.stores import ladybug_cypher as cy
    from graph.stores.embedded import EmbeddedStore

    with EmbeddedStore(settings, path=built, bulk=True) as store:
        for part in parts:
            assert part.file is not None
            try:
                store.connection.execute(cy.copy_from(part.table, part.options, str(part.file)))
            except RuntimeError as exc:
                raise StoreError(
                    f"cannot copy {part.table} into the compacted copy: {exc}"
                ) from None


def _contents(settings: Settings, path: Path) -> tuple:
    from graph.stores.embedded import EmbeddedStore

    with EmbeddedStore(settings, path=path) as store:
        return _held(store)


def _held(store) -> tuple:
    """Counts per table, the KG's content hash and the patient ids: what must survive."""
    from graph.kg_hash import kg_content_hash

    return store.counts(), kg_content_hash(store), tuple(store.patient_ids())


def _difference(before: tuple, after: tuple) -> str:
    (counts, kg, patients), (counts2, kg2, patients2) = before, after
    parts = []
    for name, was in {**counts.nodes, **counts.relations}.items():
        now = {**counts2.nodes, **counts2.relations}.get(name)
        if now != was:
            parts.append(f"{name}: {was} -> {now}")
    if kg != kg2:
        parts.append("the KG's content hash differs")
    if patients != patients2:
        parts.append(f"patients: {len(patients)} -> {len(patients2)}")
    return "; ".join(parts) or "the content differs"


def _size(target: Path) -> int:
    wal = target.with_name(target.name + ".wal")
    return target.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def _stamp(target: Path) -> tuple:
    """Size and modification time of the database and its WAL: any write changes them."""
    wal = target.with_name(target.name + ".wal")
    return tuple(
        (p.stat().st_size, p.stat().st_mtime_ns) if p.exists() else None for p in (target, wal)
    )
