"""Bad input gives InputError with a message that says what is wrong, before anything is kept."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pydicom
import pytest
from pydicom.encaps import encapsulate

from extractors.image.dicomdir import read_dicomdir
from extractors.image.readers import load_image
from graph.errors import InputError
from tests.extractors.image.dicom_files import dicom_file


def _ct(tmp_path, name="ct.dcm", **changes):
    dataset = pydicom.dcmread(dicom_file("CT_small.dcm"))
    for keyword, value in changes.items():
        setattr(dataset, keyword, value)
    path = tmp_path / name
    dataset.save_as(path)
    return path, dataset


def test_truncated_dicom_fails_our_pixel_length_check(tmp_path):
    path, _ = _ct(tmp_path)
    data = path.read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[:-1000])  # the pixel data is the last element
    with pytest.raises(InputError, match=r"needs 32,768.*truncated or corrupt"):
        load_image(tmp_path / "cut.dcm")


def test_random_bytes_with_dcm_extension(tmp_path):
    path = tmp_path / "random.dcm"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(InputError, match="not a DICOM file"):
        load_image(path)


def test_missing_pixel_data(tmp_path):
    dataset = pydicom.dcmread(dicom_file("CT_small.dcm"))
    del dataset.PixelData
    dataset.save_as(tmp_path / "nopix.dcm")
    with pytest.raises(InputError, match="no Pixel Data"):
        load_image(tmp_path / "nopix.dcm")


def test_zero_dimensions(tmp_path):
    path, _ = _ct(tmp_path, Rows=0, Columns=0)
    with pytest.raises(InputError, match="0x0.*empty"):
        load_image(path)


def test_huge_dimensions_are_rejected_before_decoding(tmp_path):
    path, _ = _ct(tmp_path, Rows=65535, Columns=65535, NumberOfFrames=100)
    with pytest.raises(InputError, match="decompression-bomb"):
        load_image(path)


def test_pixel_budget_is_configurable(tmp_path):
    path, _ = _ct(tmp_path)
    assert load_image(path).pixels.shape == (1, 128, 128)
    with pytest.raises(InputError, match="limit of 10,000 pixels"):
        load_image(path, max_pixels=10_000)


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 16)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )


def test_png_of_100000_by_100000_is_rejected_from_its_header(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(InputError, match="10000000000 pixels.*decompression-bomb guard"):
        load_image(path)
    path.write_bytes(_png_header_only(5_000, 4_000))  # under Pillow's guard, over ours
    with pytest.raises(InputError, match="4000x5000 exceeds the limit of 1,000,000 pixels"):
        load_image(path, max_pixels=1_000_000)


def test_unsupported_transfer_syntax(tmp_path):
    dataset = pydicom.dcmread(dicom_file("CT_small.dcm"))
    dataset.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2 Main Profile
    dataset.PixelData = encapsulate([dataset.PixelData])
    dataset["PixelData"].VR = "OB"
    dataset.save_as(tmp_path / "mpeg.dcm", enforce_file_format=True)
    with pytest.raises(InputError, match="MPEG2.*no pixel decoder"):
        load_image(tmp_path / "mpeg.dcm")


def test_corrupt_compressed_stream(tmp_path):
    dataset = pydicom.dcmread(dicom_file("MR_small_RLE.dcm"))
    dataset.PixelData = encapsulate([b"\x00" * 64])
    dataset.save_as(tmp_path / "bad_rle.dcm")
    with pytest.raises(InputError, match="cannot be decoded"):
        load_image(tmp_path / "bad_rle.dcm")


@pytest.mark.shared_data
@pytest.mark.parametrize(
    ("name", "what"),
    [("sr_document.dcm", "structured report"), ("seg_image_cr_binary.dcm", "segmentation")],
)
def test_non_image_sop_classes_from_highdicom(highdicom_dir, name, what):
    with pytest.raises(InputError, match=f"{what}.*not an image"):
        load_image(highdicom_dir / name)


@pytest.mark.parametrize(("name", "what"), [("rtplan.dcm", "RT plan"), ("rtdose.dcm", "RT dose")])
def test_rt_objects_are_not_images(name, what):
    with pytest.raises(InputError, match=f"{what}.*not an image"):
        load_image(dicom_file(name))


def test_dicomdir_inside_its_folder_lists_real_images():
    files = read_dicomdir(dicom_file("DICOMDIR"))
    assert len(files) == 31
    assert {load_image(path).modality for path in files[:6]} >= {"CR", "CT"}


@pytest.mark.parametrize("escape", [["..", "..", "etc", "passwd"], ["/etc/passwd"]])
def test_dicomdir_pointing_outside_its_folder(tmp_path, escape):
    dataset = pydicom.dcmread(dicom_file("DICOMDIR"))
    records = [r for r in dataset.DirectoryRecordSequence if "ReferencedFileID" in r]
    records[0].ReferencedFileID = escape
    (tmp_path / "media").mkdir()
    dataset.save_as(tmp_path / "media" / "DICOMDIR")
    with pytest.raises(InputError, match="outside the DICOMDIR's folder"):
        read_dicomdir(tmp_path / "media" / "DICOMDIR")


def test_dicomdir_symlink_out_of_the_folder(tmp_path):
    dataset = pydicom.dcmread(dicom_file("DICOMDIR"))
    record = next(r for r in dataset.DirectoryRecordSequence if "ReferencedFileID" in r)
    record.ReferencedFileID = ["LINK"]
    media = tmp_path / "media"
    media.mkdir()
    (media / "LINK").symlink_to(dicom_file("CT_small.dcm"))
    dataset.save_as(media / "DICOMDIR")
    with pytest.raises(InputError, match="outside the DICOMDIR's folder"):
        read_dicomdir(media / "DICOMDIR", record_types=())


def test_a_bad_file_in_a_batch_yields_no_predictions(tmp_path, shipped_extractor):
    good, _ = _ct(tmp_path)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\x00" * 200)
    with pytest.raises(InputError):
        shipped_extractor.predict_files([good, bad])


def test_real_truncated_file_from_pydicom():
    # pydicom parses this file without error; only our length check notices the missing bytes.
    pydicom.dcmread(dicom_file("MR_truncated.dcm"))
    with pytest.raises(InputError, match="8,130 bytes.*needs 8,192.*truncated"):
        load_image(dicom_file("MR_truncated.dcm"))
