"""Collect a build's bulk tables per target table, in memory up to a budget, then on disk.

LadybugDB's ``COPY`` into an empty table is several times faster than many ``COPY`` statements
into a growing one, so a fresh build writes each table once, at the end. The default KG (about
300k relations, ~40 MB of Arrow) stays in memory and is copied from Arrow; a bigger release
goes to one Parquet file per table in the build's staging folder, so memory stays bounded by
``budget_mb`` whatever the release size, and ``COPY`` streams the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


class TableSpool:
    """Arrow tables per key (``"Concept"`` or a relation type), in insertion order of keys.

    Args:
        folder: where Parquet files go once the in-memory tables pass the budget.
        budget_mb: in-memory budget over all keys.
    """

    def __init__(self, folder: Path, *, budget_mb: int = 512) -> None:
        self.folder = folder
        self.budget = budget_mb * 1024 * 1024
        self._tables: dict[str, list[pa.Table]] = {}
        self._writers: dict[str, pq.ParquetWriter] = {}
        self._rows: dict[str, int] = {}
        self._bytes = 0

    def add(self, key: str, table: pa.Table) -> None:
        """Add rows for ``key`` (all tables of one key share a schema)."""
        if not table.num_rows:
            return
        self._rows[key] = self._rows.get(key, 0) + table.num_rows
        if key in self._writers:
            self._writers[key].write_table(table)
            return
        self._tables.setdefault(key, []).append(table)
        self._bytes += table.nbytes
        while self._bytes > self.budget and self._tables:
            self._spill(max(self._tables, key=lambda k: sum(t.nbytes for t in self._tables[k])))

    def _spill(self, key: str) -> None:
        tables = self._tables.pop(key)
        self.folder.mkdir(parents=True, exist_ok=True)
        writer = pq.ParquetWriter(self.folder / f"{key}.parquet", tables[0].schema)
        for table in tables:
            writer.write_table(table)
            self._bytes -= table.nbytes
        self._writers[key] = writer

    def items(self, keys: list[str] | None = None) -> Iterator[tuple[str, pa.Table | Path]]:
        """Each key's rows as one Arrow table or, for a spilled key, its closed Parquet file;
        a key's memory is released once the caller has moved to the next key."""
        for key in keys if keys is not None else list(self._rows):
            if key in self._writers:
                self._writers.pop(key).close()
                yield key, self.folder / f"{key}.parquet"
            elif key in self._tables:
                tables = self._tables.pop(key)
                self._bytes -= sum(t.nbytes for t in tables)
                yield key, pa.concat_tables(tables)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        self._tables.clear()
        self._bytes = 0
