"""The diagnoses the server last made per patient, so asking again for an unchanged patient with
the same model answers at once instead of running the model again.

A diagnosis depends only on the patient's stored record, the model and the request's ``top_k``
and ``paths_per_diagnosis`` (the reasoner is inductive: other patients never change a patient's
scores). An entry is therefore valid while the model folder's stamp is the same and the patient
was not written or deleted since it was made; the patient routes tell the memo
(:meth:`DiagnosisMemo.patient_changed`), and an entry made while the patient changed is not kept.
This holds only when this process is the store's one writer: the embedded store, which the
server holds for writing. With Neo4j (other writers possible) the memo is off.

``POST /v1/patients/{id}/diagnoses?refresh=true`` always runs the model, on the remembered
diagnosis input (below) when the patient is unchanged: ``refresh`` re-runs the model, it does not
re-read the store. Answers, views and inputs alike rely on every route that writes or deletes a
patient telling the memo (the server being the store's one writer, nothing else writes); a
restart forgets them all.

The same versions keep ``GET /v1/patients/{id}``'s answer (its JSON body) until the patient is
written or deleted: a repeated read is answered on the event loop without the store lock, so
reads under load neither queue for the store nor make a diagnosis's store calls wait behind
them. A view read while the patient changed is not kept (its version is stale).

They also keep each patient's diagnosis input (:meth:`api.engine.Engine.diagnosis_input`: the
stored record's subgraph and term indices, ~2 ms and 8 store calls to read) for the model that
read it, so a diagnosis of an unchanged patient (``refresh``, another ``top_k``) goes straight
to the model. Views and inputs are kept within a size budget (bytes of the bodies, findings of
the inputs), least recently used dropped first: one very large patient cannot fill the memory.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

MEMO_CAPACITY = 10_000  # (patient, top_k, paths) entries kept, least recently used dropped
VIEW_BYTES = 256 * 2**20  # GET bodies kept, in bytes
INPUT_FINDINGS = 200_000  # diagnosis inputs kept, in findings (~1 KB each with its sentence)


class _Sized:
    """Per-patient values with their version, least recently used dropped beyond ``budget``
    (the sum of the values' sizes); a value larger than the budget is not kept. Not locked:
    the memo holds its lock around every call."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.used = 0
        self._items: OrderedDict[str, tuple[int, int, Any]] = OrderedDict()

    def get(self, patient_id: str, version: int) -> Any | None:
        found = self._items.get(patient_id)
        if found is None or found[0] != version:
            return None
        self._items.move_to_end(patient_id)
        return found[2]

    def put(self, patient_id: str, version: int, size: int, value: Any) -> None:
        self.pop(patient_id)
        if size > self.budget:
            return
        self._items[patient_id] = (version, size, value)
        self.used += size
        while self.used > self.budget:
            _, (_, dropped, _) = self._items.popitem(last=False)
            self.used -= dropped

    def pop(self, patient_id: str) -> None:
        found = self._items.pop(patient_id, None)
        if found is not None:
            self.used -= found[1]

    def clear(self) -> None:
        self._items.clear()
        self.used = 0

    def __len__(self) -> int:
        return len(self._items)


class DiagnosisMemo:
    def __init__(
        self,
        capacity: int = MEMO_CAPACITY,
        view_bytes: int = VIEW_BYTES,
        input_findings: int = INPUT_FINDINGS,
    ) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, int, int], tuple[int, Any]] = OrderedDict()
        self._versions: dict[str, int] = {}
        self._views = _Sized(view_bytes)
        self._inputs = _Sized(input_findings)
        self._input_run: Any = None  # the model run of the inputs kept
        self._lock = threading.Lock()

    def version(self, patient_id: str) -> int:
        with self._lock:
            return self._versions.get(patient_id, 0)

    def get(self, key: tuple[str, int, int], stamp: int | None) -> Any | None:
        """The answer remembered for ``key`` under model ``stamp``, or ``None``."""
        if stamp is None:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] != stamp:
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: tuple[str, int, int], stamp: int | None, version: int, answer: Any) -> None:
        """Remember ``answer`` unless the patient changed since ``version`` was read."""
        if stamp is None:
            return
        with self._lock:
            if self._versions.get(key[0], 0) != version:
                return
            self._entries[key] = (stamp, answer)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)

    def view(self, patient_id: str) -> bytes | None:
        """The patient's remembered ``GET`` body, or ``None``."""
        with self._lock:
            return self._views.get(patient_id, self._versions.get(patient_id, 0))

    def put_view(self, patient_id: str, version: int, body: bytes) -> None:
        """Remember a ``GET`` body read at ``version`` unless the patient changed since."""
        with self._lock:
            if self._versions.get(patient_id, 0) == version:
                self._views.put(patient_id, version, len(body), body)

    def diagnosis_input(self, patient_id: str, version: int, run: Any) -> Any | None:
        """The patient's remembered diagnosis input for model ``run`` (the engine's
        ``ReasoningRun``, by identity), if the patient is still at ``version``; else ``None``.
        A lookup with another run than the inputs' drops them all (each holds its run, and so
        the whole old model) and makes ``run`` the one kept from now on."""
        with self._lock:
            if run is not self._input_run:
                self._inputs.clear()
                self._input_run = run
                return None
            if self._versions.get(patient_id, 0) != version:
                return None
            return self._inputs.get(patient_id, version)

    def put_diagnosis_input(self, patient_id: str, version: int, given: Any) -> None:
        """Remember a diagnosis input read at ``version`` unless the patient changed since, or
        it was read with another model run than the last lookup's (a request that read it
        before a reload must not bring the old model back; after a load no input is kept
        until a lookup with the new run)."""
        size = 1 + sum(len(found) for found in given.subgraph.findings.values())
        with self._lock:
            if given.run is not self._input_run:  # None after a load: no lookup since
                return
            if self._versions.get(patient_id, 0) == version:
                self._inputs.put(patient_id, version, size, given)

    def model_changed(self) -> None:
        """Forget every diagnosis input (another model was loaded: the inputs hold the old
        one, which would otherwise stay in memory until the next diagnosis)."""
        with self._lock:
            self._inputs.clear()
            self._input_run = None

    def patient_changed(self, patient_id: str) -> None:
        """Forget the patient's answers, view and diagnosis input (it was written or
        deleted)."""
        with self._lock:
            self._versions[patient_id] = self._versions.get(patient_id, 0) + 1
            self._views.pop(patient_id)
            self._inputs.pop(patient_id)
            for key in [k for k in self._entries if k[0] == patient_id]:
                del self._entries[key]


def memo_of(state: Any) -> DiagnosisMemo | None:
    """The app's memo (``app.state``), ``None`` when it is off."""
    return getattr(state, "diagnosis_memo", None)
