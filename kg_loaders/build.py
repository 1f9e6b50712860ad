"""``build_kg``: read sources, merge them through the crosswalk and bulk-load a graph store.

The embedded store is built into a fresh database beside the configured one and swapped in only
when every record is loaded, so a failed build leaves the previous knowledge graph untouched and
a rebuild from the same sources gives the same graph (idempotent).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from graph.errors import InputError, KgdxError, StoreError
from graph.log import logger, track
from graph.records import Concept, Relation
from graph.settings import Settings, get_settings
from graph.store import GraphStore
from kg_loaders.base import SourceReader
from kg_loaders.crosswalk import Crosswalk, CrosswalkReport
from kg_loaders.sources import SourceSpec, parse_sources

SUMMARY_FILE = "kg_build.json"


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


def _count_concepts(concepts: Iterable[Concept], result: BuildResult) -> Iterator[Concept]:
    kinds: Counter[str] = Counter()
    sources: Counter[str] = Counter()
    for concept in concepts:
        kinds[concept.kind.value] += 1
        for source in concept.sources:
            sources[source] += 1
        yield concept
    result.concepts_by_kind = dict(kinds.most_common())
    result.concepts_by_source = dict(sources.most_common())
    result.concepts = sum(kinds.values())


def _count_relations(relations: Iterable[Relation], result: BuildResult) -> Iterator[Relation]:
    types: Counter[str] = Counter()
    sources: Counter[tuple[str, ...]] = Counter()
    for relation in relations:
        types[relation.type] += 1
        sources[relation.sources] += 1  # one tuple per stream: cheap to count, split below
        yield relation
    by_source: Counter[str] = Counter()
    for names, count in sources.items():
        for name in names:
            by_source[name] += count
    result.relations_by_type = dict(types.most_common())
    result.relations_by_source = dict(by_source.most_common())
    result.relations = sum(types.values())


# LadybugDB's COPY into an empty table is several times faster than into a filled one, so a
# build hands the store large batches: the default KG goes in one COPY per relation type.
CONCEPT_BATCH = 500_000
RELATION_BATCH = 1_000_000


def load_sources(
    store: GraphStore,
    readers: Sequence[SourceReader],
    *,
    result: BuildResult,
    concept_batch: int = CONCEPT_BATCH,
    relation_batch: int = RELATION_BATCH,
) -> CrosswalkReport:
    """Crosswalk the readers' records and bulk-load them into ``store``."""
    fresh = store.counts().total_relations == 0
    crosswalk = Crosswalk()
    crosswalk.index(track(r.concepts(), f"indexing {r.name} concepts") for r in readers)
    concepts = crosswalk.concepts(r.concepts() for r in readers)
    store.upsert_concepts(
        track(_count_concepts(concepts, result), "loading concepts", crosswalk.report.concepts_in),
        batch_size=concept_batch,
    )
    streams = ((rows, sources) for r in readers for rows, sources in r.relation_streams())
    # The crosswalk yields each relation once with known endpoints: no lookup of stored ones
    # is needed when the store was empty (a fresh build), which keeps big loads in memory.
    store.upsert_relations(
        track(_count_relations(crosswalk.relations(streams), result), "loading relations"),
        batch_size=relation_batch,
        assume_new=fresh,
    )
    for reader in readers:
        reader.stats.concepts = result.concepts_by_source.get(reader.provenance, 0)
        reader.stats.relations = result.relations_by_source.get(reader.provenance, 0)
    return crosswalk.report


def build_kg(
    *,
    sources: Sequence[str | SourceSpec] = ("default",),
    settings: Settings | None = None,
    store: GraphStore | None = None,
    lenient: bool = False,
    concept_batch: int = CONCEPT_BATCH,
    relation_batch: int = RELATION_BATCH,
) -> BuildResult:
    """Build the knowledge graph from ``sources``.

    Args:
        sources: ``"default"``, ``"name=path"`` strings or :class:`SourceSpec` items.
        settings: where the embedded database lives (``settings.resolved_db_path``).
        store: load into this store instead (e.g. Neo4j); it is not swapped or cleared, so
            the caller owns its atomicity.
        lenient: skip and count malformed lines instead of failing.
        concept_batch / relation_batch: records per bulk write; smaller batches bound the
            memory of very large releases, larger ones keep LadybugDB's COPY into empty tables.

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
    batches = {"concept_batch": concept_batch, "relation_batch": relation_batch}
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
    batches: dict[str, int],
) -> CrosswalkReport:
    from graph.stores import open_store

    target = settings.resolved_db_path
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
    try:
        fresh = open_store("embedded", settings=settings, path=staging / target.name)
        try:
            report = load_sources(fresh, readers, result=result, **batches)
            result.patients_carried = _carry_patients(settings, target, fresh)
        finally:
            fresh.close()
        _swap_in(staging, target)
        return report
    except KgdxError:
        raise
    except (OSError, RuntimeError) as exc:
        raise StoreError(f"KG build failed, the previous KG is unchanged: {exc}") from exc
    except ValueError as exc:  # a record a reader could not build (pydantic)
        raise InputError(
            f"KG build failed on a bad record, the previous KG is unchanged: {exc}"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


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


def _swap_in(staging: Path, target: Path) -> None:
    """Replace ``target`` (a database file or folder, with side files) by the staged build."""
    built = staging / target.name
    side_files = [p for p in target.parent.glob(f"{target.name}.*") if not p.name.startswith(".")]
    if target.is_dir():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        os.replace(target, old)
        shutil.rmtree(old, ignore_errors=True)
    for path in side_files:  # a WAL of the old database must not be replayed on the new one
        path.unlink(missing_ok=True)
    os.replace(built, target)
    for path in staging.glob(f"{target.name}.*"):
        os.replace(path, target.parent / path.name)
