"""The patients' half of the ``GraphStore`` interface: patient graphs and the predictions
stored with them. Public validating methods here, ``_``-prefixed backend hooks for
``graph.stores`` to implement, as in :mod:`graph.store` (``GraphStore`` derives from
:class:`PatientStore`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from graph.errors import InputError, UnknownConceptError
from graph.records import Diagnosis, Patient

if TYPE_CHECKING:
    from graph.store_types import QueryResult, StoredPrediction


class PatientStore(ABC):
    """Patients and their predictions, over the store's ``_missing_concepts`` and ``query``
    (:class:`graph.store.GraphStore`'s; declared here for type checkers only)."""

    if TYPE_CHECKING:

        def _missing_concepts(self, concept_ids: set[str]) -> set[str]: ...

        query: Callable[..., QueryResult]  # GraphStore.query: the read-only Cypher path

    def upsert_patient(self, patient: Patient) -> None:
        """Write a patient with its reports, images, findings and labels, replacing what was
        stored for that patient before (idempotent, atomic).

        Raises:
            UnknownConceptError: a finding or label names a concept that is not stored.
        """
        if not isinstance(patient, Patient):
            raise InputError(f"expected Patient, got {type(patient).__name__}")
        wanted = {f.concept_id for f in patient.findings} | set(patient.labels)
        missing = self._missing_concepts(wanted)
        if missing:
            raise UnknownConceptError(
                f"patient {patient.id!r} refers to unknown concept(s) {sorted(missing)[:5]}; "
                "nothing was written"
            )
        self._upsert_patient(patient)

    def get_patient(self, patient_id: str) -> Patient:
        """The stored patient, with reports, images, findings and labels.

        Raises:
            InputError: no such patient.
        """
        patient = self._get_patient(patient_id)
        if patient is None:
            raise InputError(f"unknown patient {patient_id!r}")
        return patient

    def patient_ids(self) -> list[str]:
        """Ids of the stored patients, sorted."""
        return self._patient_ids()

    def has_patient(self, patient_id: str) -> bool:
        """Whether a patient of this id is stored (one lookup, not a read of the record)."""
        return self._has_patient(patient_id)

    def _require_patient(self, patient_id: str) -> None:
        if not self.has_patient(patient_id):
            raise InputError(f"unknown patient {patient_id!r}")

    def delete_patient(self, patient_id: str) -> None:
        """Remove a patient and everything attached to it (reports, images, predictions)."""
        self._require_patient(patient_id)
        self._delete_patient(patient_id)

    def save_predictions(self, patient_id: str, diagnoses: Sequence[Diagnosis]) -> None:
        """Store a patient's predicted diagnoses with their explanation paths, replacing earlier
        predictions of the same model(s). A path step whose concept is not stored is kept on the
        path but not linked (``EXPLAINED_BY``).

        Raises:
            InputError: the patient is not stored, or an item is not a ``Diagnosis``.
            UnknownConceptError: a diagnosis concept is not stored; nothing is written.
        """
        self._require_patient(patient_id)
        for diagnosis in diagnoses:
            if not isinstance(diagnosis, Diagnosis):
                raise InputError(f"expected Diagnosis, got {type(diagnosis).__name__}")
        named = {d.concept_id for d in diagnoses}
        # concept ids on the paths (the patient's own id has no prefix): one lookup for both
        on_paths = {n for d in diagnoses for p in d.paths for n in p.nodes if ":" in n}
        missing = self._missing_concepts(named | on_paths)
        if missing & named:
            raise UnknownConceptError(f"unknown diagnosis concept(s) {sorted(missing & named)[:5]}")
        self._save_predictions(patient_id, list(diagnoses), on_paths - missing)

    def get_predictions(self, patient_id: str) -> list[StoredPrediction]:
        """A patient's stored predictions, by model then rank (none for an unknown patient).

        Read in the process, not on the sandboxed query path, so it never waits for a
        researcher's query."""
        return self._get_predictions(patient_id)

    def _get_predictions(self, patient_id: str) -> list[StoredPrediction]:
        """Default: through :meth:`query` (backends with an in-process read override it)."""
        from graph.stores.patient_rows import PATIENT_PREDICTIONS, stored_prediction

        found = self.query(PATIENT_PREDICTIONS, {"pid": patient_id}, row_limit=100_000)
        return [stored_prediction(row) for row in found.records()]

    # ------------------------------------------------------------------ backend hooks
    @abstractmethod
    def _upsert_patient(self, patient: Patient) -> None: ...

    @abstractmethod
    def _get_patient(self, patient_id: str) -> Patient | None: ...

    @abstractmethod
    def _patient_ids(self) -> list[str]: ...

    @abstractmethod
    def _delete_patient(self, patient_id: str) -> None: ...

    def _has_patient(self, patient_id: str) -> bool:
        """Default: read the record (backends override it with one lookup)."""
        return self._get_patient(patient_id) is not None

    @abstractmethod
    def _save_predictions(
        self, patient_id: str, diagnoses: list[Diagnosis], stored: set[str]
    ) -> None:
        """Write the predictions; ``stored``: the path concepts that are stored concepts."""
