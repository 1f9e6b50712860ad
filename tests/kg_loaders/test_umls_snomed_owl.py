"""UMLS RRF, SNOMED CT RF2 and OWL readers on official-layout fixtures (and the real RRF sample)."""

from __future__ import annotations

import shutil

import pytest

from graph.errors import InputError
from graph.records import ConceptKind
from kg_loaders.owl import OwlReader
from kg_loaders.snomed import SnomedReader, split_tag
from kg_loaders.umls import UmlsReader, stn_kind


@pytest.fixture()
def umls(fixtures):
    return UmlsReader(fixtures / "umls", version="2025AA")


def test_umls_names_kinds_synonyms_and_source_codes(umls):
    concepts = {c.id: c for c in umls.concepts()}
    assert len(concepts) == 10
    cardiomegaly = concepts["UMLS:C0018800"]
    assert cardiomegaly.name == "Cardiomegaly"
    # Finding + Anatomical Abnormality -> finding; suppressed (O) HPO atom left out
    assert cardiomegaly.kind is ConceptKind.FINDING
    assert cardiomegaly.synonyms == ("Enlarged heart", "Increased heart size")
    assert cardiomegaly.xrefs == ("MESH:D006332", "SNOMEDCT:8186001", "HP:0001640")
    assert cardiomegaly.sources == ("UMLS:2025AA",)
    assert concepts["UMLS:C0018787"].kind is ConceptKind.ANATOMY
    # the French atom is not a synonym
    assert all("Atélectasie" not in s for s in concepts["UMLS:C0004144"].synonyms)


def test_umls_relation_directions(umls):
    relations = {(r.src, r.type, r.dst) for r in umls.relations()}
    assert ("UMLS:C0018800", "FINDING_SITE", "UMLS:C0018787") in relations  # finding_site_of
    assert ("UMLS:C0018802", "HAS_FINDING", "UMLS:C0018800") in relations  # manifestation_of
    assert ("UMLS:C0034063", "CAUSED_BY", "UMLS:C0018802") in relations  # cause_of
    assert ("UMLS:C0034063", "IS_A", "UMLS:C0024115") in relations  # PAR / inverse_isa
    assert not any(s == d for s, _, d in relations)  # SY self-row dropped
    assert ("UMLS:C0032285", "IS_A", "UMLS:C0004144") not in relations  # suppressed row
    assert umls.stats.unknown_relations == {"mapped_to_nonstandard": 1}


def test_umls_sab_filter(fixtures):
    reader = UmlsReader(fixtures / "umls", sabs=["SNOMEDCT_US"])
    heart = next(c for c in reader.concepts() if c.id == "UMLS:C0018787")
    assert heart.name == "Heart structure" and heart.xrefs == ("SNOMEDCT:80891009",)
    assert {r.attributes["sab"] for r in reader.relations()} == {"SNOMEDCT_US"}


def test_umls_errors(fixtures, tmp_path):
    shutil.copy(fixtures / "umls" / "MRCONSO.RRF", tmp_path / "MRCONSO.RRF")
    with pytest.raises(InputError, match="MRSTY.RRF"):
        UmlsReader(tmp_path)
    rows = (fixtures / "umls" / "MRSTY.RRF").read_text().splitlines()
    (tmp_path / "MRSTY.RRF").write_text("\n".join(reversed(rows)) + "\n")
    with pytest.raises(InputError, match="not sorted by CUI"):
        list(UmlsReader(tmp_path).concepts())


def test_stn_kinds():
    assert stn_kind("B2.2.1.2.1.2") is ConceptKind.DISEASE  # Neoplastic Process
    assert stn_kind("A2.2.2") is ConceptKind.SYMPTOM
    assert stn_kind("A1.2.2.2") is ConceptKind.FINDING
    assert stn_kind("A1.4.1.2.1.7") is ConceptKind.SUBSTANCE
    assert stn_kind("B1.1") is ConceptKind.OTHER
    # qualifiers: Spatial (T082 "Right"), Qualitative (T080 "Focal"), Temporal (T079 "Chronic"),
    # Quantitative (T081), Functional (T169); body locations and systems stay anatomy
    for stn in ("A2.1.5", "A2.1.2", "A2.1.1", "A2.1.3", "A2.1.4"):
        assert stn_kind(stn) is ConceptKind.QUALIFIER, stn
    assert stn_kind("A2.1.5.2") is stn_kind("A2.1.4.1") is ConceptKind.ANATOMY
    assert stn_kind("A2.1.5.3.1") is ConceptKind.OTHER  # Nucleotide Sequence


@pytest.mark.shared_data
def test_real_rrf_sample(shared_data):
    reader = UmlsReader(shared_data / "kg" / "umls_rrf_sample")
    concepts = {c.id: c for c in reader.concepts()}
    assert set(concepts) == {"UMLS:C0000005", "UMLS:C0000039"}
    assert concepts["UMLS:C0000005"].name == "(131)I-Macroaggregated Albumin"
    assert concepts["UMLS:C0000005"].synonyms == ("(131)I-MAA",)
    assert concepts["UMLS:C0000039"].kind is ConceptKind.SUBSTANCE
    assert list(reader.relations()) == []  # the sample has no MRREL


@pytest.fixture()
def snomed(fixtures):
    return SnomedReader(fixtures / "snomed")


def test_snomed_concepts(snomed):
    concepts = {c.id: c for c in snomed.concepts()}
    assert snomed.provenance == "SNOMEDCT:20250101"
    assert "SNOMEDCT:155596000" not in concepts and snomed.stats.skipped_records == 1
    cardiomegaly = concepts["SNOMEDCT:8186001"]
    assert (cardiomegaly.name, cardiomegaly.kind) == ("Cardiomegaly", ConceptKind.DISEASE)
    # the inactive and the French descriptions are left out
    assert cardiomegaly.synonyms == ("Enlarged heart",)
    assert concepts["SNOMEDCT:80891009"].kind is ConceptKind.ANATOMY
    assert concepts["SNOMEDCT:404684003"].kind is ConceptKind.FINDING


def test_snomed_relationships(snomed):
    relations = {(r.src, r.type, r.dst): r for r in snomed.relations()}
    assert ("SNOMEDCT:8186001", "FINDING_SITE", "SNOMEDCT:80891009") in relations
    assert ("SNOMEDCT:8186001", "ASSOCIATED_MORPHOLOGY", "SNOMEDCT:442021009") in relations
    assert relations[("SNOMEDCT:19242006", "CAUSED_BY", "SNOMEDCT:42343007")].attributes == {
        "group": "2"
    }
    assert ("SNOMEDCT:8186001", "IS_A", "SNOMEDCT:404684003") not in relations  # inactive
    assert snomed.stats.unknown_relations == {"408729009": 1}
    assert len(relations) == 22


def test_snomed_missing_file_lists_expected(fixtures, tmp_path):
    shutil.copytree(fixtures / "snomed", tmp_path / "release")
    next((tmp_path / "release").rglob("sct2_Relationship*")).unlink()
    with pytest.raises(InputError, match="sct2_Relationship_Snapshot"):
        SnomedReader(tmp_path / "release")


def test_split_tag():
    assert split_tag("Heart structure (body structure)") == ("Heart structure", "body structure")
    assert split_tag("No tag") == ("No tag", "")


def test_owl_classes_synonyms_xrefs_and_restrictions(fixtures):
    reader = OwlReader(fixtures / "owl" / "mini-doid.owl")
    concepts = {c.id: c for c in reader.concepts()}
    assert reader.provenance == "DOID:2025-01-31"
    assert set(concepts) == {"DOID:4", "DOID:850", "DOID:552", "DOID:1673"}  # deprecated left out
    assert concepts["DOID:552"].synonyms == ("lung inflammation", "pneumonitis")
    assert concepts["DOID:850"].xrefs == ("SNOMEDCT:19829001", "UMLS:C0024115")
    relations = {(r.src, r.type, r.dst) for r in reader.relations()}
    assert relations == {
        ("DOID:850", "IS_A", "DOID:4"),
        ("DOID:552", "IS_A", "DOID:850"),
        ("DOID:1673", "IS_A", "DOID:850"),
        ("DOID:552", "HAS_SYMPTOM", "SYMP:0000613"),
        ("DOID:552", "FINDING_SITE", "UBERON:0002048"),
        ("DOID:552", "ASSOCIATED_WITH", "DOID:850"),
    }
    assert reader.stats.unknown_relations == {"RO:0009999": 1}


def test_owl_unparseable_file(tmp_path):
    bad = tmp_path / "bad.owl"
    bad.write_text("<rdf:RDF this is not xml")
    with pytest.raises(InputError, match="bad.owl"):
        list(OwlReader(bad).concepts())
