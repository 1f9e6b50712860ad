"""The kgdx REST service (FastAPI): an app factory, one router per resource, all under ``/v1``
(:data:`API_PREFIX`) except ``/healthz``, ``/readyz`` and the clinician viewer (``/``).

Nothing is built at import time: :func:`create_app` takes settings (or reads them when the app
starts), opens the graph store in the lifespan and closes it on shutdown. Run it with
``kgdx serve`` or ``uvicorn --factory api.rest:create_app``.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from fastapi import APIRouter, FastAPI

from api.fair_lock import FairLock
from api.long_lived import freeze_long_lived
from graph.errors import (
    ConfigError,
    InputError,
    KgdxError,
    ModelError,
    QueryError,
    SchemaError,
    StoreError,
    UnknownConceptError,
)
from graph.settings import Settings, get_settings

if TYPE_CHECKING:
    from api.engine import Engine

API_PREFIX = "/v1"

# Most specific first: the first matching class decides the status.
ERROR_STATUS: tuple[tuple[type[KgdxError], int], ...] = (
    (UnknownConceptError, 404),
    (QueryError, 400),
    (SchemaError, 400),
    (InputError, 422),
    (ModelError, 409),  # the request is fine; the server has no (usable) model yet
    (StoreError, 503),
    (ConfigError, 500),
    (KgdxError, 500),
)


def error_status(exc: KgdxError) -> int:
    """HTTP status for one of the project's errors."""
    return next(status for cls, status in ERROR_STATUS if isinstance(exc, cls))


def _warm_extractor(engine: Engine) -> threading.Thread | None:
    """Read the concepts now and make the report extractor (or read it from its cache) in a
    background thread, so /health answers at once and the first report does not wait for it;
    a store that cannot be read leaves the build to the first report (which reports the error)."""
    from extractors.text.light_imports import light_nlp_imports
    from graph.log import logger

    light_nlp_imports()  # here, before any request can import torch (see its docstring)
    try:
        return engine.warm_extractor()
    except KgdxError as exc:
        logger.warning("report extractor not warmed at startup: %s", exc)
        return None


def _checkpoint_thread(store, lock):
    """The embedded store's own checkpoints in a thread, off the event loop
    (``api/checkpoints.py``); ``None`` for Neo4j (no store lock) and a read-only store."""
    if lock is None or store.read_only:
        return None
    from api.checkpoints import BackgroundCheckpoints

    return BackgroundCheckpoints(store, lock).start()


def _one_torch_thread() -> int:
    """Score with one torch thread in the server and in its model worker (the same numbers
    either way). Its ops are tiny: a second intra-op thread only spun on the core the worker
    needs (bench/api_load.py, 20 clients: 73 diagnoses a second with it, 131 without; in
    process, without the worker, 58-75 and 77). The count before, to restore."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    return before


def _include_viewer(app: FastAPI) -> None:
    """The clinician viewer's page and files (``api/routers/viewer.py``), last: its
    ``/patients/{id}`` page must not shadow an API route."""
    try:
        from api.routers import viewer
    except ImportError:  # a checkout without the viewer package
        return
    app.include_router(viewer.router)


def _add_components(app: FastAPI, components: dict) -> None:
    """Add schemas that hand-written request bodies refer to to the app's OpenAPI."""
    generate = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = generate()
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
        return app.openapi_schema or schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None, *, store=None) -> FastAPI:
    """Build the REST app.

    Args:
        settings: runtime settings; from the environment (at startup) when ``None``.
        store: an open :class:`~graph.store.GraphStore` to serve instead of opening one from the
            settings (the app then leaves it open on shutdown).

    The diagnosis model is read from ``settings.resolved_model_dir`` (``KGDX_MODEL_DIR``, where
    ``Engine.train(save_to=...)`` saves it) on the first diagnosis, and again whenever it changes.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from api.engine import Engine
        from api.routers.deps import ModelSlot
        from graph.stores import open_store

        app.state.settings = settings or get_settings()
        switch_interval = sys.getswitchinterval()  # process-wide: restored on shutdown
        sys.setswitchinterval(app.state.settings.server_switch_interval_s)
        owned = store is None
        app.state.store = store if store is not None else open_store(settings=app.state.settings)
        # The embedded database serves one thread at a time, in arrival order (a plain Lock
        # starved diagnoses under reads); the Neo4j driver pools sessions.
        app.state.store_lock = FairLock() if app.state.store.name == "embedded" else None
        if app.state.store.name == "embedded":
            app.state.store.set_query_threads(app.state.settings.server_store_threads)
        directory = app.state.settings.resolved_model_dir
        # The Engine shares the app's store (it is closed below, never through the Engine).
        engine = Engine(store=app.state.store, settings=app.state.settings)
        # the engine holds the store lock around its own store reads and writes only, never
        # around extraction or the model (api/routers/deps.py)
        engine.store_lock = app.state.store_lock
        # the report extractor (~270,000 tracked objects, made at startup or by the first report)
        # out of the collector's reach, as the app's startup objects are (api/long_lived.py)
        engine.on_extractor_made.append(freeze_long_lived)
        app.state.extractor_warmup = (
            _warm_extractor(engine) if app.state.settings.extract_warmup else None
        )
        app.state.model_slot = ModelSlot(engine, directory)
        from api.loop_share import LoopShare
        from api.routers.diagnosis_memo import DiagnosisMemo

        # only when this process is the store's one writer (api/routers/diagnosis_memo.py)
        app.state.diagnosis_memo = DiagnosisMemo() if app.state.store.name == "embedded" else None
        if app.state.diagnosis_memo is not None:
            app.state.model_slot.on_load.append(app.state.diagnosis_memo.model_changed)
        app.state.model_gate = None  # made on first use, on the server's event loop
        from api.routers.diagnoses import stage_locks

        # diagnoses' stages on the loop run in batches and leave it to the others in turn
        app.state.loop_share = LoopShare(
            guard=lambda: stage_locks(app.state),
            batch_s=app.state.settings.server_stage_batch_s,
            share=app.state.settings.server_read_share,
            # the embedded store: a batch's saves share one commit (one sync of the log)
            group=getattr(app.state.store, "commit_group", None),
        )
        from api.model_worker import ModelWorker

        use_worker = app.state.settings.server_model_worker and app.state.store_lock is not None
        # started with the first diagnosis; until its model is warm, diagnoses run here
        app.state.model_worker = ModelWorker() if use_worker else None
        if app.state.model_worker is not None:
            app.state.model_slot.on_load.append(app.state.model_worker.model_changed)
        torch_threads = _one_torch_thread()
        # Objects made at startup (imports, the app) move out of the collector's reach: a full
        # collection otherwise stalled a request by ~75 ms (measured on /health).
        freeze_long_lived()
        app.state.checkpoints = _checkpoint_thread(app.state.store, app.state.store_lock)
        try:
            yield
        finally:
            if app.state.model_worker is not None:
                app.state.model_worker.close()
            ended = True
            if app.state.checkpoints is not None:  # in a thread: it may wait for the lock
                with anyio.CancelScope(shield=True):  # ended before the store closes
                    ended = await anyio.to_thread.run_sync(app.state.checkpoints.close)
            if torch_threads is not None:
                import torch

                torch.set_num_threads(torch_threads)
            sys.setswitchinterval(switch_interval)
            if owned and ended:
                app.state.store.close()
            elif owned:  # a checkpoint still runs on the connection: every commit is in the log
                from graph.log import logger

                logger.warning("the store is left open: its checkpoint did not end in time")

    app = FastAPI(
        title="kgdx",
        summary="Knowledge-graph GNN reasoning for clinical diagnosis, with path explanations.",
        version="0.1.0",
        lifespan=lifespan,
        # "/query/" answers 404, not a 307 to http://<the request's Host header>/query
        redirect_slashes=False,
    )

    # Errors answer application/problem+json and never echo the request (api/problems.py);
    # bodies over KGDX_MAX_REQUEST_BYTES answer 413 before any route reads them.
    from api import problems
    from api.body_limit import BodyLimit

    problems.install(app, error_status)
    app.add_middleware(BodyLimit)
    from api.loop_share import CountRequests

    app.add_middleware(CountRequests)  # outermost: every request counts (api/loop_share.py)

    from api.routers import concepts, diagnoses, health, model, patient_upload, patients, query

    v1 = APIRouter(prefix=API_PREFIX)
    for module in (concepts, patients, diagnoses, model, query):
        v1.include_router(module.router)
    app.include_router(health.router)
    app.include_router(v1)
    _include_viewer(app)
    _add_components(app, patient_upload.openapi_components())
    from api.auth import install

    install(app)  # every route has a policy (api/auth.py); the docs routes get theirs here
    return app
