"""``docs/rest.md``: its endpoint and error tables are generated from the app's OpenAPI.

The guide holds a section between :data:`BEGIN` and :data:`END` that is exactly
:func:`endpoints_markdown` (a test keeps it so; ``python -m api.rest_docs`` rewrites it), and
worked examples, each a marker comment followed by ``json request`` / ``json response`` blocks::

    <!-- example: POST /v1/patients/{patient_id}/diagnoses; status: 200 -->

:func:`rest_examples` reads them back so a test can check each one against the app's routes and
models.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graph.cypher_docs import rewrite_section, section_between
from graph.errors import InputError
from graph.settings import PROJECT_ROOT

GUIDE_PATH = PROJECT_ROOT / "docs" / "rest.md"
BEGIN = "<!-- BEGIN GENERATED ENDPOINTS (python -m api.rest_docs) -->"
END = "<!-- END GENERATED ENDPOINTS -->"
_METHODS = ("get", "post", "put", "delete", "patch")


def endpoints_markdown(openapi: dict[str, Any] | None = None) -> str:
    """The endpoint table (from ``app.openapi()``) and the error-to-status table, as Markdown."""
    from api.rest import ERROR_STATUS, create_app

    openapi = openapi if openapi is not None else create_app().openapi()
    lines = ["| method | path | what it does | statuses |", "|---|---|---|---|"]
    for path, operations in openapi["paths"].items():
        for method in _METHODS:
            operation = operations.get(method)
            if operation is None:
                continue
            summary = (operation.get("description") or operation["summary"]).split("\n\n")[0]
            summary = " ".join(summary.split()).replace("|", "\\|")
            statuses = ", ".join(sorted(operation["responses"]))
            lines.append(f"| `{method.upper()}` | `{path}` | {summary} | {statuses} |")
    lines += ["", "| error (`graph.errors`) | status |", "|---|---|"]
    lines += [f"| `{cls.__name__}` | {status} |" for cls, status in ERROR_STATUS]
    return "\n".join(lines)


def generated_section(text: str) -> str:
    """The generated endpoint section of the REST guide."""
    return section_between(text, BEGIN, END)


def write_endpoints(path: Path = GUIDE_PATH) -> bool:
    """Rewrite the generated section of the guide at ``path``; returns whether it changed."""
    return rewrite_section(path, BEGIN, END, endpoints_markdown())


@dataclass(frozen=True)
class RestExample:
    """One worked example of the guide: the route it calls, its bodies and the status."""

    method: str
    path: str
    status: int
    url: str
    request: Any = None
    response: Any = None


_MARKER = re.compile(
    r"<!--\s*example:\s*(?P<method>[A-Z]+)\s+(?P<path>\S+);\s*status:\s*(?P<status>\d{3})\s*-->"
)
_BLOCK = re.compile(r"```(?P<info>[a-z]+(?: [a-z]+)?)\n(?P<body>.*?)```", re.S)
_URL = re.compile(r"https?://[^/\s]+(?P<url>/[^\s'\"]*)")


def rest_examples(path: Path = GUIDE_PATH) -> list[RestExample]:
    """The guide's worked examples, in order.

    Each marker is followed by a ``bash`` block (a ``curl`` command with the URL) and optional
    ``json request`` and ``json response`` blocks, up to the next marker or heading.

    Raises:
        InputError: an example without a URL, or a block that is not valid JSON.
    """
    text = path.read_text(encoding="utf-8")
    markers = list(_MARKER.finditer(text))
    examples = []
    for marker, following in zip(markers, [*markers[1:], None], strict=True):
        stop = following.start() if following else len(text)
        heading = text.find("\n#", marker.end())
        chunk = text[marker.end() : heading if 0 <= heading < stop else stop]
        blocks = {m["info"]: m["body"] for m in _BLOCK.finditer(chunk)}
        url = _URL.search(blocks.get("bash", ""))
        label = f"{marker['method']} {marker['path']}"
        if url is None:
            raise InputError(f"example {label}: no curl URL in a bash block after the marker")
        try:
            bodies = {
                k: json.loads(blocks[k]) for k in ("json request", "json response") if k in blocks
            }
        except json.JSONDecodeError as exc:
            raise InputError(f"example {label}: a JSON block does not parse: {exc}") from None
        examples.append(
            RestExample(
                method=marker["method"],
                path=marker["path"],
                status=int(marker["status"]),
                url=url["url"],
                request=bodies.get("json request"),
                response=bodies.get("json response"),
            )
        )
    return examples


if __name__ == "__main__":
    changed = write_endpoints()
    print(f"{GUIDE_PATH}: {'rewrote the endpoint tables' if changed else 'up to date'}")
