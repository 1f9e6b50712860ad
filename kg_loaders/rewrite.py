"""Rewrite relation batches to merged concept ids, column-wise: the relation half of the crosswalk.

Every concept id the build knows gets a position in one sorted id array; Arrow's ``index_in``
turns a batch's endpoint columns into positions, an integer array maps each position to its
merged node, and the ``(type, src, dst)`` triple becomes one 64-bit
key. Duplicates are found among those keys with sorted NumPy arrays, so a 10M-relation load keeps
80 MB of keys instead of a Python set of ten million objects.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from graph.kg_tables import pad_relation_table
from graph.schema import KG_RELATIONS, encode_sources

_TYPES = {name: code for code, name in enumerate(KG_RELATIONS)}
_MERGE_EVERY = 8  # sorted key chunks kept before they are merged into one


class RelationRewriter:
    """Filter and rewrite relation batches (``kg_loaders.columns.ROW_SCHEMA``).

    Args:
        known: ids of the loaded concepts (a relation with another endpoint is dangling).
        canonical: id -> merged node id, only where they differ.
        report: the crosswalk report whose relation counts this keeps.
    """

    def __init__(self, known: set[str], canonical: Mapping[str, str], report) -> None:
        ids = sorted(known | set(canonical.values()))
        self.report = report
        self._ids = pa.array(ids, pa.string())
        self._known = np.zeros(len(ids), dtype=bool)
        self._known[self._positions(pa.array(list(known), pa.string()))] = True
        self._canonical = np.arange(len(ids), dtype=np.int64)
        if canonical:
            members = self._positions(pa.array(list(canonical), pa.string()))
            self._canonical[members] = self._positions(pa.array(list(canonical.values())))
        self._width = max(len(ids), 1)
        self._seen: list[np.ndarray] = []  # sorted chunks of the keys written so far

    def _positions(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Positions of ``values`` in the id array, -1 for an id it lacks."""
        found = pc.index_in(values, value_set=self._ids)
        if isinstance(found, pa.ChunkedArray):
            found = found.combine_chunks()
        return found.fill_null(-1).to_numpy().astype(np.int64)

    def tables(self, batch: pa.Table, sources: tuple[str, ...]) -> Iterator[tuple[str, pa.Table]]:
        """The batch's new relations, per type, in the store's bulk layout (``graph.kg_tables``).

        Raises:
            ValueError: a row's type is not a KG relation type.
        """
        report = self.report
        report.relations_in += batch.num_rows
        # One lookup for both columns: index_in hashes its whole value set on every call.
        ends = [*batch["src"].chunks, *batch["dst"].chunks]
        both = self._positions(pa.chunked_array(ends, pa.string()))
        src, dst = both[: batch.num_rows], both[batch.num_rows :]
        ok = (src >= 0) & (dst >= 0)
        ok[ok] = self._known[src[ok]] & self._known[dst[ok]]
        report.dangling += int(len(ok) - ok.sum())
        src = np.where(ok, self._canonical[np.maximum(src, 0)], -1)
        dst = np.where(ok, self._canonical[np.maximum(dst, 0)], -1)
        loops = ok & (src == dst)
        report.self_loops += int(loops.sum())
        ok &= ~loops
        types = batch["type"]
        distinct = pc.unique(types).to_pylist()
        unknown = [name for name in distinct if name not in _TYPES]
        if unknown:
            raise ValueError(f"unknown relation type {unknown[0]!r}")
        codes = np.array([_TYPES[name] for name in distinct], dtype=np.int64)[
            pc.index_in(types, pa.array(distinct, pa.string())).to_numpy(zero_copy_only=False)
        ]
        keys = (codes * self._width + src) * self._width + dst
        fresh = ok & self._first_sighting(keys, ok)
        report.duplicates += int(ok.sum() - fresh.sum())
        report.relations_out += int(fresh.sum())
        for name in distinct:
            rows = np.flatnonzero(fresh & (codes == _TYPES[name]))
            if len(rows):
                yield name, self._table(name, batch, src[rows], dst[rows], rows, sources)

    def _first_sighting(self, keys: np.ndarray, ok: np.ndarray) -> np.ndarray:
        """True for the first row of each key that no earlier batch wrote; records the keys."""
        first = np.zeros(len(keys), dtype=bool)
        candidates = np.flatnonzero(ok)
        _, at = np.unique(keys[candidates], return_index=True)
        rows = candidates[at]
        for chunk in self._seen:
            where = np.minimum(np.searchsorted(chunk, keys[rows]), len(chunk) - 1)
            rows = rows[chunk[where] != keys[rows]]
        first[rows] = True
        if len(rows):
            self._seen.append(np.sort(keys[rows]))
        if len(self._seen) > _MERGE_EVERY:
            self._seen = [np.sort(np.concatenate(self._seen), kind="stable")]
        return first

    def _table(
        self,
        rel_type: str,
        batch: pa.Table,
        src: np.ndarray,
        dst: np.ndarray,
        rows: np.ndarray,
        sources: tuple[str, ...],
    ) -> pa.Table:
        take = pa.array(rows)
        columns = {
            "from": self._ids.take(pa.array(src)),
            "to": self._ids.take(pa.array(dst)),
            "sources": pa.repeat(pa.scalar(encode_sources(sources), pa.string()), len(rows)),
            "weight": batch["weight"].take(take),
            "negated": batch["negated"].take(take),
            "attributes": batch["attributes"].take(take),
        }
        return pad_relation_table(rel_type, pa.table(columns))
