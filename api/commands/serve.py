"""``kgdx serve``: the REST API (FastAPI on uvicorn)."""

from __future__ import annotations

from typing import Annotated

import typer

NO_KEYS_MESSAGE = (
    "no API keys are configured, so the REST API is open and may only listen on loopback "
    "(127.0.0.1, ::1, localhost), not {host!r}. Create a key with "
    "`kgdx keys create --name NAME --role ROLE` and add the entry it prints to kgdx.toml "
    "([[api_keys]]) or to KGDX_API_KEYS (JSON); see docs/rest.md, Authentication"
)


def check_bind(host: str, settings) -> None:
    """Refuse to serve an open API (no keys) on anything but loopback.

    Raises:
        ConfigError: ``host`` is not a loopback address and no API keys are configured.
    """
    from api.auth import is_loopback
    from graph.errors import ConfigError

    if not settings.api_keys and not is_loopback(host):
        raise ConfigError(NO_KEYS_MESSAGE.format(host=host))


def serve_command(
    host: Annotated[
        str, typer.Option(help="Interface to bind; other than loopback only with API keys")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (Neo4j store only)")] = 1,
) -> None:
    """Serve the REST API: /health, /concepts, /patients, /patients/{id}/diagnoses, /query.

    While it runs, `kgdx query`, `kgdx kg stats` and `kgdx export` still read the store.
    """
    import uvicorn

    from graph.errors import ConfigError
    from graph.settings import get_settings

    settings = get_settings()
    check_bind(host, settings)
    if workers > 1 and settings.store == "embedded":
        # One embedded database folder can be opened for writing by one process only.
        raise ConfigError("the embedded store serves from one worker; use --workers 1 or Neo4j")
    uvicorn.run("api.rest:create_app", factory=True, host=host, port=port, workers=workers)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("serve")(serve_command)
