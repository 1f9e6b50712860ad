"""Column-wise parsing of ``phenotype.hpoa``: the whole annotation file as one Arrow table, and
the vectorised pieces the reader turns into relation batches (frequency weights, attributes).

A release has about 270k rows; Python row parsing and per-row records made the annotations the
slowest part of a default build, so the file is read by Arrow's CSV reader and every step that
touches all rows is an Arrow compute kernel. Only rows that merge (one disease, term, type and
qualifier on several lines: a few hundred) go through Python.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

COLUMNS = (
    "database_id",
    "disease_name",
    "qualifier",
    "hpo_id",
    "reference",
    "evidence",
    "onset",
    "frequency",
    "sex",
    "modifier",
    "aspect",
    "biocuration",
)
# Attributes a relation keeps, in this order (frequency also gives the weight).
ATTRIBUTES = ("evidence", "onset", "frequency", "sex", "modifier", "reference", "aspect")
_USED = COLUMNS[:11]  # biocuration (the longest column) is not kept


def read_annotations(path: Path, skip_rows: int) -> pa.Table | None:
    """The annotation rows of a clean file as a string table, or ``None`` when any row is
    malformed (wrong field count, bad ids, unknown qualifier, bad encoding or compression):
    the caller then parses with the line-by-line reader, which names the line or skips it."""
    invalid: list[int] = []

    def on_invalid(row: object) -> str:
        invalid.append(1)
        return "skip"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(
                skip_rows=skip_rows, column_names=list(COLUMNS), block_size=8 << 20
            ),
            parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char=False, invalid_row_handler=on_invalid
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in COLUMNS},
                include_columns=list(_USED),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, OSError, EOFError):
        return None
    if invalid or not _values_ok(table):
        return None
    return table


def _values_ok(table: pa.Table) -> bool:
    ids_ok = pc.all(pc.match_substring(table["database_id"], ":")).as_py() is not False
    terms_ok = pc.all(pc.starts_with(table["hpo_id"], "HP:")).as_py() is not False
    qualifier = table["qualifier"]
    qualifiers_ok = pc.all(pc.is_in(qualifier, pa.array(["", "NOT"]))).as_py() is not False
    return ids_ok and terms_ok and qualifiers_ok


def rows_to_table(rows: Iterable[list[str]]) -> pa.Table:
    """Rows of the line reader (field lists in :data:`COLUMNS` order) as the same table."""
    columns: list[list[str]] = [[] for _ in _USED]
    for fields in rows:
        for values, value in zip(columns, fields, strict=False):
            values.append(value)
    return pa.table(
        {name: pa.array(values, pa.string()) for name, values in zip(_USED, columns, strict=True)}
    )


def frequency_weights(values: pa.ChunkedArray | pa.Array, terms: dict[str, float]) -> pa.Array:
    """Vectorised ``frequency_weight``: an HPO frequency term, ``n/m`` or ``p%`` as a number in
    [0, 1]; null where the value is empty or not a frequency."""
    by_term = pc.take(
        pa.array(list(terms.values()), pa.float64()), pc.index_in(values, pa.array(list(terms)))
    )
    fraction = pc.match_substring_regex(values, r"^\d+/\d+$")
    parts = pc.split_pattern(pc.if_else(fraction, values, "0/0"), "/")
    num = pc.cast(pc.list_element(parts, 0), pa.float64())
    den = pc.cast(pc.list_element(parts, 1), pa.float64())
    by_fraction = pc.if_else(
        pc.and_(fraction, pc.greater(den, 0)),
        pc.min_element_wise(pc.divide(num, pc.max_element_wise(den, 1)), 1.0),
        None,
    )
    percent = pc.match_substring_regex(values, r"^\d+(\.\d+)?%$")
    number = pc.cast(pc.if_else(percent, pc.utf8_rtrim(values, "%"), "0"), pa.float64())
    by_percent = pc.if_else(percent, pc.min_element_wise(pc.divide(number, 100.0), 1.0), None)
    return pc.coalesce(by_term, by_fraction, by_percent)


def attributes_json(table: pa.Table) -> pa.Array:
    """One JSON object per row of the :data:`ATTRIBUTES` columns that are not empty (``""``
    when all are), the text ``json.dumps`` of the same dict parses back to."""
    parts = []
    for name in ATTRIBUTES:
        values = table[name]
        if not pc.any(pc.not_equal(values, "")).as_py():
            continue
        for char, escaped in (("\\", "\\\\"), ('"', '\\"')):
            if pc.any(pc.match_substring(values, char)).as_py():
                values = pc.replace_substring(values, char, escaped)
        quoted = pc.binary_join_element_wise(f'"{name}": "', values, '"', "")
        parts.append(pc.if_else(pc.equal(table[name], ""), pa.scalar(None, pa.string()), quoted))
    if not parts:
        return pa.array([""] * table.num_rows, pa.string())
    joined = pc.binary_join_element_wise(*parts, ", ", null_handling="skip")
    if pc.any(pc.match_substring_regex(joined, r"[\x00-\x1f]")).as_py():
        return pa.array(  # control characters: let json escape them
            [
                json.dumps({k: v for k, v in row.items() if v}) if any(row.values()) else ""
                for row in table.select(list(ATTRIBUTES)).to_pylist()
            ],
            pa.string(),
        )
    wrapped = pc.binary_join_element_wise("{", joined, "}", "")
    return pc.if_else(pc.equal(joined, ""), "", wrapped)
