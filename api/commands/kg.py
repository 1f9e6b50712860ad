"""``kgdx kg build`` / ``kgdx kg stats`` / ``kgdx kg sources`` / ``kgdx kg compact``: build,
inspect and compact the KG's database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from api.commands.reading import DbOption

if TYPE_CHECKING:
    from rich.console import Console

    from kg_loaders.build import BuildResult


def _counts_table(title: str, counts: dict[str, int], label: str, *, totals: bool = True):
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column(label)
    table.add_column("count", justify="right")
    rows = (
        sorted(counts.items(), key=lambda item: (-item[1], item[0])) if totals else counts.items()
    )
    for name, count in rows:
        table.add_row(name, f"{count:,}")
    if totals and len(counts) > 1:
        table.add_row("[bold]total[/bold]", f"[bold]{sum(counts.values()):,}[/bold]")
    return table


def print_summary(result: BuildResult, console: Console) -> None:
    """The build summary: counts per kind, type and source, crosswalk report, unknown names."""
    console.print(
        f"[bold]{result.concepts:,}[/bold] concepts, [bold]{result.relations:,}[/bold] relations "
        f"in {result.seconds:.1f}s ({result.relations_per_second:,.0f} relations/s) -> "
        f"{result.db_path}"
    )
    if result.patients_carried:
        console.print(f"{result.patients_carried:,} stored patients carried into the new KG")
    console.print(_counts_table("Concepts by kind", result.concepts_by_kind, "kind"))
    console.print(_counts_table("Concepts by source", result.concepts_by_source, "source"))
    console.print(_counts_table("Relations by type", result.relations_by_type, "type"))
    console.print(_counts_table("Relations by source", result.relations_by_source, "source"))
    console.print(_counts_table("Crosswalk", result.crosswalk, "measure", totals=False))
    skipped = {
        str(s["source"]): int(s["skipped_lines"])  # type: ignore[call-overload]
        for s in result.source_stats
        if s["skipped_lines"]
    }
    if skipped:
        console.print(_counts_table("Malformed lines skipped (--lenient)", skipped, "source"))
    if result.unknown_relations:
        console.print(
            _counts_table(
                "Unknown source relations (loaded as ASSOCIATED_WITH)",
                result.unknown_relations,
                "source:relation",
            )
        )


def build_command(
    sources: Annotated[
        list[str] | None,
        typer.Option(
            "--sources",
            "-s",
            help="'default' or NAME=PATH (repeatable or comma-separated); "
            "names: see `kgdx kg sources`",
        ),
    ] = None,
    lenient: Annotated[
        bool, typer.Option(help="Skip and count malformed lines instead of failing")
    ] = False,
    store: Annotated[
        str | None,
        typer.Option(help="Load into this backend instead of a fresh embedded database"),
    ] = None,
    memory_mb: Annotated[
        int,
        typer.Option(
            min=0,
            help="Arrow tables a fresh build keeps in memory before it spools them to Parquet "
            "(lower it for a full UMLS release on a small machine)",
        ),
    ] = 512,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
) -> None:
    """Build the knowledge graph from ontology files (idempotent; a failed build changes nothing)."""
    from dataclasses import asdict

    from rich.console import Console

    from graph.settings import get_settings
    from kg_loaders.build import build_kg

    settings = get_settings()
    if store is not None and store != "embedded":
        from graph.stores import open_store

        with open_store(store, settings=settings) as opened:
            result = build_kg(
                sources=sources or ["default"],
                settings=settings,
                store=opened,
                lenient=lenient,
                memory_mb=memory_mb,
            )
    else:
        result = build_kg(
            sources=sources or ["default"], settings=settings, lenient=lenient, memory_mb=memory_mb
        )
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    print_summary(result, Console())


def stats_command(
    store: Annotated[str | None, typer.Option(help="Store backend (default: settings)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    db: DbOption = None,
) -> None:
    """Counts in the graph store (nodes per label and kind, relations per type).

    The store is opened read-only, so this works while `kgdx serve` has it open."""
    from rich.console import Console

    from api.commands.reading import open_reading_store
    from graph.settings import get_settings

    settings = get_settings()
    with open_reading_store(store, db) as opened:
        counts = opened.counts()
        kinds = opened.query("MATCH (c:Concept) RETURN c.kind, count(*)").rows
    payload = {
        "nodes": counts.nodes,
        "concepts_by_kind": {kind: int(n) for kind, n in kinds},
        "relations": {k: v for k, v in counts.relations.items() if v},
    }
    if as_json:
        typer.echo(json.dumps(payload, indent=2))
        return
    console = Console()
    console.print(_counts_table("Nodes", payload["nodes"], "label"))
    console.print(_counts_table("Concepts by kind", payload["concepts_by_kind"], "kind"))
    console.print(_counts_table("Relations", payload["relations"], "type"))
    from kg_loaders.build import SUMMARY_FILE, BuildResult

    summary = settings.home / SUMMARY_FILE
    if summary.is_file():
        last = BuildResult.load(summary)
        console.print(f"last build: {', '.join(last.sources)} ({last.seconds:.1f}s)")


def compact_command(
    db: Annotated[
        Path | None,
        typer.Option(
            "--db",
            help="Embedded database to compact (default: KGDX_DB_PATH, else <home>/kg.lbug)",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON")] = False,
) -> None:
    """Rewrite the embedded database without the space of deleted rows (the KG, patients and predictions stay as they are: checked before the swap).

    Diagnoses that keep changing leave dead rows that LadybugDB never gives back. Stop `kgdx serve` first: a database another process has open is refused, and a compaction that fails changes nothing."""
    from graph.settings import get_settings
    from kg_loaders.compact import compact_database

    settings = get_settings(**({"db_path": db} if db is not None else {}))
    result = compact_database(settings)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    typer.echo(
        f"compacted {result.db_path}: {result.bytes_before / 1e6:.1f} MB -> "
        f"{result.bytes_after / 1e6:.1f} MB ({result.saved_fraction:.1%} smaller) in "
        f"{result.seconds:.1f}s; {sum(result.nodes.values()):,} nodes and "
        f"{sum(result.relations.values()):,} relations, the same as before"
    )


def sources_command() -> None:
    """List the source readers and what `--sources default` loads."""
    from kg_loaders.sources import READERS, default_sources

    typer.echo("readers: " + ", ".join(sorted(READERS)))
    typer.echo("default:")
    for spec in default_sources():
        typer.echo(f"  {spec}")


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    """Add the ``kg`` commands."""
    groups["kg"].command("build")(build_command)
    groups["kg"].command("stats")(stats_command)
    groups["kg"].command("sources")(sources_command)
    groups["kg"].command("compact")(compact_command)
