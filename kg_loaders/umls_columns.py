"""Column-wise reading of UMLS ``MRREL.RRF``: Arrow batches straight from the file.

A full release has tens of millions of MRREL rows; splitting each line in Python and building a
tuple per relation held a UMLS build to about 44k relations/s. Here Arrow's streaming CSV reader
parses blocks of the file (bounded memory, the GIL released), and filtering, typing, direction
and the ``{"sab": ...}`` attributes are compute kernels over whole columns.

Rows Arrow cannot parse go to Python: a blank line is skipped, a row without the trailing bar is
read as the line reader would, and a malformed row fails (or, ``--lenient``, is skipped) through
``SourceReader.bad_line``; the line number comes from a line-by-line scan, only then.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from graph.errors import InputError
from kg_loaders.base import RelationTable
from kg_loaders.columns import ROW_SCHEMA

MRREL_FIELDS = 16
# Field positions (UMLS Reference Manual, MRREL) of the columns the loader reads.
_USED = {"cui1": 0, "rel": 3, "cui2": 4, "rela": 7, "sab": 10, "suppress": 14}
_NAMES = [f"f{i}" for i in range(MRREL_FIELDS + 1)]  # + the empty field after the trailing bar
BLOCK_BYTES = 16 << 20  # ~150k rows per batch


def mrrel_columns(path: Path, on_invalid: Callable[[str], str]) -> Iterator[pa.RecordBatch]:
    """The used MRREL columns (named as in ``_USED``), one batch per block of the file.

    ``on_invalid(text)`` is called for each row with the wrong number of fields and returns
    ``"skip"`` or ``"error"``. A gzipped file (``.gz``) is decompressed on the fly.

    Raises:
        InputError: the file is corrupt (bad compression or UTF-8) or a row was refused.
    """
    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=_NAMES, block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                delimiter="|",
                quote_char=False,
                invalid_row_handler=lambda row: on_invalid(row.text),
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in _NAMES},
                include_columns=[_NAMES[i] for i in _USED.values()],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
        for batch in reader:
            yield pa.RecordBatch.from_arrays(batch.columns, names=list(_USED))
    except (pa.ArrowInvalid, OSError, EOFError) as exc:
        raise InputError(
            f"{path}: cannot be read as MRREL ({exc}); replace the file or rerun with "
            "--lenient to skip malformed lines"
        ) from None


def split_row(text: str) -> list[str] | None:
    """A row Arrow refused, split as the line reader splits it: its fields, or ``None``."""
    fields = text.rstrip("\r\n").split("|")
    if fields and fields[-1] == "":
        fields.pop()
    return fields if len(fields) == MRREL_FIELDS else None


def fields_batch(rows: list[list[str]]) -> pa.RecordBatch:
    """Rows split by :func:`split_row`, in the layout of :func:`mrrel_columns`."""
    return pa.RecordBatch.from_arrays(
        [pa.array([row[i] for row in rows], pa.string()) for i in _USED.values()],
        names=list(_USED),
    )


def relation_batch(
    batch: pa.RecordBatch,
    table: RelationTable,
    directions: Mapping[str, tuple[str, bool] | None],
    sabs: frozenset[str] | None,
) -> pa.Table:
    """MRREL columns -> a relation batch (``kg_loaders.columns.ROW_SCHEMA``).

    Keeps unsuppressed rows between two CUIs (of the ``sabs`` sources, when given), types each
    by its RELA when ``directions`` knows it, else by its REL (an unknown RELA is counted), and
    turns "CUI2 is <REL/RELA> of CUI1" into src -> dst.
    """
    cui1, cui2, sab = batch.column("cui1"), batch.column("cui2"), batch.column("sab")
    keep = pc.and_(
        pc.is_in(batch.column("suppress"), pa.array(["N", ""])), pc.not_equal(cui1, cui2)
    )
    if sabs is not None:
        keep = pc.and_(keep, pc.is_in(sab, pa.array(sorted(sabs), pa.string())))
    batch = batch.filter(keep)
    rela = batch.column("rela")
    known = pa.array(list(directions), pa.string())
    rela_known = pc.is_in(rela, known)
    unknown = pc.filter(rela, pc.and_(pc.invert(rela_known), pc.not_equal(rela, "")))
    if len(unknown):
        counts = pc.value_counts(unknown)
        for name, count in zip(
            counts.field("values").to_pylist(), counts.field("counts").to_pylist(), strict=True
        ):
            table.stats.unknown_relations[name] += count
    names = pc.if_else(rela_known, rela, batch.column("rel"))
    types = table.map_array(names)
    typed = pc.is_valid(types)
    batch, names, types = batch.filter(typed), pc.filter(names, typed), pc.filter(types, typed)
    reverse = np.array([bool(spec and spec[1]) for spec in directions.values()] + [False])
    position = pc.fill_null(pc.index_in(names, known), len(known)).to_numpy()
    cui2_first = pa.array(reverse[position])
    cui1, cui2, sab = batch.column("cui1"), batch.column("cui2"), batch.column("sab")
    src = pc.if_else(cui2_first, cui2, cui1)
    dst = pc.if_else(cui2_first, cui1, cui2)
    distinct = pc.unique(sab)
    texts = pa.array([json.dumps({"sab": s}) for s in distinct.to_pylist()], pa.string())
    rows = len(batch)
    return pa.Table.from_arrays(
        [
            pc.binary_join_element_wise("UMLS:", src, ""),
            pc.binary_join_element_wise("UMLS:", dst, ""),
            types,
            pa.array(np.zeros(rows, dtype=bool)),
            pa.array(np.ones(rows)),
            pc.take(texts, pc.index_in(sab, distinct)),
        ],
        schema=ROW_SCHEMA,
    )
