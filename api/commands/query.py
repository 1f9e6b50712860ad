"""``kgdx query "CYPHER"``: researchers' read-only Cypher on the terminal, as a table or JSON."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any

import typer

from api.commands.reading import DbOption, open_reading_store
from graph.errors import QueryError


def parse_param(text: str) -> tuple[str, Any]:
    """``k=v`` -> ``(k, v)``; ``v`` is read as JSON when it parses (``5``, ``true``, ``[1,2]``),
    otherwise kept as a string (``UMLS:C0018800``). Quote a number to keep it a string: ``k='"5"'``.

    Raises:
        QueryError: no ``=`` or a name that is not an identifier.
    """
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not name.isidentifier():
        raise QueryError(f"bad --param {text!r}; write NAME=VALUE, e.g. --param id=UMLS:C0018800")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def finite(value: Any) -> Any:
    """``value`` with every NaN or infinity as ``None``: JSON has no spelling for them
    (``json.dumps`` would print ``Infinity``, which no JSON parser reads)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [finite(item) for item in value]
    return value


def query_command(
    cypher: Annotated[str, typer.Argument(help="One read-only Cypher statement")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (repeatable)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Row limit (default: settings)")] = None,
    timeout: Annotated[float | None, typer.Option(min=0.001, help="Timeout in seconds")] = None,
    store: Annotated[str | None, typer.Option(help="Store backend (default: settings)")] = None,
    db: DbOption = None,
) -> None:
    """Run read-only Cypher against the graph store (writes are refused).

    The store is opened read-only, so this works while `kgdx serve` has it open. The table
    rounds numbers to 3 decimals; --json keeps their full precision.
    """
    from api.commands.table import console, human_cell, print_rows

    params = dict(parse_param(p) for p in param or [])
    with open_reading_store(store, db) as opened:
        result = opened.query(cypher, params, timeout_s=timeout, row_limit=limit)
    if as_json:
        payload = {
            "columns": list(result.columns),
            "rows": [list(row) for row in result.rows],
            "truncated": result.truncated,
        }
        text = json.dumps(finite(payload), default=str, ensure_ascii=False, allow_nan=False)
        typer.echo(text)
        return
    cells = [[human_cell(value) for value in row] for row in result.rows]
    numeric = [
        column
        for index, column in enumerate(result.columns)
        if result.rows and all(isinstance(row[index], int | float) for row in result.rows)
    ]
    print_rows(console(), list(result.columns), cells, right=numeric)
    note = " (truncated by the row limit)" if result.truncated else ""
    typer.echo(f"{len(result.rows)} row(s){note}", err=True)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("query")(query_command)
