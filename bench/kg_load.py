"""KG load benchmark: default build size and throughput, bulk COPY vs UNWIND-MERGE, big RRF.

Prints one table. Measured in one run on this machine:

1. the full default build (HPO + annotations, DO, SYMP, chest seed) end to end through
   ``build_kg`` into a fresh embedded store, three times, each in a fresh process: concepts,
   relations, relations/s of the median run and of all three;
2. the same relations written again into a fresh store holding the same concepts, once through
   the bulk path a build takes (``GraphStore.copy_relations`` -> LadybugDB ``COPY FROM``
   Arrow, one per relation type) and once as batched ``UNWIND $rows ... MERGE`` statements
   (the Neo4j loader's statement from ``graph.stores.neo4j_cypher``) on the same store's
   connection, one transaction per batch;
3. a generated RRF release (``bench/gen_rrf.py``) loaded through ``build_kg`` in a child process,
   with its peak RSS (``--big``: 2M concepts / 10M relations; otherwise a smaller release).

    .venv/bin/python bench/kg_load.py            # default build, full comparison, 200k/1M RRF
    .venv/bin/python bench/kg_load.py --quick    # CI size: 20k-relation comparison, 20k/100k RRF
    .venv/bin/python bench/kg_load.py --big      # adds the 2M/10M RRF release (minutes)
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graph.settings import Settings  # noqa: E402

MERGE_BATCH = 5_000


def child_build(sources: str, home: Path, db: Path) -> dict[str, float]:
    """``build_kg`` in a fresh interpreter (as ``kgdx kg build`` runs): counts, the build's own
    seconds (``BuildResult.seconds``: readers opened to store swapped in) and peak RSS."""
    code = (
        "import json, resource, sys\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from graph.settings import Settings\n"
        "from kg_loaders.build import build_kg\n"
        f"s = Settings(home={str(home)!r}, db_path={str(db)!r})\n"
        f"r = build_kg(sources={sources!r}.split(), settings=s)\n"
        "rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2\n"
        "print(json.dumps({'concepts': r.concepts, 'relations': r.relations, "
        "'seconds': r.seconds, 'peak_rss_gb': rss}))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    result = json.loads(output.strip().splitlines()[-1])
    result["relations_per_s"] = result["relations"] / result["seconds"]
    return result


def default_build(work: Path, runs: int = 3) -> dict[str, float]:
    """The default build ``runs`` times, each in a fresh process into a fresh folder; the
    median run is reported (the machine's noise moves single runs by about 5%)."""
    results = [
        child_build("default", work / f"home{i}", work / f"default{i}" / "kg.lbug")
        for i in range(runs)
    ]
    results.sort(key=lambda r: r["seconds"])
    median = dict(results[len(results) // 2])
    median["all_per_s"] = [r["relations_per_s"] for r in results]
    return median


def crosswalked_tables(limit: int | None):
    """The default build's concept table and relation tables per type (the first ``limit``
    relations), exactly as ``build_kg`` makes them."""
    import pyarrow as pa

    from graph.kg_tables import concept_table
    from kg_loaders.crosswalk import Crosswalk
    from kg_loaders.sources import parse_sources

    readers = [spec.open() for spec in parse_sources(["default"])]
    crosswalk = Crosswalk()
    crosswalk.index(r.concepts() for r in readers)
    concepts = concept_table(list(crosswalk.concepts(r.concepts() for r in readers)))
    tables: dict[str, list] = {}
    total = 0
    batches = ((t, s) for r in readers for t, s in r.relation_batches())
    for rel_type, table in crosswalk.relation_tables(batches):
        if limit is not None:
            table = table.slice(0, max(0, limit - total))
        tables.setdefault(rel_type, []).append(table)
        total += table.num_rows
    return concepts, {t: pa.concat_tables(parts) for t, parts in tables.items()}


def fresh_store(path: Path, concepts):
    from graph.stores import open_store

    store = open_store("embedded", settings=Settings(home=path.parent, db_path=path))
    store.copy_concepts(concepts)
    return store


def bulk_vs_merge(work: Path, limit: int | None) -> dict[str, float]:
    """The same relations through ``GraphStore.copy_relations`` (one COPY per type, what a build
    does) and as batched ``UNWIND $rows ... MERGE`` statements, each into a fresh store."""
    from graph.stores.neo4j_cypher import upsert_relations

    concepts, tables = crosswalked_tables(limit)
    count = sum(t.num_rows for t in tables.values())
    store = fresh_store(work / "bulk" / "kg.lbug", concepts)
    started = time.perf_counter()
    for rel_type, table in tables.items():
        store.copy_relations(rel_type, table)
    bulk_s = time.perf_counter() - started
    bulk_count = store.counts().total_relations
    store.close()

    store = fresh_store(work / "merge" / "kg.lbug", concepts)
    connection = store.connection
    by_type = {
        rel_type: [
            {
                "src": row["from"],
                "dst": row["to"],
                "sources": row["sources"],
                "weight": row["weight"],
                "negated": row["negated"],
                "attributes": row["attributes"],
            }
            for row in table.select(
                ["from", "to", "sources", "weight", "negated", "attributes"]
            ).to_pylist()
        ]
        for rel_type, table in tables.items()
    }
    started = time.perf_counter()
    for rel_type, rows in by_type.items():
        statement = upsert_relations(rel_type)
        for start in range(0, len(rows), MERGE_BATCH):
            connection.execute("BEGIN TRANSACTION")
            connection.execute(statement, {"rows": rows[start : start + MERGE_BATCH]})
            connection.execute("COMMIT")
    merge_s = time.perf_counter() - started
    merge_count = store.counts().total_relations
    store.close()
    if merge_count != bulk_count:
        raise SystemExit(f"paths disagree: bulk {bulk_count} vs merge {merge_count} relations")
    return {
        "relations": count,
        "bulk_s": bulk_s,
        "merge_s": merge_s,
        "bulk_per_s": count / bulk_s,
        "merge_per_s": count / merge_s,
        "speedup": merge_s / bulk_s,
    }


def rrf_load(work: Path, concepts: int, relations: int) -> dict[str, float]:
    from bench.gen_rrf import generate

    release = work / f"rrf_{concepts}_{relations}"
    started = time.perf_counter()
    generate(release, concepts, relations)
    generate_s = time.perf_counter() - started
    result = child_build(f"umls={release}", work / "rrf_home", work / "rrf_db" / "kg.lbug")
    result["generate_s"] = generate_s
    shutil.rmtree(release, ignore_errors=True)
    shutil.rmtree(work / "rrf_db", ignore_errors=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description="kgdx KG load benchmark")
    parser.add_argument("--quick", action="store_true", help="CI-size comparison and RRF")
    parser.add_argument("--big", action="store_true", help="also load a 2M/10M RRF release")
    parser.add_argument("--work", type=Path, default=None, help="scratch folder (default: tmp)")
    args = parser.parse_args()
    from rich.console import Console
    from rich.table import Table

    with tempfile.TemporaryDirectory(prefix="kgdx-bench-", dir=args.work) as scratch:
        work = Path(scratch)
        rows: list[tuple[str, str, str, str]] = []
        if not args.quick:
            build = default_build(work)
            rows += [
                ("default build: concepts", f"{build['concepts']:,}", ">= 30,000",
                 _ok(build["concepts"] >= 30_000)),
                ("default build: relations", f"{build['relations']:,}", ">= 300,000",
                 _ok(build["relations"] >= 300_000)),
                ("default build: end-to-end relations/s (median of 3)",
                 f"{build['relations_per_s']:,.0f}", ">= 100,000",
                 _ok(build["relations_per_s"] >= 100_000)),
                ("default build: the 3 runs, relations/s",
                 " / ".join(f"{v:,.0f}" for v in build["all_per_s"]), "", ""),
                ("default build: seconds (median run)", f"{build['seconds']:.2f}", "", ""),
            ]  # fmt: skip
        compare = bulk_vs_merge(work, 20_000 if args.quick else None)
        rows += [
            (f"bulk COPY: {compare['relations']:,} relations/s", f"{compare['bulk_per_s']:,.0f}",
             "", ""),
            (f"UNWIND-MERGE (batches of {MERGE_BATCH:,}): relations/s",
             f"{compare['merge_per_s']:,.0f}", "", ""),
            ("bulk speed-up over UNWIND-MERGE", f"{compare['speedup']:.1f}x", ">= 5x",
             _ok(compare["speedup"] >= 5)),
        ]  # fmt: skip
        sizes = [(20_000, 100_000)] if args.quick else [(200_000, 1_000_000)]
        if args.big:
            sizes.append((2_000_000, 10_000_000))
        for concepts, relations in sizes:
            rrf = rrf_load(work, concepts, relations)
            label = f"RRF {concepts:,} / {relations:,}"
            rows += [
                (f"{label}: loaded concepts / relations",
                 f"{rrf['concepts']:,} / {rrf['relations']:,}", "", ""),
                (f"{label}: load seconds (relations/s)",
                 f"{rrf['seconds']:.0f} ({rrf['relations_per_s']:,.0f})", "", ""),
                (f"{label}: peak RSS GB", f"{rrf['peak_rss_gb']:.2f}", "< 4",
                 _ok(rrf["peak_rss_gb"] < 4)),
            ]  # fmt: skip
    table = Table(title="kgdx KG load benchmark")
    for column in ("measure", "value", "target", "met"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"(bench process peak RSS {rss:.2f} GB)")


def _ok(flag: bool) -> str:
    return "yes" if flag else "NO"


if __name__ == "__main__":
    main()
