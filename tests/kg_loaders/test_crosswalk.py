"""Crosswalk: one node per UMLS CUI across UMLS, SNOMED CT, HPO, DO and HPO annotations."""

from __future__ import annotations

import pytest

from graph.kg_tables import table_relations
from graph.records import Concept, ConceptKind
from kg_loaders.columns import row_tables
from kg_loaders.crosswalk import Crosswalk, merge_concepts
from kg_loaders.doreports import DoReportsReader
from kg_loaders.hpoa import HpoaReader
from kg_loaders.obo import OboReader
from kg_loaders.snomed import SnomedReader
from kg_loaders.umls import UmlsReader


def rewritten(crosswalk, streams):
    """The crosswalk's relation tables for ``(rows, sources)`` streams, as records."""
    batches = ((table, sources) for rows, sources in streams for table in row_tables(rows))
    for rel_type, table in crosswalk.relation_tables(batches):
        yield from table_relations(rel_type, table)


def run(readers):
    crosswalk = Crosswalk()
    crosswalk.index(r.concepts() for r in readers)
    concepts = {c.id: c for c in crosswalk.concepts(r.concepts() for r in readers)}
    relations = list(rewritten(crosswalk, (s for r in readers for s in r.relation_streams())))
    return crosswalk, concepts, relations


@pytest.fixture()
def merged(fixtures):
    readers = [
        UmlsReader(fixtures / "umls", version="2025AA"),
        SnomedReader(fixtures / "snomed"),
        OboReader(fixtures / "obo" / "mini-hp.obo", name="HPO"),
        DoReportsReader(fixtures / "obo" / "do_reports", version="2025-01-31"),
        HpoaReader(fixtures / "obo" / "phenotype.hpoa"),
    ]
    return run(readers)


def test_one_node_per_cui_with_every_source_id(merged):
    _, concepts, _ = merged
    cardiomegaly = concepts["UMLS:C0018800"]
    assert {"HP:0001640", "SNOMEDCT:8186001", "MESH:D006332"} <= set(cardiomegaly.xrefs)
    assert cardiomegaly.sources == ("HPO:2025-01-16", "SNOMEDCT:20250101", "UMLS:2025AA")
    assert cardiomegaly.name == "Cardiomegaly"  # UMLS wins the name
    assert "Enlarged heart" in cardiomegaly.synonyms
    for source_id in ("HP:0001640", "SNOMEDCT:8186001", "HP:0002202", "DOID:11396"):
        assert source_id not in concepts
    edema = concepts["UMLS:C0034063"]
    assert {"DOID:11396", "SNOMEDCT:19242006"} <= set(edema.xrefs)


def test_xref_aliases_join_diseases_but_not_one_to_many(merged):
    _, concepts, _ = merged
    # DO's single MIM and ORDO xrefs name the HPOA diseases: one dilated cardiomyopathy node
    dcm = concepts["UMLS:C0007193"]
    assert {"DOID:12930", "OMIM:115200", "ORPHA:217604"} <= set(dcm.xrefs)
    assert dcm.kind is ConceptKind.DISEASE
    # heart disease lists two MIM ids: subtypes, not synonyms, so nothing merges into it
    assert "DOID:114" in concepts and concepts["DOID:114"].xrefs == ("OMIM:100001", "OMIM:100002")


def test_relations_rewritten_deduplicated_and_dangling_dropped(merged):
    crosswalk, concepts, relations = merged
    triples = {(r.src, r.type, r.dst) for r in relations}
    assert ("UMLS:C0007193", "HAS_PHENOTYPE", "UMLS:C0018800") in triples
    assert ("UMLS:C0018800", "FINDING_SITE", "UMLS:C0018787") in triples
    assert all(r.src in concepts and r.dst in concepts for r in relations)
    assert len(triples) == len(relations)
    report = crosswalk.report
    assert report.duplicates >= 2  # OMIM and ORPHA rows of one disease; both UMLS directions
    assert report.dangling >= 2  # SYMP:0000613 and HP:0000006's targets are not loaded
    assert report.relations_out == len(relations)
    negated = [r for r in relations if r.negated]
    assert [(r.src, r.dst) for r in negated] == [("UMLS:C0007193", "UMLS:C0032227")]
    assert report.concepts_out == len(concepts)
    assert report.merged_nodes >= 8


def test_two_terms_of_one_source_on_one_cui_are_a_conflict():
    records = [
        Concept(id="HP:1", name="a", xrefs=("UMLS:C0000001",)),
        Concept(id="HP:2", name="b", xrefs=("UMLS:C0000001",)),
        Concept(id="DOID:3", name="c", xrefs=("UMLS:C0000001", "UMLS:C0000002")),
        Concept(id="SYMP:4", name="d"),
    ]
    crosswalk = Crosswalk()
    crosswalk.index([records])
    out = {c.id: c for c in crosswalk.concepts([records])}
    assert set(out) == {"UMLS:C0000001", "HP:2", "SYMP:4"}
    assert set(out["UMLS:C0000001"].xrefs) >= {"HP:1", "DOID:3"}
    assert crosswalk.report.conflicting == 2  # HP:2 left alone; DOID:3 had two CUIs
    assert crosswalk.report.unmapped == 1
    rows = [
        ("HP:1", "HP:2", "IS_A", False, 1.0, None),
        ("HP:1", "DOID:3", "IS_A", False, 1.0, None),
    ]
    relations = list(rewritten(crosswalk, [(rows, ("T:1",))]))
    assert [(r.src, r.dst) for r in relations] == [("UMLS:C0000001", "HP:2")]
    assert crosswalk.report.self_loops == 1


def test_a_finding_with_no_cui_joins_the_one_cui_node_of_its_name():
    """Symptom Ontology terms mostly lack UMLS xrefs; "pleural effusion" is still one node."""
    seed = [
        Concept(id="UMLS:C0032227", name="pleural effusion", kind="finding"),
        Concept(id="UMLS:C0013404", name="dyspnea", kind="symptom"),
        Concept(id="UMLS:C0010200", name="cough", kind="symptom", synonyms=("dry cough",)),
        Concept(id="UMLS:C0032285", name="Pneumonia", kind="disease"),
    ]
    hpo = [
        Concept(id="HP:0002094", name="Dyspnea", kind="finding", xrefs=("UMLS:C0013404",)),
        Concept(id="HP:0000001", name="Tic", kind="finding", xrefs=("UMLS:C0000001",)),
        Concept(id="HP:0000002", name="Tic", kind="finding", xrefs=("UMLS:C0000002",)),
    ]
    symp = [
        Concept(id="SYMP:0000107", name="Pleural Effusion", kind="symptom"),
        Concept(id="SYMP:0019153", name="dyspnea", kind="symptom", synonyms=("sob",)),
        Concept(id="SYMP:0000001", name="dry cough", kind="symptom"),  # a synonym: no join
        Concept(id="SYMP:0000002", name="tic", kind="symptom"),  # two CUIs have the name
        Concept(id="SYMP:0000999", name="pleural effusion", kind="symptom"),  # 2nd: lower id wins
        Concept(id="DOID:552", name="pneumonia", kind="disease"),  # diseases never by name
    ]
    crosswalk = Crosswalk()
    crosswalk.index([seed, hpo, symp])
    out = {c.id: c for c in crosswalk.concepts([seed, hpo, symp])}
    assert "SYMP:0000107" in out["UMLS:C0032227"].xrefs
    assert {"HP:0002094", "SYMP:0019153"} <= set(out["UMLS:C0013404"].xrefs)
    assert "sob" in out["UMLS:C0013404"].synonyms
    for kept in ("SYMP:0000001", "SYMP:0000002", "SYMP:0000999", "DOID:552"):
        assert kept in out, kept
    assert crosswalk.report.via_name == 2
    assert crosswalk.report.concepts_out == len(out) == 10
    rows = [("SYMP:0019153", "UMLS:C0032227", "ASSOCIATED_WITH", False, 1.0, None)]
    relations = list(rewritten(crosswalk, [(rows, ("T:1",))]))
    assert [(r.src, r.dst) for r in relations] == [("UMLS:C0013404", "UMLS:C0032227")]


@pytest.mark.shared_data
def test_symptom_ontology_duplicates_of_chest_findings_merge(shared_data):
    """The real SYMP terms for pleural effusion, dyspnea and pulmonary edema (no UMLS xrefs)
    join the HPO / seed nodes of the default KG."""
    from kg_loaders.sources import SeedReader

    readers = [
        OboReader(shared_data / "kg/hpo/hp.obo", name="HPO"),
        OboReader(shared_data / "kg/do/symp.obo", name="SYMP"),
        SeedReader(),
    ]
    streams = [list(reader.concepts()) for reader in readers]
    crosswalk = Crosswalk()
    crosswalk.index(streams)
    out = {c.id: c for c in crosswalk.concepts(streams)}
    for cui, symp in (
        ("UMLS:C0032227", "SYMP:0000107"),  # pleural effusion
        ("UMLS:C0013404", "SYMP:0019153"),  # dyspnea
        ("UMLS:C0034063", "SYMP:0019151"),  # pulmonary edema
    ):
        assert symp in out[cui].xrefs and symp not in out, symp
    assert crosswalk.report.via_name >= 100


def test_one_id_from_two_sources_is_one_node():
    umls = [Concept(id="UMLS:C0018800", name="Cardiomegaly", sources=("UMLS:2025AA",))]
    seed = [Concept(id="UMLS:C0018800", name="cardiomegaly", synonyms=("enlarged heart",))]
    plain = [Concept(id="KGDX:1", name="x", sources=("A",)), Concept(id="KGDX:1", name="x")]
    crosswalk = Crosswalk()
    crosswalk.index([umls, seed, plain])
    out = list(crosswalk.concepts([umls, seed, plain]))
    assert [c.id for c in out] == ["UMLS:C0018800", "KGDX:1"]
    assert out[0].synonyms == ("enlarged heart",) and out[0].sources == ("UMLS:2025AA",)


def test_merge_priority_and_unions():
    merged = merge_concepts(
        "UMLS:C0000001",
        [
            Concept(id="DOID:1", name="lung disease", kind="disease", sources=("DOID:x",)),
            Concept(id="HP:1", name="Lung abnormality", kind="finding", synonyms=("lung disease",)),
        ],
    )
    assert (merged.name, merged.kind) == ("Lung abnormality", ConceptKind.FINDING)
    assert merged.synonyms == ("lung disease",)
    assert merged.xrefs == ("DOID:1", "HP:1")


def test_concepts_before_index_is_an_error():
    with pytest.raises(RuntimeError):
        list(Crosswalk().concepts([]))
