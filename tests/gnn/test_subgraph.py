"""A patient's subgraph is read from its own record: typed finding edges, sections, batching."""

from __future__ import annotations

import pytest
import torch

from graph.errors import InputError
from graph.records import Concept, Finding, Patient, TextSpan
from graph.sections import ALL_SECTIONS
from graph.subgraph import (
    ABSENT,
    HISTORICAL,
    POSSIBLE,
    PRESENT,
    PatientSubgraph,
    TermIndex,
    batch,
    patient_from_terms,
    patient_subgraph,
    subgraph_of,
)

CARDIOMEGALY, EFFUSION, CONSOLIDATION = "UMLS:C0018800", "UMLS:C0032227", "UMLS:C0521530"
PNEUMOTHORAX, ATELECTASIS, CHF = "UMLS:C0032326", "UMLS:C0004144", "UMLS:C0018802"


def _finding(concept_id: str, section: str = "findings", **assertion) -> Finding:
    return Finding(
        concept_id=concept_id,
        assertion=assertion,
        provenance=TextSpan(doc_id="r1", section=section, sentence="s.", start=0, end=1, text="x"),
    )


@pytest.fixture()
def patient() -> Patient:
    return Patient(
        id="P1",
        findings=(
            _finding(CARDIOMEGALY),
            _finding(EFFUSION, polarity="absent"),
            _finding(CONSOLIDATION, certainty="possible"),
            _finding(PNEUMOTHORAX, temporality="historical"),
            _finding(ATELECTASIS, experiencer="family"),
            _finding(CHF, section="impression"),
            _finding("UMLS:C9999999"),  # not in the KG
            _finding(CARDIOMEGALY, polarity="absent", section="history"),  # present wins
        ),
        labels=(CHF,),
    )


def test_findings_are_typed_edges_and_labels_are_not_edges(patient, seed_kg):
    concepts = {c.id: c for c in seed_kg[0]}
    subgraph = PatientSubgraph.from_patient(patient, concepts=concepts)
    assert subgraph.edges[PRESENT] == (CARDIOMEGALY,)
    assert subgraph.edges[ABSENT] == (EFFUSION, CARDIOMEGALY)
    assert subgraph.edges[POSSIBLE] == (CONSOLIDATION,)
    assert subgraph.edges[HISTORICAL] == (PNEUMOTHORAX,)
    linked = {c for ids in subgraph.edges.values() for c in ids}
    assert ATELECTASIS not in linked  # family history is not the patient's
    assert CHF not in linked and subgraph.labels == (CHF,)  # impression left out, label a target
    assert subgraph.unlinked == ("UMLS:C9999999",)
    assert subgraph.observed == (CARDIOMEGALY,)
    assert subgraph.excluded == (EFFUSION,)  # cardiomegaly is also present: observed only
    assert subgraph.concepts[CARDIOMEGALY].name == "cardiomegaly"
    assert len(subgraph.findings[CARDIOMEGALY]) == 2
    everything = PatientSubgraph.from_patient(patient, concepts=concepts, sections=ALL_SECTIONS)
    assert CHF in everything.edges[PRESENT]


def test_the_store_subgraph_reads_that_patient_only(chest_store, cohort_patients):
    patient = cohort_patients[3]
    from_store = patient_subgraph(chest_store, patient.id)
    from_record = subgraph_of(chest_store, patient)
    assert from_store == from_record
    assert from_store.patient_id == patient.id and from_store.num_edges > 0
    with pytest.raises(InputError, match="unknown patient"):
        patient_subgraph(chest_store, "NOBODY")


def test_term_index_reads_node_ids_xrefs_and_obsolete_ids(chest_kg):
    index = TermIndex.from_kg(chest_kg)
    cardiomegaly = index.index(CARDIOMEGALY)
    assert cardiomegaly is not None
    assert index.index("HP:0001640") == cardiomegaly  # its HPO xref
    assert index.index("UMLS:C9999999") is None
    assert index.index(CHF) is None  # a disease is a candidate, not a term
    # the code handed to task cases resolves back to the same term through the KG's lookup
    assert chest_kg.resolve_terms([index.code(cardiomegaly)])[0] == [cardiomegaly]
    other = TermIndex(["A:1", "A:2"], {"HP:1": 1}, {"HP:OLD": "HP:1"})
    assert (other.index("A:1"), other.index("HP:1"), other.index("HP:OLD")) == (0, 1, 1)
    # a node that is not a term (a DOID disease node) maps through an xref that is one
    disease_node = Concept(id="DOID:9", name="microcephaly", kind="disease", xrefs=("HP:1",))
    assert other.index("DOID:9") is None and other.of_concept("DOID:9", disease_node) == 1


def test_batch_rows_depend_on_their_patient_only(chest_store, chest_kg):
    index = TermIndex.from_kg(chest_kg)
    ids = chest_store.patient_ids()[:5]
    subgraphs = [patient_subgraph(chest_store, pid) for pid in ids]
    together = batch(subgraphs, index)
    assert len(together) == 5 and together.patient_ids == ids
    for i, subgraph in enumerate(subgraphs):
        alone = batch([subgraph], index)
        for relation in together.terms:
            assert together.terms[relation][i] == alone.terms[relation][0]
    observed, excluded = together.padded("observed"), together.padded("excluded")
    assert observed.shape[0] == 5 and observed.dtype == torch.long
    for row_obs, row_exc in zip(observed.tolist(), excluded.tolist(), strict=True):
        assert not (set(row_obs) - {-1}) & (set(row_exc) - {-1})
    edges = together.edge_index_dict[("patient", PRESENT, "term")]
    assert edges.shape == (2, sum(len(r) for r in together.terms[PRESENT]))
    with pytest.raises(InputError, match="duplicate"):
        batch([subgraphs[0], subgraphs[0]], index)


def test_patients_given_as_terms(chest_kg):
    patient = patient_from_terms(["HP:0001640"], ["UMLS:C0032227"], patient_id="Q")
    subgraph = PatientSubgraph.from_patient(patient)
    assert subgraph.observed == ("HP:0001640",) and subgraph.excluded == ("UMLS:C0032227",)
    rows = batch([subgraph], TermIndex.from_kg(chest_kg))
    assert rows.scored("observed") == [[TermIndex.from_kg(chest_kg).index(CARDIOMEGALY)]]
    with pytest.raises(InputError, match="at least one"):
        patient_from_terms([], [])
    with pytest.raises(InputError, match="not a concept id"):
        patient_from_terms(["cardiomegaly"])
