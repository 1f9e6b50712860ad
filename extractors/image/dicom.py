"""Safe DICOM decoding: validate the header and pixel data, then apply the display pipeline.

pydicom reads a truncated file without complaint and decodes whatever bytes are there, so the
checks here come first: a Part 10 file, an image SOP class, the required Image Pixel tags,
dimensions within a pixel budget (decompression bombs), a decoder for the transfer syntax, and
native pixel data exactly as long as rows x columns x samples x frames x bits allocated.
Then, per PS3.3 C.11: Modality LUT (rescale or LUT sequence), VOI LUT or window (linear,
linear-exact, sigmoid), MONOCHROME1 inversion; colour images become luminance.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.uid import UID

from graph.errors import InputError

DEFAULT_MAX_PIXELS = 2**28  # 268M pixels: a 1 GiB float32 array, above any real CR/DX/CT series

# SOP classes that carry no image (or no image a finding model may read), by UID prefix.
NON_IMAGE_SOP_PREFIXES = {
    "1.2.840.10008.5.1.4.1.1.88.": "a structured report (SR)",
    "1.2.840.10008.5.1.4.1.1.481.2": "an RT dose grid",
    "1.2.840.10008.5.1.4.1.1.481.3": "an RT structure set",
    "1.2.840.10008.5.1.4.1.1.481.4": "an RT treatment record",
    "1.2.840.10008.5.1.4.1.1.481.5": "an RT plan",
    "1.2.840.10008.5.1.4.1.1.481.6": "an RT treatment record",
    "1.2.840.10008.5.1.4.1.1.481.7": "an RT treatment summary",
    "1.2.840.10008.5.1.4.1.1.481.8": "an RT plan",
    "1.2.840.10008.5.1.4.1.1.481.9": "an RT ion treatment record",
    "1.2.840.10008.5.1.4.1.1.66": "a segmentation, registration or raw-data object",
    "1.2.840.10008.5.1.4.1.1.9.": "a waveform",
    "1.2.840.10008.5.1.4.1.1.11.": "a presentation state",
    "1.2.840.10008.5.1.4.1.1.104.": "an encapsulated document",
    "1.2.840.10008.5.1.4.1.1.4.2": "an MR spectroscopy object",
    "1.2.840.10008.5.1.4.1.1.67": "a real-world value mapping",
    "1.2.840.10008.5.1.4.1.1.68.": "a surface object",
    "1.2.840.10008.1.3.10": "a DICOMDIR (use read_dicomdir for it)",
}
REQUIRED_TAGS = ("Rows", "Columns", "BitsAllocated", "PhotometricInterpretation")


def read_dataset(path: Path) -> Dataset:
    """Parse a DICOM file into a dataset, turning every parser failure into ``InputError``."""
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    try:
        return dcmread(path)
    except InvalidDicomError:
        # Files written without the 128-byte preamble still start with a little-endian tag
        # of group 0002 or 0008; anything else is not DICOM at all.
        with path.open("rb") as handle:
            head = handle.read(2)
        if head not in (b"\x02\x00", b"\x08\x00"):
            raise InputError(
                f"{path}: not a DICOM file (no 'DICM' marker at byte 128); pass a DICOM Part 10 "
                "file, or a PNG/JPEG image"
            ) from None
    except Exception as exc:  # pydicom raises many types on corrupt input
        raise InputError(f"{path}: unreadable DICOM ({type(exc).__name__}: {exc})") from None
    try:
        return dcmread(path, force=True)
    except Exception as exc:
        raise InputError(f"{path}: unreadable DICOM ({type(exc).__name__}: {exc})") from None


def check_image_dataset(
    dataset: Dataset, source: str, max_pixels: int
) -> tuple[int, int, int, int]:
    """Validate that ``dataset`` is a decodable image; return ``(frames, rows, cols, samples)``.

    Raises:
        InputError: non-image SOP class, missing tags or pixel data, zero or too-large
            dimensions, an unsupported transfer syntax, or pixel data of the wrong length.
    """
    sop_class = str(dataset.get("SOPClassUID", ""))
    for prefix, what in NON_IMAGE_SOP_PREFIXES.items():
        if sop_class.startswith(prefix):
            raise InputError(
                f"{source}: {UID(sop_class).name} is {what}, not an image; pass image objects only"
            )
    if "PixelData" not in dataset:
        raise InputError(f"{source}: no Pixel Data (7FE0,0010); nothing to read as an image")
    missing = [tag for tag in REQUIRED_TAGS if dataset.get(tag) in (None, "")]
    if missing:
        raise InputError(f"{source}: required Image Pixel attributes missing: {missing}")
    rows, cols = int(dataset.Rows), int(dataset.Columns)
    frames = int(dataset.get("NumberOfFrames") or 1)
    samples = int(dataset.get("SamplesPerPixel") or 1)
    bits = int(dataset.BitsAllocated)
    if rows <= 0 or cols <= 0 or frames <= 0:
        raise InputError(f"{source}: image dimensions {rows}x{cols} x {frames} frames are empty")
    if samples not in (1, 3) or bits not in (1, 8, 16, 32, 64):
        raise InputError(f"{source}: unsupported {samples} samples/pixel, {bits} bits allocated")
    if rows * cols * frames * samples > max_pixels:
        raise InputError(
            f"{source}: {rows}x{cols}x{frames} frames x{samples} exceeds the limit of "
            f"{max_pixels:,} pixels (decompression-bomb guard); raise max_pixels if it is genuine"
        )
    syntax = transfer_syntax(dataset)
    if syntax.is_compressed:
        _check_decoder(syntax, source)
    else:
        expected = math.ceil(rows * cols * frames * samples * bits / 8)
        actual = len(dataset.PixelData)
        # Odd lengths are padded to even (PS3.5 8.1.1), so one extra byte is legal.
        if actual < expected or actual > expected + 1:
            raise InputError(
                f"{source}: pixel data has {actual:,} bytes, but {rows} rows x {cols} columns x "
                f"{samples} samples x {frames} frames x {bits} bits needs {expected:,} "
                "(truncated or corrupt file)"
            )
    return frames, rows, cols, samples


def transfer_syntax(dataset: Dataset) -> UID:
    """The dataset's transfer syntax (from its file meta, else from how it was encoded)."""
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and meta.get("TransferSyntaxUID"):
        return UID(str(meta.TransferSyntaxUID))
    implicit = (dataset.original_encoding or (True, True))[0]
    return UID("1.2.840.10008.1.2" if implicit else "1.2.840.10008.1.2.1")


def _check_decoder(syntax: UID, source: str) -> None:
    from pydicom.pixels import get_decoder

    try:
        decoder = get_decoder(syntax)
    except NotImplementedError:
        raise InputError(
            f"{source}: transfer syntax {syntax.name} ({syntax}) has no pixel decoder; "
            "convert the file to an uncompressed or JPEG/JPEG 2000/RLE syntax"
        ) from None
    if not decoder.is_available:
        raise InputError(
            f"{source}: no installed decoder for {syntax.name}; install pylibjpeg with "
            "pylibjpeg-libjpeg / pylibjpeg-openjpeg / pylibjpeg-rle"
        )


def decode_pixels(dataset: Dataset, source: str, shape: tuple[int, int, int, int]) -> np.ndarray:
    """Decode and display-transform the pixels to float32 ``[frames, rows, cols]`` in [0, 1]."""
    from pydicom.pixels import apply_color_lut, apply_modality_lut

    frames, rows, cols, samples = shape
    from pydicom.dataset import FileMetaDataset
    from pydicom.pixels import pixel_array

    if not getattr(dataset, "file_meta", None) or "TransferSyntaxUID" not in dataset.file_meta:
        meta = getattr(dataset, "file_meta", None) or FileMetaDataset()
        meta.TransferSyntaxUID = transfer_syntax(dataset)
        dataset.file_meta = meta
    try:
        # pixel_array(dataset), unlike dataset.pixel_array, keeps no cached copy in the dataset
        # (which the de-identifier would otherwise deep-copy with the header).
        raw = pixel_array(dataset)
    except Exception as exc:  # decoders raise their own types on corrupt streams
        raise InputError(
            f"{source}: pixel data cannot be decoded ({type(exc).__name__}: {exc})"
        ) from None
    expected = (frames, rows, cols, samples)
    if raw.size != math.prod(expected):
        raise InputError(f"{source}: decoded {raw.shape}, header says {expected}")
    photometric = str(dataset.PhotometricInterpretation).strip()
    if photometric == "PALETTE COLOR":
        rgb = apply_color_lut(raw, dataset).reshape(frames, rows, cols, 3).astype(np.float32)
        return _luminance(rgb) / max(float(rgb.max()), 1.0)
    if samples == 3:
        rgb = raw.reshape(frames, rows, cols, 3).astype(np.float32)
        return _luminance(rgb) / float(2 ** int(dataset.get("BitsStored") or 8) - 1)
    raw = raw.reshape(frames, rows, cols)
    if "SharedFunctionalGroupsSequence" in dataset or "PerFrameFunctionalGroupsSequence" in dataset:
        # Enhanced (multi-frame) IODs keep rescale and window in functional groups, per frame.
        scaled = np.stack(
            [
                _apply_voi(
                    apply_modality_lut(raw[index], view).astype(np.float32, copy=False), view
                )
                for index in range(frames)
                for view in [_frame_view(dataset, index)]
            ]
        )
    else:
        values = apply_modality_lut(raw, dataset).astype(np.float32, copy=False)
        scaled = _apply_voi(values, dataset)
    if photometric == "MONOCHROME1":  # minimum value displays white
        scaled = 1.0 - scaled
    return np.ascontiguousarray(scaled, dtype=np.float32)


_FRAME_GROUP_SEQUENCES = ("PixelValueTransformationSequence", "FrameVOILUTSequence")
_TOP_LEVEL_PIXEL_KEYWORDS = (
    "BitsAllocated", "BitsStored", "PixelRepresentation", "PhotometricInterpretation",
    "RescaleSlope", "RescaleIntercept", "RescaleType", "ModalityLUTSequence",
    "WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence",
)  # fmt: skip


def _frame_view(dataset: Dataset, index: int) -> Dataset:
    """A dataset with frame ``index``'s rescale and window lifted to the top level.

    Shared functional groups apply to every frame; a per-frame group overrides them (PS3.3
    C.7.6.16).
    """
    view = Dataset()
    for keyword in _TOP_LEVEL_PIXEL_KEYWORDS:
        if keyword in dataset:
            view[keyword] = dataset[keyword]
    groups = []
    if dataset.get("SharedFunctionalGroupsSequence"):
        groups.append(dataset.SharedFunctionalGroupsSequence[0])
    per_frame = dataset.get("PerFrameFunctionalGroupsSequence")
    if per_frame and index < len(per_frame):
        groups.append(per_frame[index])
    for group in groups:
        for keyword in _FRAME_GROUP_SEQUENCES:
            if group.get(keyword):
                for element in group[keyword][0]:
                    view[element.tag] = element
    return view


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return (rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.float32)


def _first(value: object) -> float:
    """First value of a possibly multi-valued DS (several windows may be listed)."""
    return float(value[0]) if isinstance(value, MultiValue | list | tuple) else float(value)


def _apply_voi(values: np.ndarray, dataset: Dataset) -> np.ndarray:
    """VOI LUT sequence, else the first window (PS3.3 C.11.2.1.2), else min-max; into [0, 1]."""
    if "VOILUTSequence" in dataset and len(dataset.VOILUTSequence):
        from pydicom.pixels import apply_voi

        item = dataset.VOILUTSequence[0]
        out_bits = int(item.LUTDescriptor[2])
        # The LUT is indexed by stored (integer) values after the Modality LUT.
        indices = np.rint(values).astype(np.int64)
        return np.clip(apply_voi(indices, dataset, 0) / float(2**out_bits - 1), 0.0, 1.0)
    center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center not in (None, "") and width not in (None, "") and _first(width) > 0:
        c, w = _first(center), _first(width)
        function = str(dataset.get("VOILUTFunction", "LINEAR")).upper()
        if function == "SIGMOID":
            return (1.0 / (1.0 + np.exp(-4.0 * (values - c) / w))).astype(np.float32)
        if function == "LINEAR_EXACT":
            return np.clip((values - c) / w + 0.5, 0.0, 1.0)
        if w >= 1:
            return np.clip((values - (c - 0.5)) / max(w - 1.0, 1.0) + 0.5, 0.0, 1.0)
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros_like(values)
    return (values - low) / (high - low)
