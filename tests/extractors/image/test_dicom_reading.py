"""Reading real DICOMs: modalities, compressed syntaxes, LUTs, MONOCHROME1, multi-frame."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from extractors.image.readers import load_image
from tests.extractors.image.dicom_files import dicom_file


@pytest.mark.shared_data
def test_real_cr_chest_is_monochrome1_windowed_and_inverted(chest_cr):
    image = load_image(chest_cr)
    dataset = pydicom.dcmread(chest_cr)
    assert dataset.PhotometricInterpretation == "MONOCHROME1"
    assert image.modality == "CR" and image.pixels.shape == (1, 1955, 1841)
    raw = dataset.pixel_array.astype(np.float64)
    center, width = float(dataset.WindowCenter), float(dataset.WindowWidth)
    windowed = np.clip((raw - (center - 0.5)) / (width - 1) + 0.5, 0, 1)
    np.testing.assert_allclose(image.pixels[0], 1.0 - windowed, atol=1e-5)
    # Inverted: the lung fields (low raw values in MONOCHROME1) are darker than the mediastinum.
    assert image.pixels.dtype == np.float32 and 0.0 <= image.pixels.min() < image.pixels.max() <= 1


@pytest.mark.shared_data
def test_real_dx_from_highdicom(highdicom_dir):
    image = load_image(highdicom_dir / "dx_image.dcm")
    assert image.modality == "DX" and image.pixels.shape == (1, 169, 211)
    assert image.pixels.std() > 0.05


@pytest.mark.parametrize(
    ("name", "modality", "shape"),
    [
        ("CT_small.dcm", "CT", (1, 128, 128)),
        ("MR_small.dcm", "MR", (1, 64, 64)),
        ("US1_UNCR.dcm", "US", (1, 480, 640)),
        ("emri_small.dcm", "MR", (10, 64, 64)),
        ("SC_rgb_rle_2frame.dcm", "OT", (2, 100, 100)),
        ("JPEG2000.dcm", "NM", (1, 1024, 256)),
        ("image_dfl.dcm", "OT", (1, 512, 512)),
        ("ExplVR_BigEnd.dcm", "US", (1, 60, 80)),
        ("examples_palette.dcm", "US", (1, 350, 800)),
    ],
)
def test_modalities_and_layouts(name, modality, shape):
    image = load_image(dicom_file(name))
    assert image.modality == modality
    assert image.pixels.shape == shape
    assert image.pixels.dtype == np.float32
    assert 0.0 <= image.pixels.min() and image.pixels.max() <= 1.0 and image.pixels.std() > 0.01


@pytest.mark.parametrize(
    ("plain", "compressed"),
    [
        ("MR_small.dcm", "MR_small_RLE.dcm"),
        ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),
        ("MR_small.dcm", "MR_small_jp2klossless.dcm"),
        ("US1_UNCR.dcm", "US1_J2KR.dcm"),
        ("emri_small.dcm", "emri_small_jpeg_2k_lossless.dcm"),
        ("SC_rgb.dcm", "SC_rgb_rle.dcm"),
        ("RG1_UNCR.dcm", "RG1_J2KR.dcm"),
    ],
)
def test_lossless_compressed_variants_decode_to_the_same_pixels(plain, compressed):
    reference = load_image(dicom_file(plain)).pixels
    decoded = load_image(dicom_file(compressed)).pixels
    np.testing.assert_allclose(decoded, reference, atol=1e-6)


@pytest.mark.parametrize(
    "name", ["SC_rgb_jpeg_dcmtk.dcm", "MR2_J2KI.dcm", "color3d_jpeg_baseline.dcm"]
)
def test_lossy_compressed_variants_decode(name):
    image = load_image(dicom_file(name))
    assert image.pixels.std() > 0.01


def test_modality_lut_rescale_is_applied_before_the_window(tmp_path):
    dataset = pydicom.dcmread(dicom_file("CT_small.dcm"))
    dataset.RescaleSlope, dataset.RescaleIntercept = 1, -1024
    dataset.WindowCenter, dataset.WindowWidth = 40, 400  # soft-tissue window in HU
    path = tmp_path / "ct_window.dcm"
    dataset.save_as(path)
    hounsfield = dataset.pixel_array.astype(np.float64) - 1024
    expected = np.clip((hounsfield - 39.5) / 399 + 0.5, 0, 1)
    np.testing.assert_allclose(load_image(path).pixels[0], expected, atol=1e-5)


def test_modality_lut_sequence(tmp_path):
    from pydicom.pixels import apply_modality_lut

    dataset = pydicom.dcmread(dicom_file("mlut_18.dcm"))
    values = apply_modality_lut(dataset.pixel_array, dataset).astype(np.float64)
    expected = (values - values.min()) / (values.max() - values.min())
    np.testing.assert_allclose(load_image(dicom_file("mlut_18.dcm")).pixels[0], expected, atol=1e-5)


def test_voi_lut_sequence():
    dataset = pydicom.dcmread(dicom_file("vlut_04.dcm"))
    out_bits = int(dataset.VOILUTSequence[0].LUTDescriptor[2])
    from pydicom.pixels import apply_voi

    expected = apply_voi(dataset.pixel_array, dataset, 0) / (2**out_bits - 1)
    np.testing.assert_allclose(load_image(dicom_file("vlut_04.dcm")).pixels[0], expected, atol=1e-5)


def test_sigmoid_window(tmp_path):
    dataset = pydicom.dcmread(dicom_file("CT_small.dcm"))
    dataset.WindowCenter, dataset.WindowWidth, dataset.VOILUTFunction = 40, 400, "SIGMOID"
    path = tmp_path / "sigmoid.dcm"
    dataset.save_as(path)
    hounsfield = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    expected = 1 / (1 + np.exp(-4 * (hounsfield - 40) / 400))
    np.testing.assert_allclose(load_image(path).pixels[0], expected, atol=1e-5)


def test_monochrome1_is_inverted(tmp_path):
    dataset = pydicom.dcmread(dicom_file("MR_small.dcm"))
    monochrome2 = load_image(dicom_file("MR_small.dcm")).pixels
    dataset.PhotometricInterpretation = "MONOCHROME1"
    path = tmp_path / "mono1.dcm"
    dataset.save_as(path)
    np.testing.assert_allclose(load_image(path).pixels, 1.0 - monochrome2, atol=1e-6)


def test_png_and_jpeg_inputs(tmp_path):
    from PIL import Image

    gradient = np.tile(np.arange(256, dtype=np.uint8), (64, 1))
    Image.fromarray(gradient).save(tmp_path / "g.png")
    Image.fromarray(np.stack([gradient] * 3, axis=-1)).save(tmp_path / "g.jpg", quality=95)
    Image.fromarray(gradient.astype(np.uint16) * 257).save(tmp_path / "g16.png")
    png, jpeg, png16 = (load_image(tmp_path / n) for n in ("g.png", "g.jpg", "g16.png"))
    np.testing.assert_allclose(png.pixels[0], gradient / 255.0, atol=1e-6)
    np.testing.assert_allclose(png16.pixels[0], gradient / 255.0, atol=1e-6)
    assert np.abs(jpeg.pixels[0] - gradient / 255.0).max() < 0.05
    assert png.image_id.startswith("sha256:") and png.header is None


@pytest.mark.shared_data
def test_real_covid_cxr_pngs_of_several_sizes(shared_data):
    folder = shared_data / "cohorts" / "covid_cxr" / "images"
    shapes = {load_image(path).pixels.shape for path in sorted(folder.glob("*.png"))[:20]}
    assert len(shapes) > 3 and all(shape[0] == 1 for shape in shapes)


def test_enhanced_ct_uses_functional_group_rescale_and_window():
    path = dicom_file("eCT_Supplemental.dcm")
    dataset = pydicom.dcmread(path)
    assert "RescaleIntercept" not in dataset and "WindowCenter" not in dataset
    shared = dataset.SharedFunctionalGroupsSequence[0]
    intercept = float(shared.PixelValueTransformationSequence[0].RescaleIntercept)
    window = shared.FrameVOILUTSequence[0]
    center, width = float(window.WindowCenter), float(window.WindowWidth)
    hounsfield = dataset.pixel_array.astype(np.float64) + intercept
    expected = np.clip((hounsfield - (center - 0.5)) / (width - 1) + 0.5, 0, 1)
    image = load_image(path)
    assert image.pixels.shape == (2, 512, 512)
    np.testing.assert_allclose(image.pixels, expected, atol=1e-5)
