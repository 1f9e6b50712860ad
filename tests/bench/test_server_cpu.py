"""The load bench's CPU figure (``bench/local_server.tree_cpu_by_process``): a process and its
descendants, as the server and its model worker are, read from ``/proc``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.local_server import tree_cpu_by_process

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")

# a parent that idles while its child burns a core (the server waiting on its worker)
PARENT = (
    "import subprocess, sys, time; "
    "child = subprocess.Popen([sys.executable, '-c', 'while True: pass']); "
    "time.sleep(60)"
)


def test_a_process_tree_counts_its_children_cpu():
    parent = subprocess.Popen([sys.executable, "-c", PARENT])
    try:
        time.sleep(0.5)  # the interpreters start
        before = sum(tree_cpu_by_process(parent.pid).values())
        time.sleep(1.5)
        split_before = tree_cpu_by_process(parent.pid)
        used = sum(tree_cpu_by_process(parent.pid).values()) - before
        assert 0.2 < used < 2.0  # the child's busy core (a share of it on a busy machine)
        time.sleep(1.0)
        split = tree_cpu_by_process(parent.pid)
        assert set(split) == set(split_before) and len(split) == 2  # the parent and its child
        own = split[parent.pid] - split_before[parent.pid]
        child = sum(split[p] - split_before[p] for p in split if p != parent.pid)
        assert own < 0.1 < child  # the idle parent's share, the busy child's
    finally:
        for task in Path(f"/proc/{parent.pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                os.kill(int(child), signal.SIGKILL)
        parent.kill()
        parent.wait()
    assert tree_cpu_by_process(parent.pid) == {}  # gone
