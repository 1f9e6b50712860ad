"""On-disk cache of the report extractor's KG-derived parts, built once per KG content hash.

Starting an extractor on the full default KG took 20-40 s, nearly all of it deriving the same
things from the same concepts: the vocabulary, the matcher's term patterns and the fuzzy linker's
TF-IDF index. They are saved in one ``.npz`` file per key under
``Settings.resolved_extract_cache_dir`` (``<home>/cache/text-extractor/``) and read back in a
fraction of a second. The key (:func:`cache_key`) hashes everything they are derived from:

- the KG's content hash (:mod:`graph.kg_hash`: every concept's id, name, kind, synonyms, xrefs and
  sources; the seed KG and the lexicon-only vocabulary are hashed the same way);
- the extra synonyms (the label map's radiology lexicon), the kinds kept or left out and the
  :class:`~extractors.text.pipeline.PipelineConfig`;
- every file of the ``extractors/text`` package and of ``data/nlp`` (code, the assertion and
  section rule file, data files), the contents of a rule file named by
  ``PipelineConfig.assertion_rules``, ``VOCABULARY_VERSION``, and the versions of kgdx, spaCy,
  scispaCy, scikit-learn and NumPy.

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
import fcntl
import hashlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from extractors.text.pipeline import PipelineConfig
from extractors.text.vocabulary import Vocabulary
from graph.errors import ConfigError
from graph.log import logger
from graph.records import Concept, ConceptKind

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

    from extractors.text.extractor import ReportExtractor
    from extractors.text.state import PipelineState
    from graph.settings import Settings
    from graph.store import GraphStore

CACHE_FORMAT = "2"  # bump when the entry layout changes
SUBDIR = "text-extractor"
PACKAGE_DIR = Path(__file__).resolve().parent
# Folders whose files are part of every key: the text package and its rule/data files.
HASHED_DIRS = (PACKAGE_DIR, PACKAGE_DIR.parents[1] / "data" / "nlp")
VERSIONED = ("kgdx", "spacy", "scispacy", "scikit-learn", "numpy")
LOCK_WAIT_S = 600.0  # longest wait for another process building the same entry
DEFAULT_EXCLUDE = (ConceptKind.ANATOMY,)


@dataclass(frozen=True)
class CacheKey:
    """A cache key and what went into it (written into the entry, for a reader to check)."""

    digest: str
    parts: dict[str, str]


@lru_cache(maxsize=4)
def code_fingerprint(directories: tuple[Path, ...] = HASHED_DIRS) -> str:
    """SHA-256 of every file under ``directories`` and of the library versions."""
    from importlib.metadata import PackageNotFoundError, version

    digest = hashlib.sha256()
    for directory in directories:
        for path in sorted(directory.rglob("*")):
            relative = path.relative_to(directory)
            if not path.is_file() or any(
                p.startswith((".", "__pycache__")) for p in relative.parts
            ):
                continue
            digest.update(f"{directory.name}/{relative}".encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    for name in VERSIONED:
        try:
            digest.update(f"{name}={version(name)};".encode())
        except PackageNotFoundError:
            digest.update(f"{name}=?;".encode())
    return digest.hexdigest()


def cache_key(
    *,
    kg_hash: str,
    extra_synonyms: Mapping[str, Iterable[str]] | None = None,
    kinds: Iterable[ConceptKind | str] | None = None,
    exclude_kinds: Iterable[ConceptKind | str] = DEFAULT_EXCLUDE,
    config: PipelineConfig | None = None,
) -> CacheKey:
    """The key of the extractor built from a KG (``kg_hash``) with these options."""
    from extractors.text import vocabulary

    config = config or PipelineConfig()
    extra = [[cid, list(forms)] for cid, forms in (extra_synonyms or {}).items()]
    parts = {
        "format": CACHE_FORMAT,
        "kg": kg_hash,
        "extra_synonyms": _sha(json.dumps(extra, ensure_ascii=False)),
        "kinds": json.dumps(None if kinds is None else sorted(ConceptKind(k).value for k in kinds)),
        "exclude_kinds": json.dumps(sorted(ConceptKind(k).value for k in exclude_kinds)),
        "config": json.dumps(dataclasses.asdict(config), sort_keys=True),
        "rule_file": _file_sha(getattr(config, "assertion_rules", None)),
        "vocabulary_version": str(getattr(vocabulary, "VOCABULARY_VERSION", "")),
        "code": code_fingerprint(),
    }
    return CacheKey(digest=_sha(json.dumps(parts, sort_keys=True))[:40], parts=parts)


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
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            found = _read_entry(path, key)
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
        import numpy as np

        path = self.path(key)
        temporary = self.directory / f".{key.digest}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        meta = {"key": key.digest, "parts": key.parts, "created": time.time()}
        try:
            arrays = {"meta": _json_array(meta), **_vocabulary_arrays(vocabulary), **state.arrays()}
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as handle:
                np.savez(handle, **arrays)
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
                except OSError:
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


# ---------------------------------------------------------------- entry format
def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _file_sha(path: str | Path | None) -> str:
    """SHA-256 of a file's bytes ("" for none, "missing" for a path that is not a file)."""
    if path is None:
        return ""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "missing"


def _json_array(value: Any) -> np.ndarray:
    import numpy as np

    return np.frombuffer(json.dumps(value, ensure_ascii=False).encode(), dtype=np.uint8)


def _from_json_array(array: np.ndarray) -> Any:
    return json.loads(array.tobytes().decode())


# A vocabulary is dicts of strings (str -> str, str -> tuple of str). Each is written as
# NUL-joined UTF-8 strings plus counts: read back with one decode and one split per column, 10x
# faster than JSON for the full KG's 63k terms.
_VOCAB = "vocabulary."


def _vocabulary_arrays(vocabulary: Vocabulary) -> dict[str, np.ndarray]:
    """Raises ValueError when a string holds a NUL (it is then not cached)."""
    import numpy as np

    arrays = {}
    for field in dataclasses.fields(Vocabulary):
        mapping: dict[str, Any] = getattr(vocabulary, field.name)
        prefix = f"{_VOCAB}{field.name}."
        arrays[prefix + "keys"] = _strings_array(list(mapping))
        values = list(mapping.values())
        if values and isinstance(values[0], tuple):
            arrays[prefix + "lengths"] = np.fromiter(map(len, values), np.int64, len(values))
            arrays[prefix + "items"] = _strings_array([item for value in values for item in value])
        else:
            arrays[prefix + "values"] = _strings_array(values)
    return arrays


def _vocabulary_of(arrays: dict[str, np.ndarray]) -> Vocabulary:
    """The vocabulary that :func:`_vocabulary_arrays` wrote (its arrays are popped)."""
    import numpy as np

    fields: dict[str, dict[str, Any]] = {}
    for field in dataclasses.fields(Vocabulary):
        prefix = f"{_VOCAB}{field.name}."
        keys = _strings_of(arrays.pop(prefix + "keys"))
        if prefix + "lengths" in arrays:
            lengths = arrays.pop(prefix + "lengths")
            items = _strings_of(arrays.pop(prefix + "items"))
            if len(lengths) != len(keys) or int(lengths.sum()) != len(items):
                raise ValueError(f"vocabulary {field.name}: lengths do not match the items")
            ends = np.cumsum(lengths).tolist()
            values: list[Any] = [tuple(items[a:b]) for a, b in zip([0, *ends], ends, strict=False)]
        else:
            values = _strings_of(arrays.pop(prefix + "values"))
        if len(values) != len(keys):
            raise ValueError(f"vocabulary {field.name}: {len(keys)} keys, {len(values)} values")
        fields[field.name] = dict(zip(keys, values, strict=True))
    if leftover := sorted(name for name in arrays if name.startswith(_VOCAB)):
        raise ValueError(f"unknown vocabulary arrays {leftover}")
    return Vocabulary(**fields)


def _strings_array(values: list[str]) -> np.ndarray:
    """A count (8 bytes) then the NUL-joined UTF-8 strings."""
    import numpy as np

    text = "\0".join(values)
    if text.count("\0") != max(len(values) - 1, 0):
        raise ValueError("a vocabulary string holds a NUL character")
    count = np.array([len(values)], np.int64).view(np.uint8)
    return np.concatenate([count, np.frombuffer(text.encode(), np.uint8)])


def _strings_of(array: np.ndarray) -> list[str]:
    import numpy as np

    count = int(np.frombuffer(array[:8].tobytes(), np.int64)[0])
    strings = array[8:].tobytes().decode().split("\0") if count else []
    if len(strings) != count:
        raise ValueError(f"{len(strings)} strings where {count} were written")
    return strings


def _read_entry(path: Path, key: CacheKey) -> tuple[Vocabulary, PipelineState]:
    import numpy as np

    from extractors.text.state import PipelineState

    with np.load(path, allow_pickle=False) as entry:
        arrays = {name: entry[name] for name in entry.files}
    meta = _from_json_array(arrays.pop("meta"))
    if meta.get("key") != key.digest or meta.get("parts") != key.parts:
        raise ValueError("it was written for another key")
    vocabulary = _vocabulary_of(arrays)
    return vocabulary, PipelineState.from_arrays(arrays, terms=len(vocabulary))
