"""Move a store into Neo4j: ``neo4j-admin database import`` CSV files, or an online copy.

The CSV route is the fast one for a UMLS-scale KG: ``neo4j-admin`` builds the store files offline,
with no transactions at all. :func:`write_neo4j_import` streams every node and relation out of
any :class:`~graph.store.GraphStore` (page by page, never the whole graph in memory) into one file
per label and one per relation type and endpoint pair, with typed headers, and writes the
``neo4j-admin`` command line next to them. :func:`copy_to_neo4j` copies through the driver in
batches instead, for a running server.
"""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from graph.errors import InputError, StoreError
from graph.log import logger, track
from graph.records import Diagnosis, ExplanationPath, SectionSelection
from graph.schema import KG_RELATIONS, NODE_PROPERTIES
from graph.store import GraphStore, StoreCounts
from graph.stores import neo4j_export_cypher as export_cypher
from graph.stores import neo4j_import_files as files

EXPORT_ROW_LIMIT = 10_000_000


@dataclass(frozen=True)
class ImportFile:
    """One CSV file of an import: nodes of a label or relations of a type and endpoint pair."""

    path: Path
    kind: str  # "nodes" or "relationships"
    name: str  # label or relation type
    rows: int


@dataclass
class ImportManifest:
    """The files written for ``neo4j-admin database import`` and how to run it."""

    directory: Path
    array_delimiter: str
    files: list[ImportFile] = field(default_factory=list)

    def counts(self) -> StoreCounts:
        """Rows per label and per relation type, comparable with ``store.counts()``."""
        nodes: dict[str, int] = {}
        relations: dict[str, int] = {}
        for item in self.files:
            target = nodes if item.kind == "nodes" else relations
            target[item.name] = target.get(item.name, 0) + item.rows
        return StoreCounts(nodes=nodes, relations=relations)

    def command(self, database: str = "neo4j") -> str:
        """The ``neo4j-admin`` command that loads these files (run with Neo4j stopped)."""
        parts = [
            "neo4j-admin", "database", "import", "full", database,
            "--overwrite-destination=true",
            f"--array-delimiter={self.array_delimiter}",
            "--multiline-fields=true",
        ]  # fmt: skip
        for item in self.files:
            flag = "--nodes" if item.kind == "nodes" else "--relationships"
            parts.append(f"{flag}={item.name}={item.path.name}")
        return " ".join(shlex.quote(part) for part in parts)


def _rows(store: GraphStore, cypher: str, **params: Any) -> list[dict[str, Any]]:
    result = store.query(cypher, params, row_limit=EXPORT_ROW_LIMIT, timeout_s=3600)
    if result.truncated:
        raise StoreError("an export page exceeded the row limit; lower the page size")
    return result.records()


def write_neo4j_import(
    store: GraphStore, directory: str | Path, *, array_delimiter: str = "|", page_size: int = 5_000
) -> ImportManifest:
    """Write the whole store as ``neo4j-admin database import`` CSV files into ``directory``.

    Files appear only when all of them were written (a failure leaves ``directory`` as it was).

    Returns:
        The manifest: files, row counts per label/type, and the import command.

    Raises:
        InputError: ``directory`` already holds an import, or a list value contains the array
            delimiter.
    """
    if len(array_delimiter) != 1 or array_delimiter in ',"\n':
        raise InputError('the array delimiter must be one character other than , " or newline')
    target = Path(directory)
    if target.exists() and any(target.glob("*.csv")):
        raise InputError(f"{target} already holds CSV files; choose an empty folder")
    target.mkdir(parents=True, exist_ok=True)
    manifest = ImportManifest(directory=target, array_delimiter=array_delimiter)
    with tempfile.TemporaryDirectory(dir=target, prefix=".partial-") as partial:
        staging = Path(partial)
        for label, props in NODE_PROPERTIES.items():
            names = [f"id:ID({label})"] + [files.header(n, k) for n, k in props[1:]] + [":LABEL"]
            pages = track(files.node_pages(store, label, page_size), f"export {label} pages")
            path = staging / f"nodes_{label}.csv"
            count = files.write_csv(path, pages, props, names, label, array_delimiter, label)
            manifest.files.append(ImportFile(path, "nodes", label, count))
        for rel_type, src, dst, props in export_cypher.relation_files():
            names = [f":START_ID({src})", f":END_ID({dst})"]
            names += [files.header(n, k) for n, k in props] + [":TYPE"]
            columns = (("src", "STRING"), ("dst", "STRING"), *props)
            pages = files.relation_pages(store, rel_type, src, dst, props, page_size)
            pages = track(pages, f"export {rel_type} {src}->{dst} pages")
            path = staging / f"relationships_{rel_type}_{src}_{dst}.csv"
            count = files.write_csv(
                path, pages, columns, names, rel_type, array_delimiter, rel_type
            )
            manifest.files.append(ImportFile(path, "relationships", rel_type, count))
        moved = []
        for item in manifest.files:
            final = target / item.path.name
            shutil.move(item.path, final)
            moved.append(ImportFile(final, item.kind, item.name, item.rows))
        manifest.files = moved
    script = target / "neo4j-admin-import.sh"
    script.write_text(
        "#!/bin/sh\n# Load with the Neo4j server stopped; run from this folder.\n"
        f'set -e\ncd "$(dirname "$0")"\n{manifest.command()}\n',
        encoding="utf-8",
    )
    logger.info("wrote %d import files to %s", len(manifest.files), target)
    return manifest


def stored_predictions(store: GraphStore, patient_id: str) -> list[Diagnosis]:
    """A patient's stored predictions as :class:`Diagnosis` records, by model then rank."""
    diagnoses = []
    for row in _rows(store, export_cypher.PATIENT_PREDICTIONS, pid=patient_id):
        paths = tuple(ExplanationPath.model_validate(p) for p in json.loads(row["paths"] or "[]"))
        diagnoses.append(
            Diagnosis(
                concept_id=row["concept_id"],
                name=row["name"],
                probability=row["probability"],
                paths=paths,
                model_id=row["model_id"] or "",
                input_sections=(
                    SectionSelection.model_validate_json(row["input_sections"])
                    if row.get("input_sections")
                    else None
                ),
                kg_release=row.get("kg_release") or "",
            )
        )
    return diagnoses


def copy_to_neo4j(
    source: GraphStore, target: GraphStore, *, batch_size: int = 10_000
) -> StoreCounts:
    """Copy concepts, KG relations, patients and predictions from ``source`` into ``target``.

    Writes go through ``target``'s bulk methods (for Neo4j: ``UNWIND`` batches in managed
    transactions); it is idempotent, so an interrupted copy can simply be run again.

    Returns:
        ``target.counts()`` after the copy.
    """
    counts = source.counts()
    concepts = track(source.iter_concepts(), "copy concepts", counts.nodes.get("Concept"))
    target.upsert_concepts(concepts, batch_size=batch_size)
    kg_total = sum(n for name, n in counts.relations.items() if name in KG_RELATIONS)
    relations = track(source.iter_relations(), "copy KG relations", kg_total)
    target.upsert_relations(relations, batch_size=batch_size)
    for patient_id in track(source.patient_ids(), "copy patients", counts.nodes.get("Patient")):
        target.upsert_patient(source.get_patient(patient_id))
        by_model: dict[str, list[Diagnosis]] = {}
        for diagnosis in stored_predictions(source, patient_id):
            by_model.setdefault(diagnosis.model_id, []).append(diagnosis)
        for diagnoses in by_model.values():
            target.save_predictions(patient_id, diagnoses)
    return target.counts()
