"""The query worker's wire format: JSON with tagged types, never pickle.

The worker runs researchers' Cypher and must be treated as hostile once it has run it (a crash
or an engine bug could leave anything on its pipe), so the parent reads only JSON. Plain JSON
values pass as they are; every other value LadybugDB returns is an object with a tag ``$`` and a
value ``v``, so rows decode to the same Python types an in-process read gives: ``datetime``,
``date``, ``timedelta``, ``Decimal``, ``UUID``, ``bytes``, non-finite floats, and maps (nodes,
relations, paths and ``MAP`` / ``STRUCT`` values, which LadybugDB returns as dicts; kept as key
/ value pairs, so keys that are not strings survive).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import math
import uuid
from decimal import Decimal
from typing import Any

_TAG = "$"


class WireError(ValueError):
    """A value that cannot be encoded, or an answer that is not valid wire JSON."""


def encode_value(value: Any) -> Any:
    """A JSON-ready form of ``value`` (see the module docstring).

    Raises:
        WireError: a type the wire format does not carry.
    """
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {_TAG: "float", "v": repr(value)}
    if isinstance(value, (list, tuple)):
        return [encode_value(item) for item in value]
    if isinstance(value, dict):
        return {_TAG: "map", "v": [[encode_value(k), encode_value(v)] for k, v in value.items()]}
    if isinstance(value, dt.datetime):  # before date: a datetime is a date
        return {_TAG: "datetime", "v": value.isoformat()}
    if isinstance(value, dt.date):
        return {_TAG: "date", "v": value.isoformat()}
    if isinstance(value, dt.timedelta):
        return {_TAG: "timedelta", "v": [value.days, value.seconds, value.microseconds]}
    if isinstance(value, Decimal):
        return {_TAG: "decimal", "v": str(value)}
    if isinstance(value, uuid.UUID):
        return {_TAG: "uuid", "v": str(value)}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {_TAG: "bytes", "v": base64.b64encode(bytes(value)).decode("ascii")}
    raise WireError(f"a value of type {type(value).__name__} cannot be returned by a query")


def dumps(message: Any) -> bytes:
    """One message as a line of ASCII JSON (already encoded values)."""
    return (
        json.dumps(message, ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode(
            "ascii"
        )
        + b"\n"
    )


def _decode_tagged(tag: Any, payload: Any) -> Any:
    if tag == "map":
        return {_hashable(decode_value(k)): decode_value(v) for k, v in payload}
    if tag == "datetime":
        return dt.datetime.fromisoformat(payload)
    if tag == "date":
        return dt.date.fromisoformat(payload)
    if tag == "timedelta":
        days, seconds, microseconds = payload
        return dt.timedelta(days=days, seconds=seconds, microseconds=microseconds)
    if tag == "decimal":
        return Decimal(payload)
    if tag == "uuid":
        return uuid.UUID(payload)
    if tag == "bytes":
        return base64.b64decode(payload, validate=True)
    if tag == "float" and payload in ("nan", "inf", "-inf"):
        return float(payload)
    raise WireError(f"unknown wire tag {tag!r}")


def _hashable(key: Any) -> Any:
    return tuple(key) if isinstance(key, list) else key


def decode_value(value: Any) -> Any:
    """The Python value of a decoded JSON value (inverse of :func:`encode_value`).

    Raises:
        WireError: an object without a known tag, or a malformed tagged value.
    """
    if isinstance(value, list):
        return [decode_value(item) for item in value]
    if isinstance(value, dict):
        if set(value) != {_TAG, "v"}:
            raise WireError("an untagged object in the answer")
        try:
            return _decode_tagged(value[_TAG], value["v"])
        except (TypeError, ValueError) as exc:
            raise WireError(f"malformed {value[_TAG]!r} value: {exc}") from None
    return value


def loads(line: bytes) -> Any:
    """Parse one line of the worker's answer (values still encoded).

    Raises:
        WireError: the line is not JSON (garbled, cut short, nested absurdly deep).
    """
    try:
        return json.loads(line)
    except (ValueError, RecursionError) as exc:
        raise WireError(f"not a JSON line: {type(exc).__name__}") from None
