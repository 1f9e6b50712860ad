"""Task ``phenopackets``: rank every candidate disease for a rare-disease case.

A cohort folder holds ``*.jsonl`` files, one flattened GA4GH phenopacket a line:
``{"id", "observed": [HP ids], "excluded": [HP ids], "diseases": [OMIM ids], ...}`` (other keys,
such as ``sex`` and ``age``, are ignored). Candidates are every OMIM disease of the KG's HPO
annotations.
"""

from __future__ import annotations

import json
from pathlib import Path

from gnn.tasks.base import Case, Task
from graph.errors import InputError


class PhenopacketsTask(Task):
    """Phenotype-only diagnosis over all OMIM diseases of the KG (top-k, MRR, median rank)."""

    name = "phenopackets"

    def read(self, directory: str | Path) -> list[Case]:
        path = Path(directory)
        files = [path] if path.is_file() else sorted(path.glob("*.jsonl"))
        if not files:
            raise InputError(
                f"{directory} holds no *.jsonl cohort file; give the folder of phenopackets.jsonl"
            )
        cases: list[Case] = []
        seen: dict[str, str] = {}
        for file in files:
            with file.open(encoding="utf-8") as handle:
                for line_no, line in enumerate(handle, 1):
                    if not line.strip():
                        continue
                    case = _case(line, file, line_no)
                    if case.id in seen:
                        raise InputError(
                            f"{file}:{line_no}: case id {case.id!r} repeats one of {seen[case.id]}"
                            "; give each case one id"
                        )
                    seen[case.id] = f"{file.name}:{line_no}"
                    cases.append(case)
        if not cases:
            raise InputError(f"{directory} holds no cases")
        return cases


def _case(line: str, file: Path, line_no: int) -> Case:
    where = f"{file}:{line_no}"
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise InputError(f"{where}: not a JSON object ({exc.msg}); one case a line") from None
    if not isinstance(record, dict):
        raise InputError(f"{where}: expected a JSON object, found {type(record).__name__}")
    case_id = record.get("id")
    if not isinstance(case_id, str) or not case_id:
        raise InputError(f"{where}: the case has no 'id' string")
    fields = {}
    for key in ("observed", "excluded", "diseases"):
        value = record.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise InputError(f"{where}: '{key}' must be a list of id strings")
        fields[key] = tuple(dict.fromkeys(value))
    if not fields["diseases"]:
        raise InputError(f"{where}: case {case_id!r} has no diagnosed disease ('diseases')")
    if not fields["observed"] and not fields["excluded"]:
        raise InputError(f"{where}: case {case_id!r} has no findings (observed or excluded)")
    bad = [t for t in fields["observed"] + fields["excluded"] if not t.startswith("HP:")]
    if bad:
        raise InputError(f"{where}: findings must be HPO ids (HP:nnnnnnn), found {bad[:3]}")
    return Case(id=case_id, **fields)
