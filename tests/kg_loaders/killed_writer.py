"""A writer that dies right after its commit, as an OOM-killed ``kgdx serve`` would: what it
wrote is only in the log LadybugDB keeps beside the name the database was opened by."""

from __future__ import annotations

import subprocess
import sys

from graph.settings import PROJECT_ROOT, Settings


def commit_then_die(settings: Settings, patient_id: str) -> None:
    """Store patient ``patient_id`` in another process that exits without closing the store."""
    program = (
        "import os; from graph.records import Patient; from graph.settings import Settings; "
        "from graph.stores.embedded import EmbeddedStore; "
        f"s = EmbeddedStore(Settings(home={str(settings.home)!r}, "
        f"db_path={str(settings.db_path)!r})); "
        f"s.upsert_patient(Patient(id={patient_id!r})); os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", program], cwd=PROJECT_ROOT, check=True, timeout=120)
