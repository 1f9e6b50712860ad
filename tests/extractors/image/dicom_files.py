"""Locating real DICOM test files: pydicom's bundled set and the pydicom-data wheel."""

from __future__ import annotations

from pathlib import Path

import pytest


def dicom_file(name: str) -> Path:
    """A file from pydicom's test data (bundled, or the pydicom-data wheel); skip if absent."""
    from pydicom.data import get_testdata_file

    try:
        found = get_testdata_file(name)
    except Exception:  # pydicom-data may try to download a file it does not hold
        found = None
    if found is None:
        pytest.skip(f"pydicom test file {name} is not installed (pip install pydicom-data)")
    return Path(found)
