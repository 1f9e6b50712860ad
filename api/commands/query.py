"""``kgdx query "CYPHER"``: researchers' read-only Cypher on the terminal, as a table or JSON."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

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


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def query_command(
    cypher: Annotated[str, typer.Argument(help="One read-only Cypher statement")],
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="NAME=VALUE (repeatable)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
    limit: Annotated[int | None, typer.Option(min=1, help="Row limit (default: settings)")] = None,
    timeout: Annotated[float | None, typer.Option(min=0.001, help="Timeout in seconds")] = None,
    store: Annotated[str | None, typer.Option(help="Store backend (default: settings)")] = None,
) -> None:
    """Run read-only Cypher against the graph store (writes are refused)."""
    from graph.stores import open_store

    params = dict(parse_param(p) for p in param or [])
    with open_store(store) as opened:
        result = opened.query(cypher, params, timeout_s=timeout, row_limit=limit)
    if as_json:
        payload = {
            "columns": list(result.columns),
            "rows": [list(row) for row in result.rows],
            "truncated": result.truncated,
        }
        typer.echo(json.dumps(payload, default=str, ensure_ascii=False))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(*result.columns, show_lines=False)
    for row in result.rows:
        table.add_row(*(_cell(value) for value in row))
    console = Console(width=200) if not typer.get_text_stream("stdout").isatty() else Console()
    console.print(table)
    note = " (truncated by the row limit)" if result.truncated else ""
    typer.echo(f"{len(result.rows)} row(s){note}", err=True)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("query")(query_command)
