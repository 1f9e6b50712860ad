"""The curated chest seed KG: shipped files, honesty of ids and sources, bad input."""

from __future__ import annotations

import csv
import re
from collections import Counter

import pytest

from graph.errors import InputError
from graph.records import ConceptKind
from kg_loaders.seed import (
    SEED_CONCEPTS,
    SEED_RELATIONS,
    SEED_SOURCE,
    read_seed_concepts,
    read_seed_relations,
)


def test_shipped_seed_kg_loads_with_sources():
    concepts = read_seed_concepts()
    relations = read_seed_relations()
    by_id = {c.id: c for c in concepts}
    assert 100 <= len(concepts) <= 150
    kinds = Counter(c.kind for c in concepts)
    for kind in (
        ConceptKind.FINDING,
        ConceptKind.SYMPTOM,
        ConceptKind.DISEASE,
        ConceptKind.ANATOMY,
    ):
        assert kinds[kind] >= 5
    assert by_id["UMLS:C0018800"].name == "cardiomegaly"
    assert by_id["UMLS:C0032227"].name == "pleural effusion"
    assert by_id["UMLS:C0018802"].name == "congestive heart failure"
    assert "ptx" in by_id["UMLS:C0032326"].synonyms
    assert all(c.sources == (SEED_SOURCE,) for c in concepts)
    types = Counter(r.type for r in relations)
    assert {
        "HAS_FINDING",
        "HAS_SYMPTOM",
        "FINDING_SITE",
        "IS_A",
        "CAUSED_BY",
        "ASSOCIATED_WITH",
    } <= set(types)
    assert all(r.sources and r.sources[0] for r in relations)
    assert all(r.src in by_id and r.dst in by_id for r in relations)
    # the demo's explanation shape exists: CHF has the finding cardiomegaly
    assert any(
        r.src == "UMLS:C0018802" and r.type == "HAS_FINDING" and r.dst == "UMLS:C0018800"
        for r in relations
    )


@pytest.mark.shared_data
def test_do_sourced_relations_are_in_disease_ontology(shared_data):
    """Relations credited to DO really are DO disease-symptom pairs / subClassOf axioms."""
    by_id = {c.id: c for c in read_seed_concepts()}
    pairs = set()
    with (shared_data / "kg/do/disease-symptom.tsv").open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            pairs.add((row["disease_id"], row["symptom_label"]))
    parents = set()
    with (shared_data / "kg/do/HumanDO.tsv").open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            parents.add((row["id"].strip('"'), row["subClassOf"].strip('"')))
    checked = 0
    for relation in read_seed_relations():
        doid = next((x for x in by_id[relation.src].xrefs if x.startswith("DOID:")), None)
        if relation.sources[0].startswith("DO:disease-symptom"):
            assert (doid, by_id[relation.dst].name) in pairs, relation
            checked += 1
        elif relation.sources[0].startswith("DO:HumanDO"):
            assert (doid, by_id[relation.dst].name) in parents, relation
            checked += 1
    assert checked >= 20


@pytest.mark.shared_data
def test_cuis_said_to_come_from_hpo_match_hp_obo(shared_data):
    """Where the curator cites an HPO xref for a CUI, hp.obo lists that CUI for that HP term."""
    xrefs: dict[str, set[str]] = {}
    for stanza in (shared_data / "kg/hpo/hp.obo").read_text().split("\n\n"):
        match = re.search(r"^id: (HP:\d+)$", stanza, re.M)
        if match:
            xrefs[match.group(1)] = set(re.findall(r"^xref: UMLS:(C\d+)", stanza, re.M))
    with SEED_CONCEPTS.open() as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t") if "HPO xref" in r["cui_check"]]
    assert len(rows) >= 25
    for row in rows:
        cui = row["id"].removeprefix("UMLS:")
        hp_ids = [x for x in row["xrefs"].split("|") if x.startswith("HP:")]
        assert any(cui in xrefs.get(hp, set()) for hp in hp_ids), row["name"]


@pytest.mark.shared_data
def test_cuis_said_to_come_from_do_or_hetionet_are_there(shared_data):
    """A 'DO xref' CUI is a UMLS_CUI xref of the row's DOID in allXREFinDO.tsv; a 'Hetionet
    SIDER' CUI is a Hetionet side-effect node."""
    do_cuis: dict[str, set[str]] = {}
    with (shared_data / "kg/do/allXREFinDO.tsv").open() as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            xref = row["xref"].strip('"')
            if xref.startswith("UMLS_CUI:"):
                do_cuis.setdefault(row["id"].strip('"'), set()).add(xref.removeprefix("UMLS_CUI:"))
    with (shared_data / "kg/hetionet/hetionet-v1.0-nodes.tsv").open() as handle:
        sider = {
            row["id"].removeprefix("Side Effect::")
            for row in csv.DictReader(handle, delimiter="\t")
            if row["kind"] == "Side Effect"
        }
    with SEED_CONCEPTS.open() as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    checked = 0
    for row in rows:
        cui = row["id"].removeprefix("UMLS:")
        if "DO xref" in row["cui_check"]:
            doids = [x for x in row["xrefs"].split("|") if x.startswith("DOID:")]
            assert any(cui in do_cuis.get(doid, set()) for doid in doids), row["name"]
            checked += 1
        if "Hetionet SIDER" in row["cui_check"]:
            assert cui in sider, row["name"]
            checked += 1
    assert checked >= 40


@pytest.mark.shared_data
def test_relations_credited_to_hpo_are_hp_obo_is_a_edges(shared_data):
    parents: dict[str, set[str]] = {}
    for stanza in (shared_data / "kg/hpo/hp.obo").read_text().split("\n\n"):
        match = re.search(r"^id: (HP:\d+)$", stanza, re.M)
        if match:
            parents[match.group(1)] = set(re.findall(r"^is_a: (HP:\d+)", stanza, re.M))
    by_id = {c.id: c for c in read_seed_concepts()}

    def hp_ids(concept_id: str) -> list[str]:
        concept = by_id[concept_id]
        return [x for x in (concept.id, *concept.xrefs) if x.startswith("HP:")]

    relations = [r for r in read_seed_relations() if r.sources[0].startswith("HPO:hp.obo is_a")]
    assert len(relations) >= 3
    for relation in relations:
        assert relation.type == "IS_A"
        assert any(
            parent in parents.get(child, set())
            for child in hp_ids(relation.src)
            for parent in hp_ids(relation.dst)
        ), relation


def test_bad_seed_files_raise_input_errors(tmp_path):
    wrong_header = tmp_path / "concepts.tsv"
    wrong_header.write_text("id\tname\nUMLS:C1\tx\n")
    with pytest.raises(InputError, match="header"):
        read_seed_concepts(wrong_header)
    duplicate = tmp_path / "dup.tsv"
    header = "id\tname\tkind\tsynonyms\txrefs\tcui_check\n"
    duplicate.write_text(header + "UMLS:C1\ta\tfinding\t\t\t\nUMLS:C1\tb\tfinding\t\t\t\n")
    with pytest.raises(InputError, match="duplicate id"):
        read_seed_concepts(duplicate)
    bad_kind = tmp_path / "kind.tsv"
    bad_kind.write_text(header + "UMLS:C1\ta\tplanet\t\t\t\n")
    with pytest.raises(InputError, match=":2: bad concept row"):
        read_seed_concepts(bad_kind)
    concepts = read_seed_concepts()
    unknown = tmp_path / "rel.tsv"
    unknown.write_text(
        SEED_RELATIONS.read_text().splitlines()[0] + "\nUMLS:C0018800\tIS_A\tUMLS:C9999999\tx\t\t\n"
    )
    with pytest.raises(InputError, match="not a seed concept"):
        read_seed_relations(unknown, concepts=concepts)
    no_source = tmp_path / "nosrc.tsv"
    no_source.write_text(
        SEED_RELATIONS.read_text().splitlines()[0] + "\nUMLS:C0018800\tIS_A\tUMLS:C0018787\t\t\t\n"
    )
    with pytest.raises(InputError, match="needs a source"):
        read_seed_relations(no_source, concepts=concepts)
    with pytest.raises(InputError, match="not found"):
        read_seed_concepts(tmp_path / "missing.tsv")
