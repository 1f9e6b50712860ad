"""What the embedded store last read or wrote of its patients, kept in the process, so that a
diagnosis saved again does not read back what the store just wrote.

A refresh of an unchanged patient (the load bench's first phases; a clinician re-running a
diagnosis) used to cost seven store calls on the event loop: whether the patient is stored
(twice), which path concepts are stored, the stored prediction rows to compare with, the
re-stamp, the commit, and the rows read back for the answer (~2.3 ms together on the demo
model). With this memory it costs the re-stamp alone, and nothing when the stamp (kept to the
second) has not changed.

The memory is right because it is only ever wrong after a write, and every write of the store
goes through it: :class:`~graph.stores.embedded.EmbeddedStore` forgets all of it at any other
write transaction, bulk load, rollback or failed statement, and a save of predictions forgets
its own patient's entry before it writes and remembers the rows after (when it only
re-stamped). A read-write store is the only writer of its database: LadybugDB locks the file
against other processes, :class:`~graph.stores.embedded.EmbeddedStore` refuses a second
read-write open of the same file in the same process (LadybugDB would allow it), and a
researcher's Cypher cannot write. A read-only store keeps nothing (:meth:`disable`): another
process writes what it reads. A commit group's writes are remembered as they run; a group
that breaks rolls back, which forgets everything.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from graph.store_types import StoredPrediction

# patients whose prediction rows are kept (least recently used dropped first); ids of stored
# patients and concepts kept, each set cleared when it reaches its bound
PATIENTS_KEPT = 4_096
IDS_KEPT = 200_000


@dataclass(frozen=True)
class PredictionRow:
    """One stored ``Prediction`` node: its id, the fields a save compares (``compared``, in
    :func:`graph.stores.ladybug_patients.compared` order) and its public record (with its
    stamp, ``created``)."""

    id: str
    compared: tuple[Any, ...]
    stored: StoredPrediction

    @property
    def model_id(self) -> str | None:
        return self.compared[2]  # as stored (None in a row without one)

    @property
    def created(self) -> str | None:
        return self.stored.created

    def restamped(self, created: str) -> PredictionRow:
        return replace(self, stored=self.stored.model_copy(update={"created": created}))


class PredictionMemory:
    """Per patient, its prediction rows as stored (by model, then rank); the patient ids found
    stored; the concept ids found stored. Not thread-safe on its own: the store's callers
    serialise its use (the server's store lock)."""

    def __init__(self, patients: int = PATIENTS_KEPT, ids: int = IDS_KEPT) -> None:
        self._rows: OrderedDict[str, tuple[PredictionRow, ...]] = OrderedDict()
        self._patients: set[str] = set()
        self._concepts: set[str] = set()
        self._patients_kept = patients
        self._ids_kept = ids
        self.disabled = False  # a read-only store's: nothing is kept

    def disable(self) -> None:
        """For good: a read-only store's memory (another process writes what it reads)."""
        self.disabled = True
        self.forget_all()

    def forget_all(self) -> None:
        """After any write this memory did not make itself."""
        self._rows.clear()
        self._patients.clear()
        self._concepts.clear()

    def forget(self, patient_id: str) -> None:
        self._rows.pop(patient_id, None)

    def predictions(self, patient_id: str) -> tuple[PredictionRow, ...] | None:
        rows = self._rows.get(patient_id)
        if rows is not None:
            self._rows.move_to_end(patient_id)
        return rows

    def remember(self, patient_id: str, rows: tuple[PredictionRow, ...]) -> None:
        if self.disabled:
            return
        self._rows[patient_id] = rows
        self._rows.move_to_end(patient_id)
        while len(self._rows) > self._patients_kept:
            self._rows.popitem(last=False)

    def has_patient(self, patient_id: str) -> bool:
        """Whether the patient was found stored since the last write (``False``: not known)."""
        return patient_id in self._patients

    def patient_found(self, patient_id: str) -> None:
        if self.disabled:
            return
        if len(self._patients) >= self._ids_kept:
            self._patients.clear()
        self._patients.add(patient_id)

    def unknown_concepts(self, concept_ids: set[str]) -> set[str]:
        """Those of ``concept_ids`` not found stored since the last write."""
        return concept_ids - self._concepts

    def concepts_found(self, concept_ids: set[str]) -> None:
        if self.disabled or len(concept_ids) > self._ids_kept:
            return
        if len(self._concepts) + len(concept_ids) > self._ids_kept:
            self._concepts.clear()
        self._concepts |= concept_ids


__all__ = ["PredictionMemory", "PredictionRow"]
