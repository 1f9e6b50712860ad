"""``Engine``: the Python facade that wires store, extractor, graph builder and GNN.

Usage::

    from api.engine import Engine
    engine = Engine(store="embedded")
    engine.build_seed_kg()
    engine.ingest(patients)              # extracts findings from the reports, then stores
    result = engine.train(model="rgcn")
    diagnoses = engine.diagnose(patient_id="P007", top_k=3)

It holds no domain logic: each step calls the layer that owns it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graph.errors import InputError, ModelError
from graph.records import Diagnosis, ImageEvidence, Patient, SectionSelection
from graph.settings import Settings, get_settings
from graph.store import GraphStore, StoreCounts

if TYPE_CHECKING:
    from extractors.image.predict import ImageExtractor
    from extractors.text import ReportExtractor
    from gnn.train import TrainResult
    from graph.subgraph import PatientGraph


class Engine:
    """Build the KG, ingest patients, train a GNN and diagnose with explanations.

    Args:
        store: a store instance, class or registry name (``None``: ``settings.store``).
        settings: runtime settings; from the environment when ``None``.
    """

    def __init__(
        self, *, store: GraphStore | str | None = None, settings: Settings | None = None
    ) -> None:
        from graph.stores import open_store

        self.settings = settings or (
            store.settings if isinstance(store, GraphStore) else get_settings()
        )
        self.store = open_store(store, settings=self.settings)
        self.result: TrainResult | None = None
        self._extractor: ReportExtractor | None = None
        self._extractor_lock = threading.Lock()  # one build, shared by a warm-up and requests
        self._graph: PatientGraph | None = None

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------ knowledge graph
    def build_seed_kg(
        self, *, concepts_path: str | Path | None = None, relations_path: str | Path | None = None
    ) -> StoreCounts:
        """Load the curated chest seed KG (``data/kg/``) into the store; returns store counts."""
        from kg_loaders.seed import read_seed_concepts, read_seed_relations

        concepts = read_seed_concepts(concepts_path)
        relations = read_seed_relations(relations_path, concepts=concepts)
        self.store.upsert_concepts(concepts)
        self.store.upsert_relations(relations)
        self._extractor = None
        self._graph = None
        return self.store.counts()

    @property
    def extractor(self) -> ReportExtractor:
        """The report extractor over the store's concepts, made on first use: read from the
        extractor cache when it holds this KG's (``extractors.text.cache``), else built (and
        cached). A use while :meth:`warm_extractor` runs waits for it instead of building."""
        with self._extractor_lock:
            if self._extractor is None:
                from extractors.text.cache import extractor_for_store

                self._extractor = extractor_for_store(self.store, settings=self.settings)
            return self._extractor

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
            with self._extractor_lock:
                if self._extractor is None:
                    self._extractor = extractor_for_table(
                        table, settings=self.settings, what="KG in the store"
                    )
        except Exception as exc:  # the first report then builds it and reports the error
            logger.warning("report extractor: warm-up failed (%s)", exc)
            return
        logger.info("report extractor: ready in %.1fs", time.perf_counter() - started)

    # ------------------------------------------------------------------ patients
    def extract(self, patient: Patient) -> Patient:
        """The patient with findings extracted from its reports (image findings are kept)."""
        text_findings = [
            finding
            for report in patient.reports
            for finding in self.extractor.extract(report.text, report.id)
        ]
        kept = [f for f in patient.findings if isinstance(f.provenance, ImageEvidence)]
        return patient.model_copy(update={"findings": tuple(kept + text_findings)})

    def ingest(
        self,
        patients: Iterable[Patient],
        *,
        extract: bool = True,
        keep_images: bool = True,
        progress: Callable[[Patient], Any] | None = None,
    ) -> list[Patient]:
        """Extract findings from each patient's reports (when ``extract``) and store it.

        Args:
            patients: patients with reports (and known ``labels`` for training).
            extract: run the text extractor; ``False`` stores the findings as given.
            keep_images: a patient given without images keeps the images, image findings and
                DICOM id mapping stored for it (``ingest_images``); ``False`` stores the patient
                exactly as given (``PUT /patients/{id}``).
            progress: called with each stored patient (e.g. to advance a progress bar).

        Returns:
            The patients as stored (with their findings).
        """
        stored = []
        for patient in patients:
            record = self.extract(patient) if extract else patient
            _check_finding_count(record, self.settings.max_patient_findings)
            if keep_images:
                record = self._keep_stored_images(record)
            self.store.upsert_patient(record)
            stored.append(record)
            if progress is not None:
                progress(record)
        self._graph = None
        return stored

    def _keep_stored_images(self, record: Patient) -> Patient:
        """A reports-only record keeps the images, image findings and source-id mapping that
        ``ingest_images`` stored for that patient (the store replaces a patient as a whole)."""
        if record.images:
            return record
        try:
            old = self.store.get_patient(record.id)
        except InputError:
            return record
        image_findings = tuple(f for f in old.findings if isinstance(f.provenance, ImageEvidence))
        from api.image_ingest import SOURCE_IDS

        attributes = dict(record.attributes)
        if SOURCE_IDS in old.attributes:
            attributes.setdefault(SOURCE_IDS, old.attributes[SOURCE_IDS])
        if not old.images and attributes == record.attributes:
            return record
        return record.model_copy(
            update={
                "images": old.images,
                "findings": record.findings + image_findings,
                "attributes": attributes,
            }
        )

    def ingest_images(
        self,
        paths: Iterable[str | Path],
        *,
        patient_id: str | None = None,
        extractor: ImageExtractor | None = None,
    ) -> Patient:
        """De-identify and predict image files and merge them into a stored patient.

        See :func:`api.image_ingest.ingest_images` (the DICOM PatientID mapping stays in the
        store; nothing is written when a file is bad).
        """
        from api.image_ingest import ingest_images

        patient = ingest_images(
            self.store, paths, settings=self.settings, patient_id=patient_id, extractor=extractor
        )
        self._graph = None
        return patient

    # ------------------------------------------------------------------ model
    def train(
        self,
        *,
        model: str = "rgcn",
        patient_ids: list[str] | None = None,
        hops: int = 2,
        seed: int | None = None,
        baseline: bool = True,
        save_to: str | Path | None = None,
        sections: SectionSelection | str | None = None,
        **train_kwargs: Any,
    ) -> TrainResult:
        """Train a GNN on the stored patients (or ``patient_ids``) over their KG neighbourhood.

        The graph holds the ``hops``-hop KG neighbourhood of the patients' findings and known
        diagnoses (``store.subgraph``), so a large KG does not become a large model.

        The logistic-regression baseline is fitted on the same split and its metrics are added
        as ``result.metrics["baseline_<split>"]``.

        Args:
            sections: which report sections' findings are the model's input, a
                :class:`~graph.records.SectionSelection` or its spelling (``"-impression"``,
                ``"findings,indication"``, ``"all"``; see :func:`graph.sections.parse_sections`).
                ``None``: :data:`graph.sections.FEATURE_SECTIONS`, every section but the
                impression, which often names the diagnosis the model is asked for. Saved with
                the model and used again by :meth:`diagnose`.

        Raises:
            InputError: no stored patients, or a section name that is not known.
        """
        from gnn.baseline import logistic_baseline
        from gnn.dataset import patient_labels
        from gnn.train import train
        from graph.sections import select_patient
        from graph.subgraph import build_patient_graph

        ids = patient_ids if patient_ids is not None else self.store.patient_ids()
        if not ids:
            raise InputError("no stored patients to train on; ingest a cohort first")
        patients = [self.store.get_patient(pid) for pid in ids]
        selection = _sections(sections, patients)
        seeds = {f.concept_id for p in patients for f in select_patient(p, selection).findings}
        seeds |= {label for p in patients for label in p.labels}
        neighbourhood = self.store.subgraph(seeds, hops=hops)
        graph = build_patient_graph(
            patients, neighbourhood.concepts, neighbourhood.relations, sections=selection
        )
        result = train(
            graph=graph,
            patients=patients,
            model=model,
            seed=self.settings.seed if seed is None else seed,
            **train_kwargs,
        )
        if baseline:
            labels = patient_labels(patients, graph, result.candidate_ids)
            masks = _masks(graph.patient_ids, result.splits)
            for split, metrics in logistic_baseline(graph, labels, masks).items():
                result.metrics[f"baseline_{split}"] = metrics
        if save_to is not None:
            result.save(save_to)
        self.result, self._graph = result, graph
        return result

    def load_model(self, directory: str | Path) -> TrainResult:
        """Use a model saved by :meth:`TrainResult.save`."""
        from gnn.train import TrainResult

        self.result = TrainResult.load(directory)
        self._graph = None
        return self.result

    def patient_graph(self) -> PatientGraph:
        """The graph of every stored patient in the trained model's vocabulary (cached)."""
        from graph.subgraph import patient_graph_from_store

        if self.result is None:
            raise ModelError("no model: call train(...) or load_model(...) first")
        if self._graph is None:
            self._graph = patient_graph_from_store(
                self.store, vocabulary=self.result.vocabulary, sections=self.result.sections
            )
        return self._graph

    def diagnose(
        self, patient_id: str, *, top_k: int = 3, paths_per_diagnosis: int = 2
    ) -> list[Diagnosis]:
        """Top diagnoses of a stored patient with explanation paths; also saved to the store.

        The model reads the patient's findings of the report sections it was trained on; each
        diagnosis names them (``Diagnosis.input_sections``).

        Raises:
            ModelError: no trained or loaded model.
            InputError: the patient is not stored.
        """
        from gnn.predict import diagnose_patient

        if self.result is None:
            raise ModelError("no model: call train(...) or load_model(...) first")
        self.store.get_patient(patient_id)
        graph = self.patient_graph()
        if patient_id not in graph.patient_ids:  # stored after the graph was built
            self._graph = None
            graph = self.patient_graph()
        diagnoses = diagnose_patient(
            self.result, graph, patient_id, top_k=top_k, paths_per_diagnosis=paths_per_diagnosis
        )
        self.store.save_predictions(patient_id, diagnoses)
        return diagnoses


def _sections(
    sections: SectionSelection | str | None, patients: Iterable[Patient]
) -> SectionSelection:
    """The selection to train with; its names must be sections the extractor writes or the
    stored mentions carry (a misspelt ``impresion`` would leave the impression in)."""
    from extractors.text.rules import section_rules
    from graph.records import TextSpan
    from graph.sections import FEATURE_SECTIONS, check_known_sections, parse_sections

    if sections is None:
        return FEATURE_SECTIONS
    selection = parse_sections(sections) if isinstance(sections, str) else sections
    stored = {
        f.provenance.section.lower()
        for p in patients
        for f in p.findings
        if isinstance(f.provenance, TextSpan) and f.provenance.section
    }
    written = {rule.category for rule in section_rules()}  # what the extractor names
    return check_known_sections(selection, written | stored)


def _masks(patient_ids: list[str], splits: dict[str, list[str]]) -> dict[str, Any]:
    import torch

    position = {pid: i for i, pid in enumerate(patient_ids)}
    masks = {}
    for name, members in splits.items():
        mask = torch.zeros(len(patient_ids), dtype=torch.bool)
        mask[[position[pid] for pid in members]] = True
        masks[name] = mask
    return masks


def _check_finding_count(patient: Patient, limit: int) -> None:
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
