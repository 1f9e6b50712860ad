"""``kgdx ingest image FILE... [--patient ID]``: store a patient's images and image findings.

Heavy libraries (torch, MONAI, pydicom) are imported inside the command. The output names only
kgdx ids: the original DICOM PatientID stays in the store.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from api.commands.image import FORCE_HELP, print_scope_notes, scope_label, scope_policy


def image_command(
    files: Annotated[list[Path], typer.Argument(help="DICOM, PNG or JPEG files, or a DICOMDIR")],
    patient: Annotated[
        str | None,
        typer.Option(help="kgdx patient id (default: the one the DICOM PatientID maps to)"),
    ] = None,
    weights: Annotated[
        Path | None, typer.Option(help="Model safetensors (default: shipped)")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help=FORCE_HELP)] = False,
) -> None:
    """De-identify and predict image files, and merge them into one stored patient.

    Images outside the model's scope are refused (nothing is stored) unless --force; see
    docs/image-scope.md.
    """
    from api.commands.table import console, human_number, print_rows
    from api.engine import Engine
    from extractors.image.dicomdir import expand_image_paths
    from extractors.image.predict import ImageExtractor
    from graph.records import ImageEvidence

    paths = expand_image_paths(files)
    extractor = ImageExtractor(weights, policy=scope_policy(force))
    with Engine() as engine:
        stored = engine.ingest_images(paths, patient_id=patient, extractor=extractor)
        names = {
            c.id: c.name
            for c in engine.store.get_concepts(f.concept_id for f in stored.findings).values()
        }
    modality = {image.id: image.modality for image in stored.images}
    notes: dict[str, tuple[str, str, str]] = {}
    rows = []
    for finding in stored.findings:
        evidence = finding.provenance
        if not isinstance(evidence, ImageEvidence):
            continue
        assertion = finding.assertion
        rows.append(
            [
                evidence.image_id,
                modality.get(evidence.image_id, "") or "-",
                scope_label(evidence.scope),
                names.get(finding.concept_id, finding.concept_id),
                human_number(evidence.probability),
                f"{assertion.polarity.value}/{assertion.certainty.value}",
            ]
        )
        if evidence.scope:
            notes[evidence.image_id] = (evidence.image_id, evidence.scope, evidence.scope_reason)
    out = console()
    print_rows(
        out,
        ("image", "modality", "scope", "finding", "P", "assertion"),
        rows,
        title=f"patient {stored.id}: {len(stored.images)} image(s)",
        right=("P",),
    )
    print_scope_notes(out, list(notes.values()))


def register(app: typer.Typer, groups: dict[str, typer.Typer]) -> None:
    groups["ingest"].command("image")(image_command)
