"""``/v1/patients/{id}/diagnoses``: ``POST`` runs the model on a stored patient (ranked
diagnoses, calibrated probabilities, explanation paths with evidence, stored so Cypher finds
them); ``GET`` returns the stored ones with the model and KG release they came from."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from api.auth import AUTH_RESPONSES, CLINICAL
from api.loop_share import StageRefused
from api.routers.deps import LockedStore, ModelSlot, StoreDep, model_held
from api.routers.diagnosis_memo import memo_of
from api.routers.patients import require_stored
from api.routers.schemas import PatientIdPath, error_responses
from api.routers.v1_schemas import DiagnosisList, DiagnosisPublic, PathPublic
from graph.store import GraphStore, StoredPrediction

router = APIRouter(
    prefix="/patients/{patient_id}/diagnoses",
    tags=["diagnoses"],
    dependencies=[Depends(CLINICAL)],
    responses=AUTH_RESPONSES,
)


def public_diagnoses(patient_id: str, stored: list[StoredPrediction]) -> DiagnosisList:
    return DiagnosisList(
        patient_id=patient_id,
        diagnoses=[
            DiagnosisPublic(
                concept_id=s.diagnosis.concept_id,
                name=s.diagnosis.name,
                probability=s.diagnosis.probability,
                rank=s.rank,
                paths=[PathPublic.model_validate(p.model_dump()) for p in s.diagnosis.paths],
                model_id=s.diagnosis.model_id,
                kg_release=s.diagnosis.kg_release,
                created=s.created,
                input_sections=s.diagnosis.input_sections,
            )
            for s in stored
        ],
    )


def _model_gate(request: Request) -> anyio.Lock:
    """Diagnoses wait for the model here, on the event loop, not each in a threadpool thread:
    20 queued diagnoses hold one thread, and the reads keep the others."""
    gate = request.app.state.model_gate
    if gate is None:
        gate = request.app.state.model_gate = anyio.Lock()
    return gate


@router.post(
    "",
    response_model=DiagnosisList,
    responses={
        200: {
            "description": "The diagnoses; header X-Kgdx-Diagnosis: run (the model ran) or "
            "remembered (the same patient, model and parameters were diagnosed before)"
        },
        **error_responses(404, 409, 422),
    },
)
async def diagnose(
    patient_id: PatientIdPath,
    request: Request,
    response: Response,
    top_k: Annotated[int, Query(ge=1, le=50)] = 3,
    paths_per_diagnosis: Annotated[int, Query(ge=0, le=10)] = 2,
    refresh: Annotated[
        bool, Query(description="Run the model even if this was diagnosed unchanged before")
    ] = False,
) -> DiagnosisList:
    """Run the served model on a stored patient: the ``top_k`` diagnoses, most probable first,
    with calibrated probabilities and up to ``paths_per_diagnosis`` explanation paths each (with
    the evidence of every step). They are stored, replacing this model's earlier ones. No body.

    The same request for a patient unchanged since, with the same model, answers what the model
    answered then (it is deterministic) without running it again, unless ``refresh``.
    """
    memo = memo_of(request.app.state)
    key = (patient_id, top_k, paths_per_diagnosis)
    stamp = request.app.state.model_slot.current_stamp()
    if memo is not None and not refresh:
        remembered = memo.get(key, stamp)
        if remembered is not None:
            response.headers["X-Kgdx-Diagnosis"] = "remembered"
            return remembered
    version = memo.version(patient_id) if memo is not None else 0
    share = request.app.state.loop_share
    share.diagnoses += 1
    ran = await _run_with_worker(request, patient_id, top_k, paths_per_diagnosis, version)
    if ran is None:
        async with _model_gate(request):
            ran = await _run_on_loop(request, patient_id, top_k, paths_per_diagnosis)
            ran = ran or await run_in_threadpool(
                _run, request, patient_id, top_k, paths_per_diagnosis
            )
    answer, stamp = ran
    if memo is not None:
        memo.put(key, stamp, version, answer)
    response.headers["X-Kgdx-Diagnosis"] = "run"
    return answer


async def _run_on_loop(
    request: Request, patient_id: str, top_k: int, paths_per_diagnosis: int
) -> tuple[DiagnosisList, int | None] | None:
    """The diagnosis on the event loop itself when it can run there: the embedded store, the
    current model loaded and the model lock free this instant. It waits for the store lock on
    the loop (:meth:`api.fair_lock.FairLock.acquire_async`: reads hold it for a store call,
    ~1 ms), then holds both locks for the whole diagnosis (~8-30 ms). ``None`` otherwise: the
    caller runs it in a worker thread (a model load never stalls the loop; Neo4j answers over
    the network, so its waits stay off the loop too).

    Before, a diagnosis that found the store lock taken by a read ran in a worker thread (1-2
    times per 10 s of the load bench's mixed phase): beside 20 readers it got a sliver of the
    GIL (below) while the other diagnoses queued behind it at the model gate.

    A diagnosis in a worker thread competes with the event loop for the GIL: beside 20 clients
    reading remembered patients (answered on the loop) it got a tenth of it and ran at 4 a
    second. On the loop it runs at full speed, in a batch of stages, and :mod:`api.loop_share`
    gives the other requests their turn between batches."""
    state = request.app.state
    slot = state.model_slot
    if state.store_lock is None or not slot.is_loaded():
        return None

    def run() -> tuple[DiagnosisList, int | None] | None:
        if not slot.is_loaded():  # replaced on disk since: load it in a thread
            return None
        return _diagnose(state.store, slot, patient_id, top_k, paths_per_diagnosis)

    return await _stage(request, run, patient_id)


async def _run_with_worker(
    request: Request, patient_id: str, top_k: int, paths_per_diagnosis: int, version: int
) -> tuple[DiagnosisList, int | None] | None:
    """The diagnosis in three stages, the model's in the model worker process
    (:mod:`api.model_worker`): on the loop, the patient's subgraph (remembered for an
    unchanged patient and the same model: no store call); in the worker, the
    probabilities and ranked paths while the loop serves other requests and other diagnoses'
    store stages; on the loop again, the diagnoses built and saved. ``None`` when it cannot run
    so (no worker, the model not loaded here or not yet in the worker, a store lock or model
    lock taken for a reload, the worker failing this job, the patient written or deleted
    between the stages, ``version`` being the memo's before the first): the caller runs it
    in process."""
    from api.model_worker import WorkerUnavailable

    state = request.app.state
    worker, slot = state.model_worker, state.model_slot
    if worker is None or not slot.is_loaded():
        return None
    engine = slot.engine
    run, stamp = engine.result, slot.current_stamp()
    if run is None or not worker.serves(run):
        return None
    memo = memo_of(state)
    given = memo.diagnosis_input(patient_id, version, run) if memo is not None else None
    if given is None:  # not remembered for this model and version: read it on the loop
        given = await _stage(request, lambda: engine.diagnosis_input(patient_id), patient_id)
        if given is None or given.run is not run:  # another model was loaded meanwhile
            return None
        if memo is not None:
            memo.put_diagnosis_input(patient_id, version, given)
    try:
        scored = await worker.score(run, given.patient, top_k, paths_per_diagnosis)
    except WorkerUnavailable:
        return None

    def save() -> DiagnosisList:
        if engine.result is not run:  # another model was loaded meanwhile
            raise WorkerUnavailable("the model changed")
        # the patient routes bump its version under the store lock
        if memo is not None and memo.version(patient_id) != version:
            raise WorkerUnavailable("the patient changed")
        diagnoses = engine.save_scored(given, scored)
        return _answer(state.store, patient_id, diagnoses)

    try:
        answer = await _stage(request, save)
    except WorkerUnavailable:
        return None
    return (answer, stamp) if answer is not None else None


async def _stage(request: Request, work, patient_id: str | None = None):
    """``work()`` on the loop in its turn, in a batch of stages (:meth:`LoopShare.run`) that
    holds the model lock and the store lock (:func:`stage_locks`); ``None`` if a reload held
    the model lock too long. With ``patient_id``, the patient must still be stored."""
    state = request.app.state

    def checked():
        if patient_id is not None:
            require_stored(state.store, patient_id)
        return work()

    try:
        return await state.loop_share.run(checked)
    except StageRefused:
        return None


@contextlib.asynccontextmanager
async def stage_locks(state) -> AsyncIterator[bool]:
    """The context of a batch of store stages on the loop (``app.state.loop_share``'s guard):
    the model lock if it is free this instant (it yields whether it got it: stages that need
    the model wait for a batch that has it, or run in a thread once a reload has held it too
    long), then the store lock, waited for on the loop
    (:meth:`~api.fair_lock.FairLock.acquire_async`: reads hold it for a store call, ~1 ms).
    The engine's own store calls inside do not take the store lock again."""
    slot, store_lock = state.model_slot, state.store_lock
    model = slot.lock.acquire(blocking=False)
    try:
        await store_lock.acquire_async()
        try:
            with slot.engine.store_lock_taken():
                yield model
        finally:
            store_lock.release()
    finally:
        if model:
            slot.lock.release()


def _answer(store: GraphStore, patient_id: str, diagnoses: list) -> DiagnosisList:
    """The public answer of diagnoses just saved: as ``GET`` reads them back."""
    stored = store.get_predictions(patient_id)
    models = {d.model_id for d in diagnoses}
    return public_diagnoses(patient_id, [s for s in stored if s.diagnosis.model_id in models])


def _run(
    request: Request, patient_id: str, top_k: int, paths_per_diagnosis: int
) -> tuple[DiagnosisList, int | None]:
    state = request.app.state
    lock = state.store_lock
    store = state.store if lock is None else LockedStore(state.store, lock)  # per call
    require_stored(store, patient_id)
    with model_held(request):  # the engine takes the store lock for its own store calls
        return _diagnose(store, state.model_slot, patient_id, top_k, paths_per_diagnosis)


def _diagnose(
    store: GraphStore, slot: ModelSlot, patient_id: str, top_k: int, paths_per_diagnosis: int
) -> tuple[DiagnosisList, int | None]:
    """Run the slot's loaded model on a stored patient (its lock held by the caller); the
    public answer and the model's stamp."""
    stamp = slot.current_stamp()
    diagnoses = slot.engine.diagnose(
        patient_id, top_k=top_k, paths_per_diagnosis=paths_per_diagnosis
    )
    return _answer(store, patient_id, diagnoses), stamp


@router.get("", response_model=DiagnosisList, responses=error_responses(404))
def stored_diagnoses(patient_id: PatientIdPath, store: StoreDep) -> DiagnosisList:
    """The stored diagnoses of every model that diagnosed the patient, by model then rank,
    each with its model id, KG release and paths (an empty list when none)."""
    require_stored(store, patient_id)
    return public_diagnoses(patient_id, store.get_predictions(patient_id))
