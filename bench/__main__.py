"""Run every benchmark script in ``bench/`` (``python -m bench [--full] [NAME ...]``).

Each script prints its own table of figures and ratios against the peer or baseline it measures
in the same run. By default the scripts run with ``--quick`` (CI-sized inputs).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
NOT_BENCHES = {"__init__.py", "__main__.py", "gen_rrf.py", "local_server.py"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("names", nargs="*", help="bench names (file stems); all when omitted")
    parser.add_argument("--full", action="store_true", help="full-size inputs instead of --quick")
    args = parser.parse_args()
    scripts = sorted(p for p in HERE.glob("*.py") if p.name not in NOT_BENCHES)
    if args.names:
        scripts = [p for p in scripts if p.stem in args.names]
    failed = []
    for script in scripts:
        print(f"\n=== {script.stem} ===", flush=True)
        started = time.perf_counter()
        command = [sys.executable, str(script)] + ([] if args.full else ["--quick"])
        if subprocess.run(command, cwd=HERE.parent).returncode != 0:
            failed.append(script.stem)
        print(f"({script.stem}: {time.perf_counter() - started:.1f} s)", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
