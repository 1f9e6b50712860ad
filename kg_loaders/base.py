"""What every source reader shares: the reader interface, load statistics, the relation-name
mapping table, file opening (plain or gzip) and malformed-line handling.

A reader streams :class:`~graph.records.Concept` records, and its relations as Python rows
(``relation_rows``) or Arrow batches (``relation_batches``, what a build consumes); it never holds
a whole release in memory (id maps and small per-concept buffers only; a file of ordinary size,
such as ``hp.obo`` or ``phenotype.hpoa``, may be parsed once and kept).
"""

from __future__ import annotations

import gzip
import io
import logging
import zlib
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TextIO

from graph.errors import InputError
from graph.records import Concept, Relation
from graph.schema import KG_RELATIONS

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger("kgdx.kg_loaders")

FALLBACK_RELATION = "ASSOCIATED_WITH"

# (src, dst, schema type, negated, weight, attributes or None)
RelationRow = tuple[str, str, str, bool, float, "dict[str, str] | None"]


def make_relation(
    src: str,
    dst: str,
    rel_type: str,
    sources: tuple[str, ...],
    negated: bool = False,
    weight: float = 1.0,
    attributes: dict[str, str] | None = None,
) -> Relation:
    """Build a validated :class:`Relation` from a relation row's fields."""
    return Relation(
        src=src,
        dst=dst,
        type=rel_type,
        sources=sources,
        negated=negated,
        weight=weight,
        attributes=attributes or {},
    )


_MAX_LOGGED_BAD_LINES = 5


@dataclass
class LoadStats:
    """Counts a reader keeps while it streams one source."""

    source: str
    concepts: int = 0  # filled by the build, which sees each record once
    relations: int = 0
    unresolved: int = 0  # relations whose endpoint the source itself could not name
    unknown_relations: Counter[str] = field(default_factory=Counter)
    # Sets, because concept files are streamed twice (crosswalk) and must be counted once.
    bad_lines: set[tuple[str, int]] = field(default_factory=set)
    skipped_ids: set[str] = field(default_factory=set)  # obsolete, suppressed, inactive, ...

    @property
    def skipped_lines(self) -> int:
        """Malformed lines skipped in lenient mode."""
        return len(self.bad_lines)

    @property
    def skipped_records(self) -> int:
        """Well-formed records left out on purpose (obsolete, suppressed, inactive)."""
        return len(self.skipped_ids)

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "concepts": self.concepts,
            "relations": self.relations,
            "skipped_lines": self.skipped_lines,
            "skipped_records": self.skipped_records,
            "unresolved": self.unresolved,
            "unknown_relations": dict(self.unknown_relations),
        }


class RelationTable:
    """The one table that maps a source's relation names to schema relation types.

    Args:
        mapping: source name -> schema type, or ``None`` for a name the loader knows and leaves
            out on purpose (synonymy, the inverse row of a pair that is loaded once).
        stats: where unknown names are counted.

    Raises:
        SchemaError-like ``ValueError``: a mapping target is not a KG relation type (a bug).
    """

    def __init__(self, mapping: Mapping[str, str | None], stats: LoadStats) -> None:
        bad = {v for v in mapping.values() if v is not None and v not in KG_RELATIONS}
        if bad:
            raise ValueError(f"relation table maps to unknown schema types {sorted(bad)}")
        self.mapping = dict(mapping)
        self.stats = stats

    def __contains__(self, name: str) -> bool:
        return name in self.mapping

    def map_array(self, names: pa.Array) -> pa.Array:
        """:meth:`map` over a column: schema types, null where a name is left out on purpose;
        unknown names become ``ASSOCIATED_WITH`` and are counted once per row."""
        import pyarrow as pa
        import pyarrow.compute as pc

        counts = pc.value_counts(names)
        distinct = counts.field("values")
        targets = []
        for name, count in zip(
            distinct.to_pylist(), counts.field("counts").to_pylist(), strict=True
        ):
            if name not in self.mapping:
                self.stats.unknown_relations[name] += count
            targets.append(self.mapping.get(name, FALLBACK_RELATION))
        return pc.take(pa.array(targets, pa.string()), pc.index_in(names, distinct))

    def map(self, name: str) -> str | None:
        """The schema type for ``name``; an unknown name maps to ``ASSOCIATED_WITH``, counted."""
        try:
            return self.mapping[name]
        except KeyError:
            self.stats.unknown_relations[name] += 1
            return FALLBACK_RELATION


# What a truncated or corrupt file raises while it is read (gzip.BadGzipFile is an OSError).
_CORRUPT = (EOFError, OSError, zlib.error, UnicodeDecodeError)


class CheckedText:
    """A line stream that turns a truncated or corrupt file into :class:`InputError`.

    gzip and UTF-8 problems surface only while reading, deep inside a reader's loop; this names
    the file instead of letting ``EOFError`` or ``zlib.error`` reach the user.
    """

    def __init__(self, handle: TextIO, path: Path) -> None:
        self._handle = handle
        self._path = path

    def _fail(self, exc: BaseException) -> InputError:
        return InputError(
            f"{self._path}: truncated or corrupt ({type(exc).__name__}: {exc}); "
            "replace the file (download it again)"
        )

    def __enter__(self) -> CheckedText:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[str]:
        try:  # one try around the whole loop: cheaper per line than __next__
            yield from self._handle
        except _CORRUPT as exc:
            raise self._fail(exc) from None

    def readline(self) -> str:
        try:
            return self._handle.readline()
        except _CORRUPT as exc:
            raise self._fail(exc) from None

    def close(self) -> None:
        self._handle.close()


def open_text(path: Path) -> CheckedText:
    """Open a text file for streaming, transparently un-gzipping ``*.gz``.

    Raises:
        InputError: the file does not exist or cannot be read; later, while reading, a
            truncated or corrupt file (bad gzip stream, invalid UTF-8).
    """
    try:
        if path.suffix == ".gz":
            handle = io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
        else:
            handle = open(path, encoding="utf-8", newline="")  # noqa: SIM115 - closed by wrapper
        return CheckedText(handle, path)
    except FileNotFoundError:
        raise InputError(f"{path}: file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot be read ({exc})") from None


def find_file(folder: Path, names: tuple[str, ...], *, what: str) -> Path:
    """The first of ``names`` (each also tried with ``.gz``) that exists in ``folder``.

    Raises:
        InputError: none exists; the message lists the files that were expected.
    """
    for name in names:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise InputError(
        f"{folder}: no {what} file; expected one of {', '.join(names)} (optionally .gz)"
    )


class SourceReader(ABC):
    """A source of KG records: concepts first, then relations.

    ``concepts()`` may be called more than once (the crosswalk reads concepts twice rather than
    keeping them); each call streams the files again.

    Args:
        path: the file or release folder to read.
        lenient: skip and count malformed lines instead of failing on the first one.
    """

    name: ClassVar[str] = ""
    # True when relation_batches() works in Arrow kernels, which release the GIL: a build then
    # runs it on a thread while its own thread reads the other sources.
    columnar: ClassVar[bool] = False

    def __init__(self, path: Path | str, *, lenient: bool = False) -> None:
        self.path = Path(path)
        self.lenient = lenient
        self.stats = LoadStats(source=self.name)
        self._bad_logged = 0

    @property
    @abstractmethod
    def version(self) -> str:
        """The release of the source (a date or version string)."""

    @property
    def provenance(self) -> str:
        """What goes in a record's ``sources``: ``NAME:version`` (e.g. ``HPO:2025-01-16``)."""
        return f"{self.name.upper()}:{self.version}"

    @abstractmethod
    def concepts(self) -> Iterator[Concept]:
        """Stream the source's concepts."""

    @abstractmethod
    def relation_rows(self) -> Iterator[RelationRow]:
        """Stream the source's relations as plain tuples, typed by the loader's relation table.

        Tuples rather than records: the crosswalk rewrites ids before the one ``Relation`` of
        each row is built, which halves the cost of the hottest loop of a build.
        """

    def relation_streams(self) -> Iterator[tuple[Iterable[RelationRow], tuple[str, ...]]]:
        """Relation rows in groups that share their provenance (one group unless overridden)."""
        yield self.relation_rows(), (self.provenance,)

    def relation_batches(self) -> Iterator[tuple[pa.Table, tuple[str, ...]]]:
        """Relations as Arrow batches (``kg_loaders.columns.ROW_SCHEMA``) with their provenance:
        what the build consumes. Readers that parse column-wise override this."""
        from kg_loaders.columns import row_tables

        for rows, sources in self.relation_streams():
            for table in row_tables(rows):
                yield table, sources

    def relations(self) -> Iterator[Relation]:
        """Stream the source's relations as records (ids as the source writes them)."""
        provenance = (self.provenance,)
        for src, dst, rel_type, negated, weight, attributes in self.relation_rows():
            yield make_relation(src, dst, rel_type, provenance, negated, weight, attributes)

    def bad_line(self, path: Path, line_no: int, message: str) -> None:
        """Fail on a malformed line, or (lenient) count it and go on.

        Raises:
            InputError: not lenient; names the file and line and how to go on.
        """
        if not self.lenient:
            raise InputError(
                f"{path}:{line_no}: {message}; fix the file or rerun with --lenient to skip "
                "malformed lines"
            )
        key = (str(path), line_no)
        if key in self.stats.bad_lines:
            return
        self.stats.bad_lines.add(key)
        if self._bad_logged < _MAX_LOGGED_BAD_LINES:
            self._bad_logged += 1
            logger.warning("%s:%d: skipped: %s", path, line_no, message)
