"""DICOMDIR (PS3.10 media directory) reading, refusing references that leave its folder.

A DICOMDIR names its files by ``ReferencedFileID`` components relative to its own folder. A
crafted one can name ``..`` components, absolute paths or symlinks out of the folder; reading
those would let a directory file pull arbitrary local files into the pipeline, so every
reference is resolved and must stay inside the folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from extractors.image.dicom import read_dataset
from graph.errors import InputError


def read_dicomdir(path: Path | str, record_types: tuple[str, ...] = ("IMAGE",)) -> list[Path]:
    """Return the files a DICOMDIR references (records of ``record_types``), in order.

    Raises:
        InputError: not a DICOMDIR, a reference outside the DICOMDIR's folder, or a referenced
            file that does not exist.
    """
    path = Path(path)
    dataset = read_dataset(path)
    if "DirectoryRecordSequence" not in dataset:
        raise InputError(f"{path}: not a DICOMDIR (no Directory Record Sequence)")
    root = path.parent.resolve()
    files: list[Path] = []
    for number, record in enumerate(dataset.DirectoryRecordSequence, start=1):
        if "ReferencedFileID" not in record:
            continue
        if record_types and str(record.get("DirectoryRecordType", "")) not in record_types:
            continue
        value = record.ReferencedFileID
        components = [value] if isinstance(value, str) else [str(part) for part in value]
        relative = PurePosixPath(*[part.replace("\\", "/") for part in components])
        target = (root / relative).resolve()
        if relative.is_absolute() or ".." in relative.parts or not target.is_relative_to(root):
            raise InputError(
                f"{path}: record {number} references {'/'.join(components)!r}, which is outside "
                f"the DICOMDIR's folder {root}; refusing to read it (the DICOMDIR is corrupt or "
                "crafted)"
            )
        if not target.is_file():
            raise InputError(f"{path}: record {number} references missing file {relative}")
        files.append(target)
    return files


def expand_image_paths(files: Iterable[Path]) -> list[Path]:
    """The image files named on a command line, a ``DICOMDIR`` replaced by the files it lists.

    Raises:
        InputError: no files at all, or a DICOMDIR entry points outside its folder.
    """
    paths: list[Path] = []
    for file in files:
        paths.extend(read_dicomdir(file) if Path(file).name.upper() == "DICOMDIR" else [Path(file)])
    if not paths:
        raise InputError("no image files given")
    return paths
