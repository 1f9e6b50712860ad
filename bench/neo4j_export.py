"""Benchmark: ``kgdx export neo4j-import`` against LadybugDB's own ``COPY ... TO`` CSV writer.

Both write the same rows (every node label and every relation type and endpoint pair) from the
same embedded store in the same run; the native writer is the upper bound for getting a graph
out of LadybugDB as CSV. The KG is HPO from ``../shared/data`` when present (19k terms, 23k
IS_A), else a seeded synthetic one of the same size; patients are the demo cohort, repeated
under fresh ids to reach the wanted count.

    .venv/bin/python bench/neo4j_export.py [--quick]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from data.cohort import load_cohort  # noqa: E402
from graph.neo4j_export import write_neo4j_import  # noqa: E402
from graph.records import Concept, Relation  # noqa: E402
from graph.schema import NODE_PROPERTIES  # noqa: E402
from graph.settings import Settings  # noqa: E402
from graph.stores import open_store  # noqa: E402
from graph.stores.neo4j_export_cypher import relation_files  # noqa: E402
from kg_loaders.seed import read_seed_concepts, read_seed_relations  # noqa: E402

HPO = ROOT.parent / "shared" / "data" / "kg" / "hpo" / "hp.obo"


def knowledge_graph(size: int) -> tuple[str, list[Concept], list[Relation]]:
    concepts, relations = read_seed_concepts(), read_seed_relations()
    if HPO.is_file():
        from kg_loaders.obo import OboReader

        reader = OboReader(HPO, name="HPO")
        concepts += list(reader.concepts())[:size]
        kept = {c.id for c in concepts}
        relations += [r for r in reader.relations() if r.src in kept and r.dst in kept]
        return "HPO (shared data) + seed", concepts, relations
    rng = random.Random(0)
    extra = [
        Concept(id=f"KGDX:{i:07d}", name=f"term {i}", synonyms=(f"t{i}",)) for i in range(size)
    ]
    relations += [
        Relation(src=c.id, dst=extra[rng.randrange(max(1, i))].id, type="IS_A")
        for i, c in enumerate(extra[1:], 1)
    ]
    return "synthetic + seed", concepts + extra, relations


def load(store, size: int, patients: int) -> str:
    name, concepts, relations = knowledge_graph(size)
    store.upsert_concepts(concepts)
    store.upsert_relations(relations)
    cases = load_cohort()
    for copy in range(-(-patients // len(cases))):
        for case in cases[: patients - copy * len(cases)]:
            patient = case.patient.model_copy(
                update={"id": f"{case.patient.id}-{copy}", "findings": case.gold_findings}
            )
            store.upsert_patient(patient)
    return name


def native_copy(store, folder: Path) -> int:
    """The same files through LadybugDB's ``COPY (query) TO`` (no typed headers)."""
    files = 0
    for label, props in NODE_PROPERTIES.items():
        fields = ", ".join(f"n.`{p}`" for p, _ in props)
        store.connection.execute(
            f"COPY (MATCH (n:{label}) RETURN {fields}) TO '{folder / f'n_{label}.csv'}'"
        )
        files += 1
    for rel_type, src, dst, props in relation_files():
        fields = "".join(f", r.`{p}`" for p, _ in props)
        target = folder / f"r_{rel_type}_{src}_{dst}.csv"
        store.connection.execute(
            f"COPY (MATCH (a:{src})-[r:{rel_type}]->(b:{dst}) RETURN a.id, b.id{fields}) "
            f"TO '{target}'"
        )
        files += 1
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="CI size: 5k concepts, 160 patients")
    args = parser.parse_args()
    size, patients = (5_000, 160) if args.quick else (25_000, 2_000)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = Settings(home=folder, db_path=folder / "bench.lbug")
        with open_store("embedded", settings=settings) as store:
            started = time.perf_counter()
            source = load(store, size, patients)
            load_s = time.perf_counter() - started
            counts = store.counts()
            rows = counts.total_nodes + counts.total_relations
            # Open the read-only handle (a checkpoint after the load) outside the timings.
            store.query("MATCH (n:Concept) RETURN count(n)")
            started = time.perf_counter()
            manifest = write_neo4j_import(store, folder / "ours")
            ours_s = time.perf_counter() - started
            assert manifest.counts() == counts
            (folder / "native").mkdir()
            started = time.perf_counter()
            native_copy(store, folder / "native")
            native_s = time.perf_counter() - started
    print(
        f"graph: {source}; {counts.total_nodes:,} nodes, {counts.total_relations:,} relations "
        f"({counts.nodes['Patient']} patients; loaded in {load_s:.1f} s)"
    )
    print(f"{'writer':<40}{'seconds':>10}{'rows/s':>12}{'vs native':>12}")
    for name, seconds in (
        ("kgdx export neo4j-import (typed, paged)", ours_s),
        ("LadybugDB COPY TO (peer)", native_s),
    ):
        print(f"{name:<40}{seconds:>10.2f}{rows / seconds:>12,.0f}{native_s / seconds:>12.2f}")


if __name__ == "__main__":
    main()
