"""``Engine``: the Python facade that wires store, extractor, graph builder and GNN.

Usage::

    from api.engine import Engine
    engine = Engine(store="embedded")
    engine.build_seed_kg()
    engine.ingest(patients)              # extracts findings from the reports, then stores
    result = engine.train(domain="chest")  # the inductive reasoner over the chest seed KG
    diagnoses = engine.diagnose("P007", top_k=3)
    engine.diagnose_record(patient)      # a patient that is not stored
    engine.explain("P007", "UMLS:C0032285")

Diagnosis is inductive: a patient is read alone from the store as its subgraph and scored by
the trained reasoner (:mod:`gnn.reasoning`); other stored patients never change its scores.
It holds no domain logic: each step calls the layer that owns it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.engine_diagnosis import Diagnosing, check_finding_count
from api.engine_extraction import Extracting
from graph.errors import InputError
from graph.records import ImageEvidence, Patient, SectionSelection
from graph.settings import Settings, get_settings
from graph.store import GraphStore, StoreCounts

if TYPE_CHECKING:
    from extractors.image.predict import ImageExtractor
    from gnn.reasoning.knowledge import PhenotypeKG
    from gnn.reasoning.patients import ReasoningRun
    from gnn.reasoning.pipeline import TrainConfig


class Engine(Diagnosing, Extracting):
    """Build the KG, ingest patients, train the reasoner and diagnose with explanations.

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
        self.result: ReasoningRun | None = None
        self._init_extraction()
        self._kgs: dict[str, PhenotypeKG] = {}  # KG views by domain, read once
        # When set (the REST service's store lock), diagnose / diagnose_record / explain hold it
        # around their store reads and writes only, never around extraction or the model.
        self.store_lock: threading.Lock | None = None
        self._lock_holder = threading.local()  # set by store_lock_taken()

    @contextmanager
    def store_lock_taken(self) -> Iterator[None]:
        """For a caller that already holds :attr:`store_lock` around a whole diagnosis: this
        thread's engine calls inside the block do not take it again (it is not re-entrant)."""
        self._lock_holder.held = True
        try:
            yield
        finally:
            self._lock_holder.held = False

    def _lock_in_force(self) -> threading.Lock | None:
        if self.store_lock is None or getattr(self._lock_holder, "held", False):
            return None
        return self.store_lock

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
        self._kgs = {}
        return self.store.counts()

    # ------------------------------------------------------------------ patients
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
                exactly as given.
            progress: called with each stored patient (e.g. to advance a progress bar).

        Returns:
            The patients as stored (with their findings).
        """
        stored = []
        for patient in patients:
            record = self.extract(patient) if extract else patient
            check_finding_count(record, self.settings.max_patient_findings)
            if keep_images:
                record = self._keep_stored_images(record)
            self.store.upsert_patient(record)
            stored.append(record)
            if progress is not None:
                progress(record)
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

        return ingest_images(
            self.store, paths, settings=self.settings, patient_id=patient_id, extractor=extractor
        )

    # ------------------------------------------------------------------ model
    def train(
        self,
        *,
        domain: str | None = None,
        model: str = "sage",
        patient_ids: list[str] | None = None,
        seed: int | None = None,
        config: TrainConfig | None = None,
        save_to: str | Path | None = None,
        sections: SectionSelection | str | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> ReasoningRun:
        """Train the inductive reasoner (kgdx's model and its baselines) on stored patients.

        Each patient is read alone as its subgraph (:func:`graph.subgraph.patient_subgraph`):
        present findings are observed, absent ones excluded (possible and historical ones are
        kept in the subgraph, not scored); its known diagnoses (``labels``) are the targets. The
        patients are split by diagnosis, seeded (60/20/20: train, validation for the epoch and
        temperature, held-out test), and every method is evaluated on the test part
        (``result.evaluation``, ``result.metrics``).

        Args:
            domain: the KG part scored: ``chest`` (the chest seed's diseases) or ``rare`` (HPO
                + OMIM); ``None``: ``rare`` when a label is an OMIM id, else ``chest``.
            model: the KG encoder (``sage``, ``rgcn``, ``hgt``), used when ``config`` is None.
            patient_ids: which stored patients (all when ``None``).
            seed: split and training seed (``settings.seed`` when ``None``).
            config: training settings (:class:`gnn.reasoning.pipeline.TrainConfig`); the
                chest domain's default is :func:`gnn.reasoning.patients.chest_config`.
            save_to: write the run folder there (``load_model`` and ``kgdx serve`` read it).
            sections: which report sections' findings are the model's input, a
                :class:`~graph.records.SectionSelection` or its spelling (``"-impression"``,
                ``"findings,indication"``, ``"all"``; see :func:`graph.sections.parse_sections`).
                ``None``: :data:`graph.sections.FEATURE_SECTIONS`, every section but the
                impression, which often names the diagnosis the model is asked for. Saved with
                the model and used again by :meth:`diagnose`.
            progress: called with ``(stage, done, total)`` while training.

        Raises:
            InputError: no stored patients, none with a candidate diagnosis, or a section name
                that is not known.
            StoreError: the store holds no KG of the domain.
        """
        from gnn.reasoning.patients import check_domain, chest_config, train_on_subgraphs
        from gnn.reasoning.pipeline import TrainConfig
        from graph.subgraph import subgraph_of

        ids = patient_ids if patient_ids is not None else self.store.patient_ids()
        if not ids:
            raise InputError("no stored patients to train on; ingest a cohort first")
        patients = [self.store.get_patient(pid) for pid in ids]
        selection = _sections(sections, patients)
        domain = check_domain(domain, [label for p in patients for label in p.labels])
        kg = self.knowledge(domain)
        seed = self.settings.seed if seed is None else seed
        if config is None:
            config = (
                chest_config(kg.num_diseases, model=model)
                if domain == "chest"
                else TrainConfig(model=model)
            )
        subgraphs = [subgraph_of(self.store, p, sections=selection) for p in patients]
        result = train_on_subgraphs(
            subgraphs, kg=kg, config=config, sections=selection, seed=seed, progress=progress
        )
        if save_to is not None:
            result.save(save_to)
        self.result = result
        return result

    def load_model(self, directory: str | Path, *, force: bool = False) -> ReasoningRun:
        """Use a saved run: one of :meth:`train` (``save_to``) or of ``kgdx train``.

        Raises:
            ModelError: no run in ``directory``, a damaged one, or one trained on another KG
                release (unless ``force``).
        """
        from gnn.reasoning.patients import ReasoningRun

        self.result = ReasoningRun.load(directory, self.store, force=force, kg_cache=self._kgs)
        return self.result

    def knowledge(self, domain: str = "rare") -> PhenotypeKG:
        """The store's KG view of ``domain`` (read once, until the KG changes)."""
        from gnn.reasoning.knowledge import PhenotypeKG

        if domain not in self._kgs:
            self._kgs[domain] = PhenotypeKG.from_store(self.store, domain=domain)
        return self._kgs[domain]


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
