"""OBO reader: the fixture's tags, kinds by root, bad lines; the real hp.obo and symp.obo."""

from __future__ import annotations

import pytest

from graph.errors import InputError
from graph.records import ConceptKind
from kg_loaders.obo import OboReader


@pytest.fixture()
def hp(fixtures):
    return OboReader(fixtures / "obo" / "mini-hp.obo", name="HPO")


def test_terms_become_concepts_with_kinds_from_their_root(hp):
    concepts = {c.id: c for c in hp.concepts()}
    assert hp.provenance == "HPO:2025-01-16"
    assert "HP:0001639" not in concepts  # obsolete
    assert hp.stats.skipped_records == 1
    assert concepts["HP:0001640"].kind is ConceptKind.FINDING  # under Phenotypic abnormality
    assert concepts["HP:0000006"].kind is ConceptKind.OTHER  # under Mode of inheritance
    assert concepts["HP:0001640"].sources == ("HPO:2025-01-16",)


def test_synonym_scopes_xrefs_and_alt_ids(hp):
    cardiomegaly = next(c for c in hp.concepts() if c.id == "HP:0001640")
    # EXACT kept; BROAD and obsolete synonyms dropped
    assert cardiomegaly.synonyms == ("Enlarged heart", "Increased heart size")
    assert cardiomegaly.xrefs == ("SNOMEDCT:8186001", "UMLS:C0018800")
    heart = next(c for c in hp.concepts() if c.id == "HP:0001627")
    assert heart.xrefs == ("HP:0001631",)  # alt_id


def test_is_a_and_relationships_typed_through_the_table(hp):
    relations = {(r.src, r.type, r.dst) for r in hp.relations()}
    assert ("HP:0001640", "IS_A", "HP:0001627") in relations  # {qualifier} stripped
    assert ("HP:0001640", "ASSOCIATED_WITH", "HP:0001626") in relations  # part_of
    assert ("HP:0001640", "ASSOCIATED_WITH", "HP:0012823") in relations  # unknown -> fallback
    assert hp.stats.unknown_relations == {"has_modifier": 1}
    assert len(relations) == 9


def test_malformed_line_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.obo"
    bad.write_text("format-version: 1.2\n\n[Term]\nid: HP:1\nname: ok\nthis line has no tag\n")
    with pytest.raises(InputError, match=r"bad\.obo:6: .*--lenient"):
        list(OboReader(bad).concepts())
    lenient = OboReader(bad, lenient=True)
    assert [c.id for c in lenient.concepts()] == ["HP:1"]
    list(lenient.concepts())  # a second pass must not count the line twice
    assert lenient.stats.skipped_lines == 1


def test_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        list(OboReader(tmp_path / "nope.obo").concepts())


@pytest.mark.shared_data
def test_real_hp_obo(shared_data):
    reader = OboReader(shared_data / "kg" / "hpo" / "hp.obo", name="HPO")
    concepts = {c.id: c for c in reader.concepts()}
    assert reader.provenance == "HPO:2025-01-16"
    assert len(concepts) + reader.stats.skipped_records == 19_484  # SOURCES.md term count
    assert sum(1 for r in reader.relations() if r.type == "IS_A") == 23_392
    assert concepts["HP:0001640"].name == "Cardiomegaly"
    assert "UMLS:C0018800" in concepts["HP:0001640"].xrefs
    with_cui = sum(1 for c in concepts.values() if any(x.startswith("UMLS:") for x in c.xrefs))
    assert with_cui == 11_513  # live terms with a UMLS xref (12,925 xref lines incl. obsolete)


@pytest.mark.shared_data
def test_hpo_modifier_and_frequency_branches_are_qualifiers(shared_data):
    """Laterality, severity, spatial pattern, course and frequency terms are qualifiers of a
    phenotype (never findings); the other non-phenotype branches stay "other"."""
    kinds = {c.id: c.kind for c in OboReader(shared_data / "kg/hpo/hp.obo").concepts()}
    for term in (
        "HP:0012834",  # Right
        "HP:0012832",  # Bilateral
        "HP:0030650",  # Focal
        "HP:0012825",  # Mild
        "HP:0011010",  # Chronic
        "HP:0040285",  # Excluded (a frequency)
    ):
        assert kinds[term] is ConceptKind.QUALIFIER, term
    assert kinds["HP:0002202"] is ConceptKind.FINDING  # Pleural effusion
    assert kinds["HP:0000006"] is ConceptKind.OTHER  # Autosomal dominant inheritance
    qualifiers = sum(kind is ConceptKind.QUALIFIER for kind in kinds.values())
    assert 300 <= qualifiers <= 1_000


@pytest.mark.shared_data
def test_symp_obo_agrees_with_pronto(shared_data):
    pronto = pytest.importorskip("pronto")
    path = shared_data / "kg" / "do" / "symp.obo"
    reader = OboReader(path, name="SYMP")
    ours = {c.id: c for c in reader.concepts()}
    ontology = pronto.Ontology(str(path))
    theirs = {t.id: t for t in ontology.terms() if not t.obsolete}
    assert set(ours) == set(theirs)
    assert all(c.kind is ConceptKind.SYMPTOM for c in ours.values())
    pronto_edges = {
        (t.id, p.id) for t in theirs.values() for p in t.superclasses(distance=1, with_self=False)
    }
    our_edges = {(r.src, r.dst) for r in reader.relations() if r.type == "IS_A"}
    assert our_edges == pronto_edges
    assert ours["SYMP:0000613"].name == theirs["SYMP:0000613"].name


def test_kind_is_the_nearest_root_first_parent_winning_ties_and_cycles_end(tmp_path):
    path = tmp_path / "x.obo"
    stanzas = {
        "X:1": [],  # root: disease
        "X:2": [],  # root: symptom
        "X:3": ["X:2", "X:1"],  # both roots one step up: the first parent wins
        "X:4": ["X:5", "X:3"],  # X:3 is nearer than X:1 via X:5 -> X:6 -> X:1
        "X:5": ["X:6"],
        "X:6": ["X:1"],
        "X:7": ["X:8"],  # a cycle with no root: the prefix's kind
        "X:8": ["X:7"],
    }
    text = "format-version: 1.2\n\n" + "".join(
        f"[Term]\nid: {tid}\nname: t{tid}\n" + "".join(f"is_a: {p}\n" for p in parents) + "\n"
        for tid, parents in stanzas.items()
    )
    path.write_text(text)
    reader = OboReader(
        path,
        name="X",
        prefix_kinds={"X": ConceptKind.ANATOMY},
        root_kinds={"X:1": ConceptKind.DISEASE, "X:2": ConceptKind.SYMPTOM},
    )
    kinds = {c.id: c.kind for c in reader.concepts()}
    assert kinds["X:3"] is ConceptKind.SYMPTOM
    assert kinds["X:4"] is ConceptKind.SYMPTOM
    assert kinds["X:5"] is ConceptKind.DISEASE
    assert kinds["X:7"] is kinds["X:8"] is ConceptKind.ANATOMY
