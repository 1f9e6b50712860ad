"""``kgdx --help`` stays fast: the CLI imports no heavy library until a command runs."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "torch",
    "torch_geometric",
    "spacy",
    "scispacy",
    "medspacy",
    "monai",
    "ladybug",
    "neo4j",
    "pydicom",
    "sklearn",
    "pandas",
    "pyarrow",
    "fastapi",
)


def test_cli_import_pulls_no_heavy_library():
    code = (
        "import json, sys; import api.cli; "
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_help_lists_every_command_group():
    out = subprocess.run(
        [sys.executable, "-m", "api.cli", "--help"], capture_output=True, text=True, check=True
    )
    for group in ("kg", "extract", "image", "eval", "export"):
        assert group in out.stdout
