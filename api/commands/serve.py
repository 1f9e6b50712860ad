"""``kgdx serve``: the REST API (FastAPI on uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer


def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind (0.0.0.0 in a container)")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (Neo4j store only)")] = 1,
) -> None:
    """Serve the REST API: /health, /concepts, /patients, /patients/{id}/diagnoses, /query."""
    import uvicorn

    from graph.errors import ConfigError
    from graph.settings import get_settings

    if workers > 1 and get_settings().store == "embedded":
        # One embedded database folder can be opened for writing by one process only.
        raise ConfigError("the embedded store serves from one worker; use --workers 1 or Neo4j")
    uvicorn.run("api.rest:create_app", factory=True, host=host, port=port, workers=workers)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("serve")(serve_command)
