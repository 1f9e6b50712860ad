"""Real DICOM files from ../shared/data for the image tests (skip when absent)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def chest_cr(shared_data: Path) -> Path:
    """A real CR chest radiograph (1955x1841, MONOCHROME1, uncompressed)."""
    return shared_data / "dicom" / "RG1_UNCR_chest_cr.dcm"


@pytest.fixture(scope="session")
def highdicom_dir(shared_data: Path) -> Path:
    """highdicom's test files: a DX image, an SR document and a SEG."""
    return shared_data / "dicom" / "highdicom"


@pytest.fixture(scope="session")
def shipped_extractor():
    """The shipped model (data/models/pneumonia_cnn.safetensors) with a fresh de-identifier."""
    from extractors.image.predict import DEFAULT_WEIGHTS, ImageExtractor

    if not DEFAULT_WEIGHTS.is_file():
        pytest.fail(f"{DEFAULT_WEIGHTS} is missing: run `kgdx image train` (see its model card)")
    return ImageExtractor()
