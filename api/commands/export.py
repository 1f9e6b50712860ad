"""``kgdx export neo4j-import DIR`` and ``kgdx export neo4j``: move the store into Neo4j."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.commands.reading import DbOption, open_reading_store
from graph.errors import InputError


def neo4j_import_command(
    directory: Annotated[Path, typer.Argument(help="Empty folder for the CSV files")],
    array_delimiter: Annotated[str, typer.Option(help="Separator inside list values")] = "|",
    page_size: Annotated[int, typer.Option(min=1, help="Nodes read per page")] = 5_000,
    db: DbOption = None,
) -> None:
    """Write the store as `neo4j-admin database import` CSV files (the fastest bulk load).

    The store is opened read-only, so this works while `kgdx serve` has it open."""
    from graph.neo4j_export import write_neo4j_import

    with open_reading_store(db=db) as store:
        manifest = write_neo4j_import(
            store, directory, array_delimiter=array_delimiter, page_size=page_size
        )
    counts = manifest.counts()
    typer.echo(
        f"wrote {len(manifest.files)} files to {directory}: {counts.total_nodes} nodes, "
        f"{counts.total_relations} relationships"
    )
    typer.echo(f"load them (Neo4j stopped) with: sh {directory / 'neo4j-admin-import.sh'}")


def neo4j_copy_command(
    uri: Annotated[str | None, typer.Option(help="Neo4j URI (default: KGDX_NEO4J_URI)")] = None,
    user: Annotated[str | None, typer.Option(help="default: KGDX_NEO4J_USER")] = None,
    password: Annotated[
        str | None, typer.Option(help="default: KGDX_NEO4J_PASSWORD", envvar="KGDX_NEO4J_PASSWORD")
    ] = None,
    database: Annotated[str | None, typer.Option(help="default: KGDX_NEO4J_DATABASE")] = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per UNWIND batch")] = 10_000,
    source: Annotated[str, typer.Option(help="Store to copy from")] = "embedded",
    db: DbOption = None,
) -> None:
    """Copy the (embedded) store into a running Neo4j through the driver, in batches.

    The source is opened read-only, so this works while `kgdx serve` has it open."""
    from graph.neo4j_export import copy_to_neo4j
    from graph.settings import get_settings
    from graph.stores import open_store
    from graph.stores.neo4j import Neo4jStore

    overrides = {
        key: value
        for key, value in {
            "neo4j_uri": uri,
            "neo4j_user": user,
            "neo4j_password": password,
            "neo4j_database": database,
        }.items()
        if value is not None
    }
    if source == "neo4j":
        raise InputError("the source must differ from the Neo4j target; use --source embedded")
    if db is not None:
        overrides["db_path"] = db
    settings = get_settings(**overrides)
    with (
        open_store(source, settings=settings, read_only=True) as origin,
        Neo4jStore(settings, batch_size=batch_size) as target,
    ):
        counts = copy_to_neo4j(origin, target, batch_size=batch_size)
    typer.echo(
        f"Neo4j at {settings.neo4j_uri} now holds {counts.total_nodes} nodes and "
        f"{counts.total_relations} relationships"
    )


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    groups["export"].command("neo4j-import")(neo4j_import_command)
    groups["export"].command("neo4j")(neo4j_copy_command)
