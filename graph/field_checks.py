"""Checks of record fields: ids, text, JSON-like values, CURIEs and section names.

Each ``check_*`` returns its value or raises ``ValueError`` with a message that says what is
allowed; :mod:`graph.records` builds its field types (``Id``, ``Text``, ``Curie``,
``SectionName``) on them, and the REST input rules (:mod:`api.routers.input_rules`) and the
extractors call them directly. The messages never repeat a value that may be huge or not
printable.
"""

from __future__ import annotations

import math
import re
from typing import Any

CURIE_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.\-]*:[^\s]+$")

# Patient, report and image ids share one character set (documented in docs/rest.md):
# - no "/": the stores key a report or image as "<patient id>/<report id>" (patient_rows), and
#   with "/" in neither part the first "/" always ends the patient id, so two different
#   (patient, report) pairs can never make the same key (with "/" allowed, patient "col" +
#   report "x/R1" and patient "col/x" + report "R1" did);
# - no whitespace, control characters or non-ASCII: ids go into URL paths and the Location
#   header as they are;
# - a letter or digit first: no ".", ".." or "-x" ids that read as paths or options.
# Every id in the data kgdx ingests fits: the demo cohort (P001, P001-R1), phenopackets
# (PP5b8453e126c9), IU X-ray and COVID CXR ids and file names, DICOM UIDs and the ids the image
# reader derives (2.25.<int>, sha256:<hex>, P-<hex>).
ID_MAX_LENGTH = 128
ID_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._:-]{{0,{ID_MAX_LENGTH - 1}}}$"
_ID_RE = re.compile(ID_PATTERN.removesuffix("$") + r"\Z")  # "$" would allow a trailing newline
ID_RULE = (
    f"1 to {ID_MAX_LENGTH} characters from A-Z a-z 0-9 . _ : - starting with a letter or digit"
)
# NUL and lone surrogates: not text any store or UTF-8 encoder accepts
_UNSAFE_TEXT = re.compile("[\x00\ud800-\udfff]")
MAX_JSON_DEPTH = 32


def check_id(value: str) -> str:
    """Return ``value`` if it is a valid patient, report or image id, else raise ``ValueError``.

    The message never repeats the value (it may be megabytes, or not printable).
    """
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise ValueError(f"not a valid id: an id is {ID_RULE}")
    return value


def check_text(value: str) -> str:
    """Return ``value`` unless it holds a NUL character or a lone surrogate (``ValueError``)."""
    if _UNSAFE_TEXT.search(value):
        raise ValueError("text holds a NUL character or a lone surrogate; send valid Unicode text")
    return value


def check_json_value(value: Any, depth: int = 0) -> Any:
    """Return a JSON-like value (attributes, query parameters) if every string in it, keys
    included, passes :func:`check_text`, every float is finite and it nests at most
    :data:`MAX_JSON_DEPTH` levels; else raise ``ValueError``.

    NaN and infinities are refused because JSON has no spelling for them: stored, they would
    make every later answer that includes them fail to encode.
    """
    if depth > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    if isinstance(value, str):
        check_text(value)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("holds NaN or an infinity, which JSON cannot carry")
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(str(key))
            check_json_value(item, depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            check_json_value(item, depth + 1)
    return value


def check_curie(value: str) -> str:
    """Return ``value`` if it is a CURIE (``PREFIX:local``), else raise ``ValueError``."""
    if not isinstance(value, str) or not CURIE_RE.match(value):
        raise ValueError(f"not a CURIE (PREFIX:id): {value!r}")
    return value


# A report section's category as the extractor names it (``findings``, ``impression``, ...).
SECTION_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}\Z")


def check_section(value: str | None) -> str | None:
    """Return a section name (lower-case letters, digits, ``_``) or ``None``; ``""`` reads as
    ``None`` (unknown), the way mentions stored before sections were kept come back."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not SECTION_RE.match(value):
        raise ValueError(
            f"not a section name: {value!r}; write lower-case letters, digits and '_' "
            "(e.g. findings, impression)"
        )
    return value
