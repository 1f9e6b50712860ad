"""The report-extraction half of :class:`api.engine.Engine` (mixed in): the report extractor
over the store's concepts, made once (on first use, or in a warm-up thread the REST service
starts), with listeners told when it has been made (the service freezes it out of the
collector's reach: :mod:`api.long_lived`), and a patient's findings extracted from its reports.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from graph.records import ImageEvidence, Patient

if TYPE_CHECKING:
    from extractors.text import ReportExtractor
    from graph.settings import Settings
    from graph.store import GraphStore


class Extracting:
    """Engine methods that make the report extractor and extract; :meth:`_init_extraction`
    sets their state (the engine calls it)."""

    if TYPE_CHECKING:
        settings: Settings
        store: GraphStore

    def _init_extraction(self) -> None:
        self._extractor: ReportExtractor | None = None
        self._extractor_lock = threading.Lock()  # one build, shared by a warm-up and requests
        # called whenever the report extractor has been made, in the thread that made it, after
        # the extractor's lock is released (see _made_extractor)
        self.on_extractor_made: list[Callable[[], Any]] = []

    @property
    def extractor(self) -> ReportExtractor:
        """The report extractor over the store's concepts, made on first use: read from the
        extractor cache when it holds this KG's (``extractors.text.cache``), else built (and
        cached). A use while :meth:`warm_extractor` runs waits for it instead of building."""
        from extractors.text.cache import extractor_for_store

        return self._made_extractor(lambda: extractor_for_store(self.store, settings=self.settings))

    @property
    def extractor_built(self) -> bool:
        """Whether :attr:`extractor` is made (its next use takes no time)."""
        return self._extractor is not None

    def _made_extractor(self, make: Callable[[], ReportExtractor]) -> ReportExtractor:
        """The report extractor, made by ``make`` under its lock unless it is made already (one
        build, whoever asks first). Each :attr:`on_extractor_made` listener is then called once,
        outside the lock (a listener may use the extractor); its failure is logged, not raised
        (the extractor is made, and the request that made it goes on)."""
        with self._extractor_lock:
            made = self._extractor is None
            if made:
                self._extractor = make()
            extractor = self._extractor
        if made:
            from graph.log import logger

            for listener in self.on_extractor_made:
                try:
                    listener()
                except Exception:
                    logger.exception("report extractor: a listener of its making failed")
        return extractor

    def warm_extractor(self) -> threading.Thread | None:
        """Make the report extractor in a background thread, so the first report does not wait
        for it (the REST service calls this at startup).

        The store is read here, in the caller's thread (0.15 s for the default KG); the thread
        only builds from what was read, so it never touches the store.

        Returns:
            The started thread, or ``None`` when the store holds no concepts.
        """
        from graph.kg_hash import read_concept_table

        table = read_concept_table(self.store)
        if not table.num_rows:
            return None
        thread = threading.Thread(
            target=self._warm, args=(table,), name="kgdx-extractor-warmup", daemon=True
        )
        thread.start()
        return thread

    def _warm(self, table: Any) -> None:
        import time

        from extractors.text.cache import extractor_for_table
        from graph.log import logger

        started = time.perf_counter()
        logger.info("report extractor: warming up in the background (%d concepts)", len(table))
        try:
            self._made_extractor(
                lambda: extractor_for_table(table, settings=self.settings, what="KG in the store")
            )
        except Exception as exc:  # the first report then builds it and reports the error
            logger.warning("report extractor: warm-up failed (%s)", exc)
            return
        logger.info("report extractor: ready in %.1fs", time.perf_counter() - started)

    def extract(self, patient: Patient) -> Patient:
        """The patient with findings extracted from its reports (image findings are kept)."""
        text_findings = [
            finding
            for report in patient.reports
            for finding in self.extractor.extract(report.text, report.id)
        ]
        kept = [f for f in patient.findings if isinstance(f.provenance, ImageEvidence)]
        return patient.model_copy(update={"findings": tuple(kept + text_findings)})
