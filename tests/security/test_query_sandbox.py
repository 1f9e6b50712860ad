"""The sandbox a researcher's query worker runs in (issue 11: the worker of findings 3, 4 and 6,
and the host file access of finding 1, should a query ever get past the read-only guard), tried
in a child process as the worker applies it (:func:`graph.sandbox.apply_sandbox`): with
Landlock, files other than the database can be neither read nor written and the network is
closed; without it, one warning and rlimits only, so files stay readable but none can grow.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from graph.sandbox import landlock_abi

pytestmark = pytest.mark.timeout(120)
ROOT = Path(__file__).resolve().parents[2]


_SANDBOXED = """
import socket, sys
from pathlib import Path
from graph.sandbox import apply_sandbox
db, canary, write_to, port = sys.argv[1:5]
report = apply_sandbox([Path(db)], address_space_bytes=4 << 30)
print("landlock", report.landlock_abi, "netns", report.network_namespace)
assert open(db, "rb").read(4), "the database file stays readable"
for name, attempt in [
    ("read", lambda: open(canary).read()),
    ("write", lambda: open(write_to, "w").write("x")),
    ("beside", lambda: open(Path(db).with_name("beside.txt"), "w").write("x")),
    ("connect", lambda: socket.socket().connect(("127.0.0.1", int(port)))),
]:
    try:
        attempt()
        print(name, "ALLOWED")
    except OSError as exc:
        print(name, "refused", type(exc).__name__)
"""


def test_the_sandbox_refuses_other_files_writes_and_the_network(store, tmp_path):
    if landlock_abi() < 1:
        pytest.skip("this kernel has no Landlock: the sandbox falls back to rlimits only")
    store.connection.execute("CHECKPOINT")
    canary = tmp_path / "canary.txt"
    canary.write_text("secret")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    with listener:
        port = listener.getsockname()[1]
        run = subprocess.run(
            [
                sys.executable,
                "-c",
                _SANDBOXED,
                str(store.path),
                str(canary),
                str(tmp_path / "new.txt"),
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
    assert run.returncode == 0, run.stderr
    lines = dict(line.split(" ", 1) for line in run.stdout.splitlines())
    assert lines["read"].startswith("refused") and lines["write"].startswith("refused")
    assert lines["beside"].startswith("refused")
    if lines["landlock"].split()[0] in {"1", "2", "3"} and "netns False" in lines["landlock"]:
        pytest.skip("neither Landlock ABI 4 nor a network namespace here: network stays open")
    assert lines["connect"].startswith("refused")
    assert not (tmp_path / "new.txt").exists() and canary.read_text() == "secret"


_NO_LANDLOCK = """
import sys
from pathlib import Path
import graph.sandbox as sandbox
sandbox.landlock_abi = lambda: 0  # a kernel without Landlock
db, canary, write_to = sys.argv[1:4]
report = sandbox.apply_sandbox([Path(db)], address_space_bytes=4 << 30)
print("warned", any("Landlock is unavailable" in w for w in report.warnings))
print("read", open(canary).read())
try:
    with open(write_to, "w") as out:
        out.write("x" * 10)
    print("write ALLOWED")
except OSError as exc:
    print("write refused", exc.errno)
"""


def test_without_landlock_the_sandbox_warns_and_still_refuses_writes(store, tmp_path):
    """The documented fallback: one warning, rlimits only (files stay readable; none can grow)."""
    canary = tmp_path / "canary.txt"
    canary.write_text("visible")
    run = subprocess.run(
        [sys.executable, "-c", _NO_LANDLOCK, str(store.path), str(canary), str(tmp_path / "w")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["warned True", "read visible", "write refused 27"]
    assert "Landlock is unavailable" in run.stderr  # logged, once
    assert (tmp_path / "w").stat().st_size == 0
