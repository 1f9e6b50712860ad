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


DEMO_STORE = "demo.lbug"
DEMO_MODEL = ("models", "demo")  # api.commands.demo.DEMO_MODEL_DIR


def demo_fallback(settings) -> dict[str, str]:
    """What to serve when nothing is configured and only ``kgdx demo`` has run: the demo's
    store and model (``KGDX_DB_PATH`` / ``KGDX_MODEL_DIR`` values), else nothing.

    Applies when the embedded store is used, neither ``db_path`` nor ``model_dir`` is set,
    ``<home>/kg.lbug`` does not exist and ``<home>/demo.lbug`` does.
    """
    if settings.store != "embedded" or settings.db_path is not None:
        return {}
    if settings.resolved_db_path.exists():
        return {}
    demo_store = settings.home / DEMO_STORE
    if not demo_store.exists():
        return {}
    env = {"KGDX_DB_PATH": str(demo_store)}
    demo_model = settings.home.joinpath(*DEMO_MODEL)
    if settings.model_dir is None and demo_model.is_dir():
        env["KGDX_MODEL_DIR"] = str(demo_model)
    return env


def serve_command(
    host: Annotated[
        str, typer.Option(help="Interface to bind; other than loopback only with API keys")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (Neo4j store only)")] = 1,
) -> None:
    """Serve the REST API v1 (/v1/patients, /v1/patients/{id}/diagnoses, /v1/concepts,
    /v1/query; /healthz, /readyz) and the clinician viewer at /.

    While it runs, `kgdx query`, `kgdx kg stats` and `kgdx export` still read the store. With
    nothing configured and no `<home>/kg.lbug`, it serves the store and model of `kgdx demo`.
    """
    import os

    import uvicorn

    from graph.errors import ConfigError
    from graph.log import logger
    from graph.settings import get_settings

    settings = get_settings()
    fallback = demo_fallback(settings)
    if fallback:
        # create_app reads the settings from the environment at startup
        os.environ.update(fallback)
        logger.warning(
            "no %s yet: serving the demo store %s (model %s); set KGDX_DB_PATH to choose",
            settings.resolved_db_path,
            fallback["KGDX_DB_PATH"],
            fallback.get("KGDX_MODEL_DIR", settings.resolved_model_dir),
        )
        settings = get_settings()
    check_bind(host, settings)
    if workers > 1 and settings.store == "embedded":
        # One embedded database folder can be opened for writing by one process only.
        raise ConfigError("the embedded store serves from one worker; use --workers 1 or Neo4j")
    uvicorn.run("api.rest:create_app", factory=True, host=host, port=port, workers=workers)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    app.command("serve")(serve_command)
