"""Rules the REST edge checks before anything reaches the store: query parameters the databases
can take, and report texts that are non-empty and within the server's size limit.

Both databases refuse some JSON a client can send, and not with a helpful error: LadybugDB raises
``ValueError`` for ``[1, "a"]``, a ``RuntimeError`` for ``[]``, ``[null]``, ``[true, 1]`` or an
integer beyond 64 bits. Checking here turns each into a 422 that says what to send instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

from graph.errors import InputError
from graph.records import check_text

PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}\Z")
MAX_PARAMS = 100
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PARAM_TYPES = (
    "null, boolean, 64-bit integer, finite number, string, a list of one of these types "
    "(integers and decimals may mix), or a map of names to such values (no map in a map)"
)


def _scalar_kind(value: Any) -> str | None:
    """``null``/``boolean``/``number``/``string`` for a supported scalar, ``None`` otherwise.

    Raises:
        ValueError: an integer beyond 64 bits, NaN/infinity, or text with NUL or a lone surrogate.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueError("an integer beyond 64 bits")
        return "number"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN or an infinity")
        return "number"
    if isinstance(value, str):
        check_text(value)
        return "string"
    return None


def _check_value(value: Any, *, in_map: bool) -> None:
    if _scalar_kind(value) is not None:
        return
    if isinstance(value, list):
        kinds = {_scalar_kind(item) for item in value}
        if None in kinds:
            raise ValueError("a list may hold only nulls, booleans, numbers or strings")
        kinds.discard("null")
        if not kinds:
            raise ValueError(
                "an empty list (or one of nulls only) has no element type the database can use; "
                "leave the parameter out of the query instead"
            )
        if len(kinds) > 1:
            raise ValueError(
                f"a list must hold one type of value, not {' and '.join(sorted(kinds))} mixed"
            )
        return
    if isinstance(value, dict) and not in_map:
        for key, item in value.items():
            check_text(str(key))
            _check_value(item, in_map=True)
        return
    raise ValueError("a map inside a map is not supported" if in_map else "unsupported value")


def check_query_params(params: dict[str, Any]) -> dict[str, Any]:
    """Return ``params`` if every name is a Cypher parameter name and every value is of a
    supported type (:data:`PARAM_TYPES`), else raise ``ValueError`` naming the parameter."""
    if len(params) > MAX_PARAMS:
        raise ValueError(f"at most {MAX_PARAMS} parameters")
    for name, value in params.items():
        if not PARAM_NAME.match(name):
            raise ValueError(
                "a parameter name is a letter or _ followed by up to 63 letters, digits or _"
            )
        try:
            _check_value(value, in_map=False)
        except ValueError as exc:
            raise ValueError(f"parameter {name!r}: {exc}; supported: {PARAM_TYPES}") from None
    return params


def check_reports(texts: Iterable[str], max_chars: int) -> None:
    """Refuse an empty (or whitespace-only) report or one longer than ``max_chars``.

    Raises:
        InputError: naming the report by its position (1-based), never quoting it.
    """
    for number, text in enumerate(texts, start=1):
        if not text.strip():
            raise InputError(f"report {number} is empty; send the report's text")
        if len(text) > max_chars:
            raise InputError(
                f"report {number} has {len(text):,} characters, more than this server's limit "
                f"of {max_chars:,} (KGDX_MAX_REPORT_CHARS); split it into several reports"
            )
