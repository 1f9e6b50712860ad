"""``build_kg``: read sources, merge them through the crosswalk and bulk-load a graph store.

The embedded store is built into a fresh database beside the configured one and swapped in only
when every record is loaded, so a failed build leaves the previous knowledge graph untouched and
a rebuild from the same sources gives the same graph (idempotent). The swap is refused while
another process has the database open (``graph.stores.lock``), and each build first removes the
staging folders that killed builds of the same database left (``kg_loaders.staging``). The load itself is
``kg_loaders.load.load_sources``.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from graph.errors import InputError, KgdxError, StoreError
from graph.log import logger, track
from graph.settings import Settings, get_settings
from graph.store import GraphStore
from graph.stores.lock import exclusive_database
from kg_loaders.base import SourceReader
from kg_loaders.crosswalk import CrosswalkReport
from kg_loaders.load import CONCEPT_BATCH, RELATION_BATCH, load_sources
from kg_loaders.sources import SourceSpec, parse_sources
from kg_loaders.staging import remove_stale_staging, staging_folder, swap_in

SUMMARY_FILE = "kg_build.json"
_REPLACE = "rebuild the KG, which replaces it"


@dataclass
class BuildResult:
    """What a build loaded: counts per kind, type and source, the crosswalk report, timings."""

    sources: list[str]
    db_path: str
    concepts: int = 0
    relations: int = 0
    concepts_by_kind: dict[str, int] = field(default_factory=dict)
    concepts_by_source: dict[str, int] = field(default_factory=dict)
    relations_by_type: dict[str, int] = field(default_factory=dict)
    relations_by_source: dict[str, int] = field(default_factory=dict)
    source_stats: list[dict[str, object]] = field(default_factory=list)
    crosswalk: dict[str, int] = field(default_factory=dict)
    patients_carried: int = 0
    seconds: float = 0.0

    @property
    def unknown_relations(self) -> dict[str, int]:
        """Source relation names that fell back to ``ASSOCIATED_WITH``, with their counts."""
        total: Counter[str] = Counter()
        for stats in self.source_stats:
            for name, count in dict(stats.get("unknown_relations", {})).items():
                total[f"{stats['source']}:{name}"] += count
        return dict(total)

    @property
    def relations_per_second(self) -> float:
        return self.relations / self.seconds if self.seconds else 0.0

    def save(self, path: Path) -> Path:
        """Write the result as JSON (``kgdx kg stats`` reads it back)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True), encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: Path) -> BuildResult:
        """Read a result written by :meth:`save`.

        Raises:
            InputError: the file is missing or not a build summary.
        """
        try:
            return cls(**json.loads(path.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise InputError(f"{path}: no build summary; run `kgdx kg build` first") from None
        except (TypeError, ValueError) as exc:
            raise InputError(f"{path}: not a kgdx build summary ({exc})") from None


def build_kg(
    *,
    sources: Sequence[str | SourceSpec] = ("default",),
    settings: Settings | None = None,
    store: GraphStore | None = None,
    lenient: bool = False,
    concept_batch: int = CONCEPT_BATCH,
    relation_batch: int = RELATION_BATCH,
    memory_mb: int = 512,
) -> BuildResult:
    """Build the knowledge graph from ``sources``.

    Args:
        sources: ``"default"``, ``"name=path"`` strings or :class:`SourceSpec` items.
        settings: where the embedded database lives (``settings.resolved_db_path``).
        store: load into this store instead (e.g. Neo4j); it is not swapped or cleared, so
            the caller owns its atomicity.
        lenient: skip and count malformed lines instead of failing.
        concept_batch: concepts per Arrow table (and per upsert into a filled store).
        relation_batch: relations per upsert into a store that already holds a KG.
        memory_mb: Arrow tables a fresh build keeps in memory before it writes them to
            Parquet files in its staging folder (each table is then copied from its file).

    Returns:
        A :class:`BuildResult`, also saved as ``kg_build.json`` in ``settings.home``.

    Raises:
        InputError / ConfigError: a source is missing or malformed (nothing is changed).
        StoreError: the store failed (nothing is changed).
    """
    settings = settings or get_settings()
    specs = [s if isinstance(s, SourceSpec) else None for s in sources]
    strings = [s for s in sources if isinstance(s, str)]
    specs = [s for s in specs if s is not None] + (parse_sources(strings) if strings else [])
    readers = [spec.open(lenient=lenient) for spec in specs]
    started = time.perf_counter()
    target = settings.resolved_db_path
    result = BuildResult(sources=[str(s) for s in specs], db_path=str(target))
    batches = {
        "concept_batch": concept_batch,
        "relation_batch": relation_batch,
        "memory_mb": memory_mb,
    }
    if store is not None:
        report = load_sources(store, readers, result=result, **batches)
    else:
        report = _build_embedded(settings, readers, result, batches)
    result.seconds = round(time.perf_counter() - started, 3)
    result.crosswalk = report.as_dict()
    result.source_stats = [reader.stats.as_dict() for reader in readers]
    result.save(settings.home / SUMMARY_FILE)
    logger.info(
        "built KG: %d concepts, %d relations in %.1fs",
        result.concepts,
        result.relations,
        result.seconds,
    )
    return result


def _build_embedded(
    settings: Settings,
    readers: Sequence[SourceReader],
    result: BuildResult,
    batches: dict[str, Any],
) -> CrosswalkReport:
    from graph.stores import open_store

    # A symlinked database: its stored patients are read through the name given (LadybugDB
    # keeps a log beside the name it was opened by), and the file it names is replaced.
    given = settings.resolved_db_path.absolute()
    target = given.resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_staging(target)
    # Fail before the long load when a server has the database open (the swap checks again).
    with exclusive_database(target, action=_REPLACE):
        pass
    try:
        with staging_folder(target) as staging:
            fresh = open_store("embedded", settings=settings, path=staging / target.name, bulk=True)
            try:
                report = load_sources(
                    fresh, readers, result=result, spool_dir=staging / "spool", **batches
                )
                result.patients_carried = _carry_patients(settings, given, fresh)
            finally:
                fresh.close()
            with exclusive_database(target, action=_REPLACE):
                swap_in(staging, target, given)  # the link's old log was replayed above
        return report
    except KgdxError:
        raise
    except (OSError, RuntimeError) as exc:
        raise StoreError(f"KG build failed, the previous KG is unchanged: {exc}") from exc
    except ValueError as exc:  # a record a reader could not build (pydantic)
        raise InputError(
            f"KG build failed on a bad record, the previous KG is unchanged: {exc}"
        ) from None


def _carry_patients(settings: Settings, target: Path, fresh: GraphStore) -> int:
    """Copy the patient graphs stored in the old database into the staged build.

    A rebuild must not lose patients. When the new KG lacks a concept that a stored patient
    refers to, the build fails (before the swap, so the old database stays as it was).

    Returns:
        How many patients were carried over (predictions are not: they belong to a model).
    """
    if not target.exists():
        return 0
    from graph.errors import UnknownConceptError
    from graph.stores.embedded import EmbeddedStore

    with EmbeddedStore(settings, path=target) as old:
        patient_ids = old.patient_ids()
        missing: dict[str, list[str]] = {}
        for patient_id in track(patient_ids, "carrying stored patients", len(patient_ids)):
            patient = old.get_patient(patient_id)
            try:
                fresh.upsert_patient(patient)
            except UnknownConceptError:
                wanted = {f.concept_id for f in patient.findings} | set(patient.labels)
                missing[patient_id] = sorted(wanted - set(fresh.get_concepts(wanted)))
    if missing:
        sample = "; ".join(f"{pid}: {', '.join(ids[:3])}" for pid, ids in list(missing.items())[:5])
        raise InputError(
            f"{len(missing)} stored patient(s) refer to concepts the new KG lacks ({sample}); "
            "add the source that defines them, or delete those patients first. "
            "The previous KG is unchanged."
        )
    return len(patient_ids)
