"""``kgdx`` command line (Typer + Rich).

Each module in :data:`COMMAND_MODULES` adds its commands through ``register(groups)``; heavy
libraries are imported inside the commands, so ``kgdx --help`` answers fast.
"""

from __future__ import annotations

import importlib
import importlib.util

import typer

from graph.errors import KgdxError

app = typer.Typer(
    name="kgdx",
    help="Knowledge-graph GNN reasoning for clinical diagnosis, with path-based explanations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
GROUPS: dict[str, typer.Typer] = {
    "kg": typer.Typer(help="Build and inspect the knowledge graph.", no_args_is_help=True),
    "extract": typer.Typer(help="Extract findings from reports.", no_args_is_help=True),
    "image": typer.Typer(help="Train, predict and inspect the image model.", no_args_is_help=True),
    "eval": typer.Typer(
        help="Evaluate extractors and models on labelled data.", no_args_is_help=True
    ),
    "export": typer.Typer(help="Export the graph store (Neo4j).", no_args_is_help=True),
    "ingest": typer.Typer(help="Store patients' data in the graph.", no_args_is_help=True),
}
for _name, _group in GROUPS.items():
    app.add_typer(_group, name=_name)


def version_text() -> str:
    """``kgdx 0.1.0`` (the installed distribution's version; the source tree's when run from a
    checkout that was never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"kgdx {version('kgdx')}"
    except PackageNotFoundError:
        import tomllib
        from pathlib import Path

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        return f"kgdx {tomllib.loads(pyproject.read_text())['project']['version']}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(version_text())
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the kgdx version and exit.",
    ),
) -> None:
    """Knowledge-graph GNN reasoning for clinical diagnosis, with path-based explanations."""


# One module per area; a module that is not there (yet) is skipped.
COMMAND_MODULES = (
    "api.commands.demo",
    "api.commands.kg",
    "api.commands.extract",
    "api.commands.image",
    "api.commands.query",
    "api.commands.export",
    "api.commands.serve",
    "api.commands.ingest",
    "api.commands.keys",
    "api.commands.reasoning",
)
for _module in COMMAND_MODULES:
    if importlib.util.find_spec(_module) is not None:
        importlib.import_module(_module).register(app, GROUPS)


def main() -> None:
    """Entry point: run the app, turning kgdx errors into a one-line message and exit code 2."""
    from graph.log import setup_logging
    from graph.settings import get_settings

    try:
        setup_logging(get_settings().log_level)
        app()
    except KgdxError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
