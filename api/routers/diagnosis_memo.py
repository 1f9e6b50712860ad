"""The diagnoses the server last made per patient, so asking again for an unchanged patient with
the same model answers at once instead of running the model again.

A diagnosis depends only on the patient's stored record, the model and the request's ``top_k``
and ``paths_per_diagnosis`` (the reasoner is inductive: other patients never change a patient's
scores). An entry is therefore valid while the model folder's stamp is the same and the patient
was not written or deleted since it was made; the patient routes tell the memo
(:meth:`DiagnosisMemo.patient_changed`), and an entry made while the patient changed is not kept.
This holds only when this process is the store's one writer: the embedded store, which the
server holds for writing. With Neo4j (other writers possible) the memo is off.

``POST /v1/patients/{id}/diagnoses?refresh=true`` always runs the model.

The same versions keep ``GET /v1/patients/{id}``'s answer (its JSON body) until the patient is
written or deleted: a repeated read is answered on the event loop without the store lock, so
reads under load neither queue for the store nor make a diagnosis's store calls wait behind
them. A view read while the patient changed is not kept (its version is stale).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

MEMO_CAPACITY = 10_000  # (patient, top_k, paths) entries kept, least recently used dropped


class DiagnosisMemo:
    def __init__(self, capacity: int = MEMO_CAPACITY) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[tuple[str, int, int], tuple[int, Any]] = OrderedDict()
        self._versions: dict[str, int] = {}
        self._views: OrderedDict[str, tuple[int, bytes]] = OrderedDict()
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
            found = self._views.get(patient_id)
            if found is None or found[0] != self._versions.get(patient_id, 0):
                return None
            self._views.move_to_end(patient_id)
            return found[1]

    def put_view(self, patient_id: str, version: int, body: bytes) -> None:
        """Remember a ``GET`` body read at ``version`` unless the patient changed since."""
        with self._lock:
            if self._versions.get(patient_id, 0) != version:
                return
            self._views[patient_id] = (version, body)
            self._views.move_to_end(patient_id)
            while len(self._views) > self.capacity:
                self._views.popitem(last=False)

    def patient_changed(self, patient_id: str) -> None:
        """Forget the patient's answers and view (it was written or deleted)."""
        with self._lock:
            self._versions[patient_id] = self._versions.get(patient_id, 0) + 1
            self._views.pop(patient_id, None)
            for key in [k for k in self._entries if k[0] == patient_id]:
                del self._entries[key]


def memo_of(state: Any) -> DiagnosisMemo | None:
    """The app's memo (``app.state``), ``None`` when it is off."""
    return getattr(state, "diagnosis_memo", None)
