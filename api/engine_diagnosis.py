"""The diagnosis half of :class:`api.engine.Engine` (mixed in): a stored patient diagnosed in
three steps (:meth:`Diagnosing.diagnosis_input`, the model's
:func:`gnn.reasoning.diagnoses.score_patient` here or in the REST service's model worker,
:meth:`Diagnosing.save_scored`), a record that is not stored diagnosed without writing, and one
named disease explained. Store reads and writes hold the engine's store lock when it has one,
never the model or the extractor.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from graph.errors import InputError, ModelError
from graph.records import Diagnosis, Patient
from graph.store import GraphStore

if TYPE_CHECKING:
    from gnn.reasoning.diagnoses import Scored
    from gnn.reasoning.patients import ReasoningRun
    from gnn.reasoning.pipeline import Patient as ReasonerPatient
    from graph.settings import Settings
    from graph.subgraph import PatientSubgraph


class Diagnosing:
    """Engine methods that diagnose and explain; the engine provides the attributes below."""

    if TYPE_CHECKING:
        settings: Settings
        store: GraphStore
        result: ReasoningRun | None

        def _lock_in_force(self) -> threading.Lock | None: ...

        def extract(self, patient: Patient) -> Patient: ...

    @property
    def kg_release(self) -> str:
        """The KG release the loaded model was trained on: its sources and content hash
        (``kgdx-chest-seed:2026-11 sha256:dd858b7ad0c1``); ``""`` without a model."""
        if self.result is None:
            return ""
        kg = self.result.reasoner.kg
        return f"{', '.join(kg.sources)} sha256:{kg.content_hash[:12]}".strip()

    def _store_held(self):
        lock = self._lock_in_force()
        return lock if lock is not None else nullcontext()

    def _require_model(self) -> ReasoningRun:
        if self.result is None:
            raise ModelError("no model: call train(...) or load_model(...) first")
        return self.result

    def diagnose(
        self, patient_id: str, *, top_k: int = 3, paths_per_diagnosis: int = 2
    ) -> list[Diagnosis]:
        """Top diagnoses of a stored patient with explanation paths; also saved to the store.

        Only this patient's record is read (inductive: other stored patients never change its
        scores). The model reads its findings of the report sections it was trained on; each
        diagnosis names them (``Diagnosis.input_sections``).

        Raises:
            ModelError: no trained or loaded model.
            InputError: the patient is not stored, or has no finding that is a term of the
                model's KG.
        """
        given = self.diagnosis_input(patient_id)
        return self.save_scored(given, _scored(given, top_k, paths_per_diagnosis))

    def diagnosis_input(self, patient_id: str) -> DiagnosisInput:
        """The store's part of :meth:`diagnose` before the model runs: the stored patient's
        subgraph and its term indices, for :func:`gnn.reasoning.diagnoses.score_patient` (here
        or in a model worker process) and then :meth:`save_scored`.

        Raises:
            ModelError: no trained or loaded model.
            InputError: the patient is not stored, or has no finding that is a term of the
                model's KG.
        """
        from gnn.reasoning.diagnoses import resolve_subgraph
        from graph.subgraph import patient_subgraph

        run = self._require_model()
        with self._store_held():
            subgraph = patient_subgraph(
                self.store, patient_id, sections=run.sections, known=run.knows
            )
        patient, _ = resolve_subgraph(run.reasoner, run.index, subgraph)
        return DiagnosisInput(run, subgraph, patient)

    def save_scored(self, given: DiagnosisInput, scored: Scored) -> list[Diagnosis]:
        """The diagnoses of a scored :meth:`diagnosis_input` (each step's evidence and KG
        sources), saved as :meth:`diagnose` saves them."""
        diagnoses = self._records(given, scored)
        with self._store_held():
            self.store.save_predictions(given.subgraph.patient_id, diagnoses)
        return diagnoses

    def diagnose_record(
        self,
        patient: Patient,
        *,
        top_k: int = 3,
        paths_per_diagnosis: int = 2,
        extract: bool = True,
    ) -> list[Diagnosis]:
        """Top diagnoses of a patient that is not stored (nothing is written).

        Args:
            patient: a record with reports (their findings are extracted when ``extract``)
                and/or findings, e.g. :func:`graph.subgraph.patient_from_terms` for HPO ids.
            extract: run the text extractor on the reports (image findings are kept); ``False``
                or a record without reports uses the findings as given.

        Raises:
            ModelError: no trained or loaded model.
            InputError: no finding is a term of the model's KG (the unknown ones are named).
        """
        run = self._require_model()
        subgraph = self._record_subgraph(run, patient, extract)
        return self._diagnose_subgraph(run, subgraph, top_k, paths_per_diagnosis)

    def explain(self, patient: str | Patient, disease_id: str, *, k: int = 3) -> Diagnosis:
        """One named disease for a patient (a stored id or a record): its probability and its
        ``k`` best KG paths (``.paths``), whatever its rank. Nothing is written.

        Raises:
            ModelError: no trained or loaded model.
            InputError: the patient is not stored, ``disease_id`` is not a candidate disease of
                the model's KG, or no finding is a term of it.
        """
        from gnn.reasoning.diagnoses import explain_subgraph
        from graph.subgraph import patient_subgraph

        run = self._require_model()
        if isinstance(patient, Patient):
            subgraph = self._record_subgraph(run, patient, True)
        else:
            with self._store_held():
                subgraph = patient_subgraph(
                    self.store, patient, sections=run.sections, known=run.knows
                )
        diagnosis = explain_subgraph(
            run.reasoner,
            subgraph,
            disease_id,
            index=run.index,
            labels=run.labels,
            store=self._locked_store(),
            model_id=run.model_id,
            sections=run.sections,
            k=k,
        )
        return self._with_release(diagnosis)

    def _record_subgraph(self, run: ReasoningRun, patient: Patient, extract: bool):
        from graph.subgraph import subgraph_of

        record = self.extract(patient) if extract and patient.reports else patient
        check_finding_count(record, self.settings.max_patient_findings)
        with self._store_held():
            return subgraph_of(self.store, record, sections=run.sections, known=run.knows)

    def _locked_store(self):
        """The store, or a view of it whose reads hold :attr:`store_lock`."""
        lock = self._lock_in_force()
        return self.store if lock is None else _LockedReads(self.store, lock)

    def _diagnose_subgraph(self, run, subgraph, top_k, paths_per_diagnosis) -> list[Diagnosis]:
        from gnn.reasoning.diagnoses import resolve_subgraph

        patient, _ = resolve_subgraph(run.reasoner, run.index, subgraph)
        given = DiagnosisInput(run, subgraph, patient)
        return self._records(given, _scored(given, top_k, paths_per_diagnosis))

    def _records(self, given: DiagnosisInput, scored: Scored) -> list[Diagnosis]:
        """The diagnosis records of a scored patient, naming the model's KG release."""
        from gnn.reasoning.diagnoses import diagnoses_of

        run = given.run
        diagnoses = diagnoses_of(
            run.reasoner,
            given.subgraph,
            given.patient,
            scored,
            labels=run.labels,
            index=run.index,
            store=self._locked_store(),
            model_id=run.model_id,
            sections=run.sections,
        )
        return [self._with_release(d) for d in diagnoses]

    def _with_release(self, diagnosis: Diagnosis) -> Diagnosis:
        """The diagnosis naming the model's KG release, where the record has the field."""
        if "kg_release" not in Diagnosis.model_fields:
            return diagnosis
        return diagnosis.model_copy(update={"kg_release": self.kg_release})


@dataclass(frozen=True)
class DiagnosisInput:
    """A stored patient read for one diagnosis: the run it is for, its subgraph and its term
    indices (``patient``)."""

    run: ReasoningRun
    subgraph: PatientSubgraph
    patient: ReasonerPatient


def _scored(given: DiagnosisInput, top_k: int, paths_per_diagnosis: int) -> Scored:
    """The model's part of a diagnosis, in this process (the server's model worker runs the
    same :func:`~gnn.reasoning.diagnoses.score_patient`)."""
    from gnn.reasoning.diagnoses import score_patient

    run = given.run
    return score_patient(run.reasoner, given.patient, run.labels.labels, top_k, paths_per_diagnosis)


class _LockedReads:
    """The one store read the path evidence makes (``subgraph``), holding a lock."""

    def __init__(self, store: GraphStore, lock: threading.Lock) -> None:
        self._store, self._lock = store, lock

    def subgraph(self, *args: Any, **kwargs: Any):
        with self._lock:
            return self._store.subgraph(*args, **kwargs)


def check_finding_count(patient: Patient, limit: int) -> None:
    """Refuse a patient with more than ``limit`` findings before any of it is written.

    Raises:
        InputError: naming the count and the setting, never quoting the reports.
    """
    count = len(patient.findings)
    if count > limit:
        raise InputError(
            f"patient {patient.id!r} has {count:,} findings, more than this server's limit of "
            f"{limit:,} per patient (KGDX_MAX_PATIENT_FINDINGS); nothing was stored. Is a report "
            "repeated, or several patients' reports sent as one?"
        )
