"""The embedded store's patient hooks (``EmbeddedStore`` mixes them in): a patient graph written
in one transaction, read back, deleted, and a model's predictions with their explanation paths.

The statements are in ``graph.stores.ladybug_cypher``; the rows they take are built by
``graph.stores.patient_rows``, which the Neo4j backend shares.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from graph.records import Diagnosis, Patient
from graph.stores import ladybug_cypher as cy
from graph.stores.patient_rows import patient_from_rows, prediction_rows
from graph.stores.prediction_memory import PredictionMemory, PredictionRow

if TYPE_CHECKING:
    from graph.store_types import StoredPrediction


class PatientHooks:
    """``GraphStore`` patient hooks over the store's ``_rows`` / ``_write`` /
    ``_missing_concepts`` (declared here for type checkers only)."""

    if TYPE_CHECKING:

        def _rows(self, cypher: str, params: dict[str, Any] | None = None) -> list[list[Any]]: ...

        def _write(self, statements: list[tuple[str, dict[str, Any]]]) -> None: ...

        def _missing_concepts(self, concept_ids: set[str]) -> set[str]: ...

        def _refuse_read_only(self, what: str) -> None: ...

        def _transaction(
            self, what: str, *, keeps_memory: bool = False
        ) -> AbstractContextManager[None]: ...

        connection: Any
        _memory: PredictionMemory

    def _upsert_patient(self, patient: Patient) -> None:
        from graph.stores.patient_rows import patient_statements

        statements = [(cypher, {"pid": patient.id}) for cypher in cy.DELETE_PATIENT_PARTS]
        statements += patient_statements(patient)
        self._write(statements)

    def _get_patient(self, patient_id: str) -> Patient | None:
        found = self._rows(cy.GET_PATIENT, {"pid": patient_id})
        if not found:
            return None

        def rows(cypher: str, keys: tuple[str, ...]) -> list[dict[str, Any]]:
            return [
                dict(zip(keys, row, strict=True)) for row in self._rows(cypher, {"pid": patient_id})
            ]

        assertion = ("polarity", "certainty", "temporality", "experiencer", "confidence")
        return patient_from_rows(
            patient_id,
            found[0][0],
            reports=rows(cy.GET_REPORTS, ("id", "text", "date")),
            images=rows(cy.GET_IMAGES, ("id", "modality", "path")),
            mentions=rows(
                cy.GET_MENTIONS,
                ("doc", "concept", *assertion, "section", "sentence", "start", "end"),
            ),
            shows=rows(
                cy.GET_SHOWS,
                (
                    "doc",
                    "concept",
                    *assertion,
                    "probability",
                    "model_id",
                    "scope",
                    "scope_reason",
                    "ood_score",
                ),
            ),
            labels=[row[0] for row in self._rows(cy.GET_LABELS, {"pid": patient_id})],
        )

    def _patient_ids(self) -> list[str]:
        return [row[0] for row in self._rows(cy.PATIENT_IDS)]

    def _delete_patient(self, patient_id: str) -> None:
        params = {"pid": patient_id}
        statements = [(cypher, params) for cypher in cy.DELETE_PATIENT_PARTS]
        statements += [(cy.DELETE_PATIENT_PREDICTIONS, params), (cy.DELETE_PATIENT, params)]
        self._write(statements)

    def _get_predictions(self, patient_id: str) -> list[StoredPrediction]:
        return [row.stored for row in self._prediction_rows(patient_id)]

    def _has_patient(self, patient_id: str) -> bool:
        if self._memory.has_patient(patient_id):
            return True
        found = bool(self._rows(cy.HAS_PATIENT, {"pid": patient_id}))
        if found:
            self._memory.patient_found(patient_id)
        return found

    def _prediction_rows(self, patient_id: str) -> tuple[PredictionRow, ...]:
        """The patient's stored predictions, by model then rank: as remembered, or read."""
        rows = self._memory.predictions(patient_id)
        if rows is None:
            rows = tuple(
                _row(found) for found in self._rows(cy.PREDICTION_ROWS, {"pid": patient_id})
            )
            self._memory.remember(patient_id, rows)
        return rows

    def _save_predictions(
        self, patient_id: str, diagnoses: list[Diagnosis], stored: set[str]
    ) -> None:
        """Replace the patient's predictions of the diagnoses' models, writing only what changed:
        a stored row equal to its new one (same concept, probability, rank, paths, sections,
        KG release and linked path steps) keeps its node and edges and gets the new ``created``
        (no write at all when that is its stamp already: stamps are kept to the second); the
        others are deleted and the new rows created. A refresh of an unchanged patient by the
        same model (deterministic) so writes a timestamp instead of every node and edge again:
        ~0.3 instead of ~8 KB of write-ahead log per save, so the store checkpoints (tens of ms
        each, in a commit) far less often. The stored rows compared with are remembered
        (:mod:`graph.stores.prediction_memory`), and so are the rows after a save that only
        re-stamped: a refresh and its answer read nothing back."""
        self._refuse_read_only("save predictions")  # a save with nothing to write, too
        created = datetime.now(UTC).isoformat(timespec="seconds")
        rows, steps = prediction_rows(patient_id, diagnoses, created, stored.__contains__)
        models = {d.model_id for d in diagnoses}
        wanted = {row["id"]: compared(row) for row in rows}
        before = self._prediction_rows(patient_id)
        state = {row.id: row for row in before if row.model_id in models}
        kept = sorted(pid for pid, row in state.items() if wanted.get(pid) == row.compared)
        restamp = [pid for pid in kept if state[pid].created != created]
        gone = sorted(set(state) - set(kept))
        fresh = [row for row in rows if row["id"] not in state or row["id"] in gone]
        new_ids = {row["id"] for row in fresh}
        statements = []
        if gone:
            statements.append((cy.DELETE_PREDICTIONS, {"pid": patient_id, "ids": gone}))
        if restamp:
            statements.append(
                (cy.RESTAMP_PREDICTIONS, {"pid": patient_id, "ids": restamp, "created": created})
            )
        if fresh:
            statements.append((cy.CREATE_PREDICTIONS, {"pid": patient_id, "rows": fresh}))
        fresh_steps = [step for step in steps if step["prediction"] in new_ids]
        if fresh_steps:
            statements.append((cy.CREATE_EXPLAINED_BY, {"rows": fresh_steps}))
        if not statements:  # every row equal and stamped this second already
            return
        # forgotten first: an interrupt after the commit must not leave the old rows remembered
        self._memory.forget(patient_id)
        with self._transaction("save predictions", keeps_memory=True):
            for cypher, params in statements:
                self.connection.execute(cypher, params)
        if not (fresh or gone):  # only re-stamped: remembered (new nodes are read back when
            # asked, with their concepts' stored names)
            again = set(restamp)
            self._memory.remember(
                patient_id,
                tuple(row.restamped(created) if row.id in again else row for row in before),
            )


def _row(found: list[Any]) -> PredictionRow:
    """A row of :data:`~graph.stores.ladybug_cypher.PREDICTION_ROWS`."""
    from graph.stores.patient_rows import stored_prediction

    pid, concept_id, probability, model_id, rank, paths, sections, release, linked = found[:9]
    name, created = found[9:]
    record = stored_prediction(
        {
            "concept_id": concept_id,
            "name": name,
            "probability": probability,
            "model_id": model_id,
            "paths": paths,
            "rank": rank,
            "created": created,
            "input_sections": sections,
            "kg_release": release,
        }
    )
    return PredictionRow(pid, tuple(found[1:9]), record)


def compared(row: dict[str, Any]) -> tuple[Any, ...]:
    """A prediction row's stored fields but its id and ``created`` (``linked``: the steps it
    links, which a path concept stored since the last save changes), in
    :data:`~graph.stores.ladybug_cypher.PREDICTION_ROWS`'s order."""
    return (
        row["concept_id"],
        row["probability"],
        row["model_id"],
        row["rank"],
        row["paths"],
        row["input_sections"],
        row["kg_release"],
        row["linked"],
    )
