"""How the CLI prints tables and numbers for people (JSON output is never shaped here).

- Ids (``UMLS:C0018802``, ``P001/r1``, relation types) are never broken across lines: a column
  whose cells are all single words gets ``no_wrap`` and the width of its longest cell, and the
  columns of prose (names, sentences) wrap instead. An 80-column terminal then still shows every
  id whole.
- Probabilities and other fractions print with 3 decimals (``0.873``), not the 17 digits of a
  Python float. ``--json`` keeps the full precision of every number, for programs.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

# A single word up to this long is kept whole; a longer one (a JSON blob, a path) may fold.
MAX_WHOLE_WORD = 48
DECIMALS = 3


def human_number(value: float) -> str:
    """A float for people: 3 decimals (``0.873``, ``12.500``); very small or very large ones in
    3 significant digits (``1.2e-05``), so a nonzero value never reads as ``0.000``."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and (abs(value) < 10**-DECIMALS or abs(value) >= 1e9):
        return f"{value:.{DECIMALS}g}"
    return f"{value:.{DECIMALS}f}"


def human_cell(value: Any) -> str:
    """One table cell: text as it is, floats rounded (also inside lists and maps), other values
    as compact JSON, ``None`` as ``-``."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or isinstance(value, int):
        return json.dumps(value)
    if isinstance(value, float):
        return human_number(value)
    return json.dumps(_rounded(value), default=str, ensure_ascii=False)


def _rounded(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value, DECIMALS)
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(item) for item in value]
    return value


def is_word_column(cells: Sequence[str]) -> bool:
    """Whether every cell is one word (an id, a number, a short code): such a column is never
    wrapped."""
    return all(len(cell) <= MAX_WHOLE_WORD and not any(c.isspace() for c in cell) for cell in cells)


def make_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    right: Sequence[str] = (),
) -> Any:
    """A Rich table of ``rows`` (already formatted cells) whose one-word columns stay whole.

    Args:
        columns: the headers.
        rows: one sequence of cells per row, as strings.
        title: printed above, left-justified.
        right: headers of columns to right-justify (numbers).
    """
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    for index, header in enumerate(columns):
        cells = [row[index] for row in rows]
        justify = "right" if header in right else "left"
        if is_word_column(cells):
            width = max([len(header), *(len(cell) for cell in cells)])
            table.add_column(header, no_wrap=True, min_width=width, justify=justify)
        else:
            table.add_column(header, overflow="fold", ratio=1, justify=justify)
    for row in rows:
        table.add_row(*row)
    return table


# The narrowest a column of prose is squeezed to before rows print as records instead.
MIN_PROSE_WIDTH = 12


def table_width(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """The fewest terminal columns :func:`make_table` needs without breaking an id."""
    width = 1
    for index, header in enumerate(columns):
        cells = [row[index] for row in rows]
        longest = max([len(header), *(len(cell) for cell in cells)])
        width += 3 + (longest if is_word_column(cells) else min(longest, MIN_PROSE_WIDTH))
    return width


def print_rows(
    out: Any,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    title: str | None = None,
    right: Sequence[str] = (),
) -> None:
    """Print ``rows`` as a table when it fits the console without breaking an id, else as
    records: one block per row, a ``column  value`` line per column (``psql``'s expanded
    display), so a wide result still reads on an 80-column terminal."""
    if table_width(columns, rows) <= out.width:
        out.print(make_table(columns, rows, title=title, right=right))
        return
    from rich.text import Text

    if title:
        out.print(title)
    label_width = max(len(column) for column in columns)
    for number, row in enumerate(rows, 1):
        out.rule(f"row {number}", align="left", characters="-")
        for column, cell in zip(columns, row, strict=True):
            line = Text(f"{column:<{label_width}}  ", style="bold")
            line.append(cell)
            out.print(line, overflow="fold")


def console() -> Any:
    """The console tables print on: the terminal's width, or ``COLUMNS`` (80 when unset) when
    the output is a pipe or a file."""
    from rich.console import Console

    return Console()
