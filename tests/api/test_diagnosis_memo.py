"""api/routers/diagnosis_memo.py: what the server remembers per patient is valid for the patient's
version (and, for a diagnosis input, the model run that read it) and kept within its budgets."""

from __future__ import annotations

from types import SimpleNamespace

from api.routers.diagnosis_memo import DiagnosisMemo


def _input(run: object, findings: int) -> SimpleNamespace:
    """The parts of an ``Engine.diagnosis_input`` the memo looks at."""
    subgraph = SimpleNamespace(findings={f"C:{i}": (object(),) for i in range(findings)})
    return SimpleNamespace(run=run, subgraph=subgraph)


def test_a_diagnosis_input_is_kept_for_its_version_and_model_run() -> None:
    memo, run, other = DiagnosisMemo(), object(), object()
    given = _input(run, 3)
    memo.put_diagnosis_input("P1", 0, given)  # no lookup with this run yet: not kept
    assert memo.diagnosis_input("P1", 0, run) is None
    memo.put_diagnosis_input("P1", 0, given)
    assert memo.diagnosis_input("P1", 0, run) is given
    assert memo.diagnosis_input("P1", 0, other) is None  # another model read it
    memo.diagnosis_input("P1", 0, run)
    memo.put_diagnosis_input("P1", 0, given)
    assert memo.diagnosis_input("P2", 0, run) is None
    memo.patient_changed("P1")
    assert memo.diagnosis_input("P1", 0, run) is None
    assert memo.diagnosis_input("P1", 1, run) is None  # forgotten, not just stale
    memo.put_diagnosis_input("P1", 0, given)  # read before the change: not kept
    assert memo.diagnosis_input("P1", 1, run) is None
    memo.put_diagnosis_input("P1", 1, given)
    assert memo.diagnosis_input("P1", 1, run) is given


def test_inputs_and_views_stay_within_their_budgets_least_recently_used_first() -> None:
    memo, run = DiagnosisMemo(view_bytes=100, input_findings=10), object()
    assert memo.diagnosis_input("P1", 0, run) is None  # the route looks up before it puts
    for patient in ("P1", "P2", "P3"):
        memo.put_diagnosis_input(patient, 0, _input(run, 3))  # 4 each
    assert memo.diagnosis_input("P1", 0, run) is None  # dropped for P3
    assert memo.diagnosis_input("P2", 0, run) and memo.diagnosis_input("P3", 0, run)
    memo.put_diagnosis_input("P4", 0, _input(run, 50))  # larger than the budget: not kept
    assert memo.diagnosis_input("P4", 0, run) is None and memo.diagnosis_input("P3", 0, run)
    memo.put_view("P1", 0, b"x" * 60)
    memo.put_view("P2", 0, b"y" * 30)
    assert memo.view("P1") == b"x" * 60  # now the most recently used
    memo.put_view("P3", 0, b"z" * 30)
    assert memo.view("P2") is None and memo.view("P1") and memo.view("P3")
    memo.put_view("P1", 0, b"w" * 10)  # replaced: its old size no longer counts
    memo.put_view("P5", 0, b"v" * 61)  # 10 + 30 + 61 > 100: P3 goes
    assert memo.view("P1") == b"w" * 10 and memo.view("P5") and memo.view("P3") is None
    memo.put_view("P6", 0, b"u" * 101)
    assert memo.view("P6") is None


def test_a_new_model_run_drops_the_inputs_of_the_old_one() -> None:
    """Each input holds its run, and so the whole model: a reload must not keep the old one."""
    memo, old, new = DiagnosisMemo(), object(), object()
    memo.diagnosis_input("P1", 0, old)
    memo.put_diagnosis_input("P1", 0, _input(old, 2))
    memo.put_diagnosis_input("P2", 0, _input(old, 2))
    assert memo.diagnosis_input("P1", 0, old) is not None and len(memo._inputs) == 2
    # the first lookup with the new run drops the old inputs, though nothing is put after it
    assert memo.diagnosis_input("P1", 0, new) is None
    assert len(memo._inputs) == 0 and memo._inputs.used == 0 and memo._input_run is new
    memo.put_diagnosis_input("P3", 0, _input(new, 2))
    # a request that read its input before the reload puts it late: not kept, the new run's stay
    memo.put_diagnosis_input("P1", 0, _input(old, 2))
    assert memo.diagnosis_input("P1", 0, new) is None and memo._input_run is new
    assert memo.diagnosis_input("P3", 0, new) is not None and len(memo._inputs) == 1


def test_a_model_load_forgets_every_input() -> None:
    """The slot tells the memo after each load (api/rest.py): the memo keeps no input of the
    old model even when no diagnosis comes after the reload."""
    memo, old, new = DiagnosisMemo(), object(), object()
    memo.diagnosis_input("P1", 0, old)
    memo.put_diagnosis_input("P1", 0, _input(old, 2))
    memo.model_changed()
    assert len(memo._inputs) == 0 and memo._input_run is None
    # an input read before the load, put after it, is not kept (no lookup with a run since)
    memo.put_diagnosis_input("P2", 0, _input(old, 2))
    assert len(memo._inputs) == 0 and memo._input_run is None
    assert memo.diagnosis_input("P1", 0, new) is None
    memo.put_diagnosis_input("P1", 0, _input(new, 2))
    assert memo.diagnosis_input("P1", 0, new) is not None
