"""On-disk cache of the report extractor's KG-derived parts, built once per KG content hash.

Starting an extractor on the full default KG took 20-40 s, nearly all of it deriving the same
things from the same concepts: the vocabulary, the matcher's term patterns and the fuzzy linker's
TF-IDF index. They are saved in one ``.npz`` file per key under
``Settings.resolved_extract_cache_dir`` (``<home>/cache/text-extractor/``) and read back in a
fraction of a second. The key (:mod:`extractors.text.cache_key`) hashes everything they are
derived from: the KG's content hash, the extractor's options, the code and rule files of
``extractors/text`` and ``data/nlp``, and library versions; the entry layout is
:mod:`extractors.text.cache_entry`.

So a new KG release, a rule change or an upgrade builds a new entry (the oldest entries beyond
``keep`` are removed). Files are written to a temporary name and renamed into place, so readers
never see half a file; a process that misses waits for another that is building the same key
(a ``flock``), then reads its result. A file that cannot be read is logged, removed and rebuilt.

Trust: entries hold JSON text and numeric/string arrays only, read with
``numpy.load(allow_pickle=False)``; nothing in them is executed. The folder is written by kgdx
for the local user; whoever can write to it can change what the extractor matches, as with the
KG database beside it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import fcntl
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extractors.text.cache_key import (
    DEFAULT_EXCLUDE,
    HASHED_DIRS,
    PACKAGE_DIR,
    CacheKey,
    cache_key,
    code_fingerprint,
)
from extractors.text.pipeline import PipelineConfig
from extractors.text.vocabulary import Vocabulary
from graph.errors import ConfigError
from graph.log import logger
from graph.records import Concept, ConceptKind

if TYPE_CHECKING:
    import pyarrow as pa

    from extractors.text.extractor import ReportExtractor
    from extractors.text.state import PipelineState
    from graph.settings import Settings
    from graph.store import GraphStore

__all__ = [
    "HASHED_DIRS",
    "PACKAGE_DIR",
    "CacheKey",
    "ExtractorCache",
    "cache_key",
    "code_fingerprint",
    "extractor_for_concepts",
    "extractor_for_store",
    "extractor_for_table",
    "load_extractor",
]
SUBDIR = "text-extractor"
LOCK_WAIT_S = 600.0  # longest wait for another process building the same entry


class ExtractorCache:
    """A folder of cache entries (one ``<digest>.npz`` per key).

    Args:
        directory: the folder (created on first save).
        keep: entries kept; older ones (by last use) are removed after each save.
    """

    def __init__(self, directory: Path, *, keep: int = 8) -> None:
        self.directory = Path(directory)
        self.keep = keep

    @classmethod
    def from_settings(cls, settings: Settings) -> ExtractorCache | None:
        """The configured cache, or ``None`` when ``extract_cache`` is off."""
        if not settings.extract_cache:
            return None
        return cls(settings.resolved_extract_cache_dir / SUBDIR)

    def path(self, key: CacheKey) -> Path:
        return self.directory / f"{key.digest}.npz"

    def load(self, key: CacheKey) -> tuple[Vocabulary, PipelineState] | None:
        """The entry of ``key``, or ``None`` when there is none or it cannot be read (then it
        is removed, with a warning, so that it is rebuilt)."""
        from extractors.text.cache_entry import read_entry

        path = self.path(key)
        if not path.is_file():
            return None
        try:
            found = read_entry(path, key)
        except Exception as exc:  # any unreadable entry is rebuilt, never fatal
            logger.warning("extractor cache %s is unreadable (%s); rebuilding it", path, exc)
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):
            os.utime(path)  # last use, for pruning
        return found

    def save(self, key: CacheKey, vocabulary: Vocabulary, state: PipelineState) -> Path | None:
        """Write the entry of ``key`` atomically; ``None`` (with a warning) when it cannot be
        written: the extractor still works, it is only built again next time."""
        from extractors.text.cache_entry import write_entry

        path = self.path(key)
        temporary = self.directory / f".{key.digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                write_entry(handle, key, vocabulary, state, created=time.time())
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except (OSError, ValueError) as exc:
            logger.warning(
                "cannot write the extractor cache %s (%s); continuing without", path, exc
            )
            with contextlib.suppress(OSError):
                temporary.unlink()
            return None
        self._prune(keep_path=path)
        return path

    @contextlib.contextmanager
    def building(self, key: CacheKey, *, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
        """Hold the build lock of ``key`` (another process building it is waited for, up to
        ``wait_s``; a folder where no lock can be taken builds without one)."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            handle = open(self.directory / f"{key.digest}.lock", "a+b")  # noqa: SIM115
        except OSError:
            yield
            return
        try:
            deadline = time.monotonic() + wait_s
            waited = False
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
                        break  # a file system without locks: build without one
                    if time.monotonic() > deadline:
                        logger.warning(
                            "extractor cache lock %s held too long; building", key.digest
                        )
                        break
                    if not waited:
                        logger.info("another process is building the extractor cache; waiting")
                        waited = True
                    time.sleep(0.1)
            yield
        finally:
            handle.close()  # releases the lock

    def _prune(self, *, keep_path: Path) -> None:
        """Remove entries beyond ``keep`` (least recently used first) and stale temporaries."""
        try:
            entries = sorted(
                self.directory.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True
            )
            for path in entries[self.keep :]:
                if path != keep_path:
                    path.unlink(missing_ok=True)
                    path.with_suffix(".lock").unlink(missing_ok=True)
            for path in self.directory.glob(".*.tmp"):
                if time.time() - path.stat().st_mtime > 3600:  # left by a killed writer
                    path.unlink(missing_ok=True)
        except OSError:
            pass  # pruning is housekeeping: a race with another process is harmless


def load_extractor(
    *,
    kg_hash: str,
    concepts: Callable[[], Iterable[Concept]],
    cache: ExtractorCache | None,
    extra_synonyms: Mapping[str, Iterable[str]] | None = None,
    kinds: Iterable[ConceptKind | str] | None = None,
    exclude_kinds: Iterable[ConceptKind | str] = DEFAULT_EXCLUDE,
    progress: bool = False,
    what: str = "KG",
    **options: Any,
) -> ReportExtractor:
    """A report extractor for the KG whose content hash is ``kg_hash``, from the cache when it
    holds one, else built from ``concepts()`` (and saved).

    Args:
        kg_hash: the KG's content hash (:func:`graph.kg_hash.kg_content_hash`).
        concepts: returns the KG's concepts; called only when the extractor must be built.
        cache: where entries live (``None``: always build, save nothing).
        extra_synonyms, kinds, exclude_kinds: see :meth:`Vocabulary.from_concepts`.
        progress: show a progress bar on stderr when it is a terminal (the CLI); progress is
            logged otherwise.
        what: how log lines name the KG ("default KG store", "seed KG").
        **options: ``chunk_chars`` and :class:`PipelineConfig` fields.

    Raises:
        ConfigError: an unknown option, or no usable term.
    """
    from extractors.text.extractor import ReportExtractor

    chunk_chars = options.pop("chunk_chars", None)
    known = {f.name for f in dataclasses.fields(PipelineConfig)}
    if unknown := sorted(set(options) - known):
        raise ConfigError(
            f"unknown extractor option(s) {unknown}; expected some of {sorted(known)}"
        )
    config = PipelineConfig(**options)
    sizing = {"chunk_chars": chunk_chars} if chunk_chars else {}
    kinds = None if kinds is None else tuple(kinds)
    exclude_kinds = tuple(exclude_kinds)
    key = cache_key(
        kg_hash=kg_hash,
        extra_synonyms=extra_synonyms,
        kinds=kinds,
        exclude_kinds=exclude_kinds,
        config=config,
    )

    def build() -> tuple[Vocabulary, PipelineState]:
        return _build(
            key,
            cache,
            concepts,
            {"extra_synonyms": extra_synonyms, "kinds": kinds, "exclude_kinds": exclude_kinds},
            config,
            progress=progress,
            what=what,
        )

    if cache is None:
        found = build()
    else:
        found = cache.load(key)
        if found is None:
            with cache.building(key):
                # another process may have built it while this one waited for the lock
                found = cache.load(key) or build()
    vocabulary, state = found
    return ReportExtractor(vocabulary, config, state=state, **sizing)


def extractor_for_store(
    store: GraphStore, *, settings: Settings | None = None, **kwargs: Any
) -> ReportExtractor:
    """A report extractor over all concepts of ``store``, through the configured cache.

    Args:
        store: the graph store (read once: its concept table gives the hash and, on a miss,
            the concepts).
        settings: where the cache is (the store's settings when ``None``).
        **kwargs: see :func:`load_extractor`.
    """
    from graph.kg_hash import read_concept_table

    kwargs.setdefault("what", f"KG in the {store.name} store")
    return extractor_for_table(
        read_concept_table(store), settings=settings or store.settings, **kwargs
    )


def extractor_for_table(
    table: pa.Table, *, settings: Settings | None = None, **kwargs: Any
) -> ReportExtractor:
    """A report extractor over a concept table (:func:`graph.kg_hash.read_concept_table`):
    the store can be closed before the extractor is built."""
    from graph.kg_hash import concept_table_hash
    from graph.kg_tables import table_concepts
    from graph.settings import get_settings

    return load_extractor(
        kg_hash=concept_table_hash(table),
        concepts=lambda: table_concepts(table),
        cache=ExtractorCache.from_settings(settings or get_settings()),
        **kwargs,
    )


def extractor_for_concepts(
    concepts: Iterable[Concept], *, settings: Settings | None = None, **kwargs: Any
) -> ReportExtractor:
    """A report extractor over ``concepts`` (e.g. the seed KG), through the configured cache."""
    from graph.kg_hash import concepts_hash
    from graph.settings import get_settings

    concepts = list(concepts)
    cache = ExtractorCache.from_settings(settings or get_settings())
    return load_extractor(
        kg_hash=concepts_hash(concepts), concepts=lambda: concepts, cache=cache, **kwargs
    )


# ---------------------------------------------------------------- building
def _build(
    key: CacheKey,
    cache: ExtractorCache | None,
    concepts: Callable[[], Iterable[Concept]],
    vocabulary_options: dict[str, Any],
    config: PipelineConfig,
    *,
    progress: bool,
    what: str,
) -> tuple[Vocabulary, PipelineState]:
    """Build the vocabulary and pipeline state, showing progress, and save them."""
    from extractors.text.pipeline import new_nlp
    from extractors.text.state import PipelineState

    started = time.perf_counter()
    with _BuildProgress(progress) as shown:
        shown.step(
            f"building the report extractor for the {what} (KG {key.parts['kg'][:12]}); "
            + ("it is cached for the next start" if cache is not None else "no cache")
        )
        concept_list = list(concepts())
        shown.step(f"vocabulary from {len(concept_list):,} concepts")
        vocabulary = Vocabulary.from_concepts(concept_list, **vocabulary_options)
        state = PipelineState.build(
            new_nlp().tokenizer,
            vocabulary,
            linker=config.linker,
            track=shown.track,
            on_step=shown.step,
        )
        saved = cache.save(key, vocabulary, state) if cache is not None else None
    logger.info(
        "report extractor built in %.1fs (%d terms)%s",
        time.perf_counter() - started,
        len(vocabulary),
        f"; cached in {saved}" if saved else "",
    )
    return vocabulary, state


class _BuildProgress:
    """Steps and a bar on stderr when ``terminal`` and stderr is a terminal, log lines otherwise
    (stdout stays clean for ``--json``)."""

    def __init__(self, terminal: bool) -> None:
        self._progress = None
        if terminal and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:,}/{task.total:,}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )

    def __enter__(self) -> _BuildProgress:
        if self._progress is not None:
            self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()

    def step(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"[dim]{message}[/dim]")
        else:
            logger.info("%s", message)

    def track(self, items: Iterable[Any], total: int) -> Iterator[Any]:
        if self._progress is None:
            from graph.log import track

            yield from track(items, "tokenizing terms", total)
            return
        task = self._progress.add_task("tokenizing terms", total=total)
        for count, item in enumerate(items, 1):
            if count % 1000 == 0:
                self._progress.update(task, completed=count)
            yield item
        self._progress.update(task, completed=total)
