"""``kgdx ingest image FILE... [--patient ID]``: store a patient's images and image findings.

Heavy libraries (torch, MONAI, pydicom) are imported inside the command. The output names only
kgdx ids: the original DICOM PatientID stays in the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def image_command(
    files: Annotated[list[Path], typer.Argument(help="DICOM, PNG or JPEG files, or a DICOMDIR")],
    patient: Annotated[
        str | None,
        typer.Option(help="kgdx patient id (default: the one the DICOM PatientID maps to)"),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="Model safetensors (default: shipped)")
    ] = None,
) -> None:
    """De-identify and predict image files, and merge them into one stored patient."""
    from rich.console import Console
    from rich.table import Table

    from api.engine import Engine
    from extractors.image.dicomdir import expand_image_paths
    from extractors.image.predict import ImageExtractor
    from graph.records import ImageEvidence

    paths = expand_image_paths(files)
    with Engine() as engine:
        stored = engine.ingest_images(paths, patient_id=patient, extractor=ImageExtractor(weights))
        names = {
            c.id: c.name
            for c in engine.store.get_concepts(f.concept_id for f in stored.findings).values()
        }
    table = Table(title=f"patient {stored.id}: {len(stored.images)} image(s)", title_justify="left")
    for column in ("image", "modality", "finding", "P", "assertion"):
        table.add_column(column)
    modality = {image.id: image.modality for image in stored.images}
    for finding in stored.findings:
        evidence = finding.provenance
        if not isinstance(evidence, ImageEvidence):
            continue
        assertion = finding.assertion
        table.add_row(
            evidence.image_id,
            modality.get(evidence.image_id, ""),
            names.get(finding.concept_id, finding.concept_id),
            f"{evidence.probability:.3f}",
            f"{assertion.polarity.value}/{assertion.certainty.value}",
        )
    Console(width=200).print(table)


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    groups["ingest"].command("image")(image_command)
