"""``build_kg`` into the real embedded store: counts, crosswalk, idempotence, failed builds."""

from __future__ import annotations

import pytest

from graph.errors import ConfigError, InputError
from graph.stores import open_store
from kg_loaders.build import SUMMARY_FILE, BuildResult, build_kg
from kg_loaders.sources import parse_sources

# The chest findings of the issue; the seed KG names some "lung nodule", "pulmonary infiltrate".
CHEST_FINDINGS = (
    "cardiomegaly",
    "pleural effusion",
    "pneumothorax",
    "atelectasis",
    "consolidation",
    "pulmonary edema",
    "emphysema",
    "nodule",
    "mass",
    "infiltrate",
)


@pytest.fixture()
def fixture_sources(fixtures):
    return [
        f"umls={fixtures / 'umls'}",
        f"snomed={fixtures / 'snomed'}",
        f"hpo={fixtures / 'obo' / 'mini-hp.obo'}",
        f"do={fixtures / 'obo' / 'do_reports'}",
        f"hpoa={fixtures / 'obo' / 'phenotype.hpoa'}",
    ]


def stored(settings):
    with open_store("embedded", settings=settings) as store:
        triples = {(r.src, r.type, r.dst) for r in store.iter_relations()}
        return store.counts(), triples, store.get_concept("UMLS:C0018800")


def test_build_loads_the_crosswalked_graph(settings, fixture_sources):
    result = build_kg(sources=fixture_sources, settings=settings)
    counts, triples, cardiomegaly = stored(settings)
    assert counts.nodes["Concept"] == result.concepts == result.crosswalk["concepts_out"]
    assert counts.total_relations == result.relations == len(triples)
    assert {"HP:0001640", "SNOMEDCT:8186001"} <= set(cardiomegaly.xrefs)
    assert ("UMLS:C0007193", "HAS_PHENOTYPE", "UMLS:C0018800") in triples
    assert result.relations_by_type["FINDING_SITE"] >= 5
    assert result.unknown_relations["SNOMEDCT:408729009"] == 1
    assert result.concepts_by_kind["anatomy"] >= 3
    # per source release, as "NAME:version" (relation sources are stored as JSON text)
    assert sum(result.relations_by_source.values()) == result.relations
    assert "SNOMEDCT:20250101" in result.relations_by_source
    assert all(":" in key and len(key) > 4 for key in result.relations_by_source)
    saved = BuildResult.load(settings.home / SUMMARY_FILE)
    assert saved.relations == result.relations and saved.crosswalk == result.crosswalk


def test_rebuild_is_idempotent(settings, fixture_sources):
    build_kg(sources=fixture_sources, settings=settings)
    first = stored(settings)
    build_kg(sources=fixture_sources, settings=settings)
    assert stored(settings) == first


def test_failed_build_leaves_the_previous_graph(settings, fixture_sources, tmp_path):
    build_kg(sources=fixture_sources, settings=settings)
    before = stored(settings)
    bad = tmp_path / "bad.obo"
    bad.write_text("[Term]\nid: HP:1\nname: ok\nno tag here\n")
    with pytest.raises(InputError, match=r"bad\.obo:4"):
        build_kg(sources=[*fixture_sources, f"hpo={bad}"], settings=settings)
    assert stored(settings) == before
    leftovers = [p.name for p in settings.resolved_db_path.parent.iterdir() if ".build-" in p.name]
    assert leftovers == []


def test_lenient_build_counts_skipped_lines(settings, fixture_sources, tmp_path):
    bad = tmp_path / "bad.obo"
    bad.write_text("[Term]\nid: HP:1\nname: ok\nno tag here\n")
    result = build_kg(sources=[*fixture_sources, f"obo={bad}"], settings=settings, lenient=True)
    bad_stats = next(s for s in result.source_stats if s["source"] == "BAD")
    assert bad_stats["skipped_lines"] == 1


def test_bad_source_specs(tmp_path):
    with pytest.raises(ConfigError, match="NAME=PATH"):
        parse_sources(["nonsense"])
    with pytest.raises(InputError, match="does not exist"):
        parse_sources([f"hpo={tmp_path / 'missing.obo'}"])[0].open()


@pytest.mark.slow
def test_default_build_meets_size_and_merges_chest_findings(settings):
    from kg_loaders.seed import read_seed_concepts

    result = build_kg(sources=["default"], settings=settings)
    assert result.concepts >= 30_000 and result.relations >= 300_000
    assert result.crosswalk["merged_nodes"] > 500
    seeds = {c.name: c for c in read_seed_concepts()}
    lung = {f"{organ} {name}" for organ in ("lung", "pulmonary") for name in CHEST_FINDINGS}
    names = [n for n in seeds if n in CHEST_FINDINGS or n in lung]
    assert len(names) == len(CHEST_FINDINGS), names
    with open_store("embedded", settings=settings) as store:
        for name in names:
            node = store.get_concept(seeds[name].id)
            hp_ids = [x for x in node.xrefs if x.startswith("HP:")]
            assert hp_ids, (name, node.xrefs)
            assert set(seeds[name].xrefs) <= set(node.xrefs)
            assert any(s.startswith("HPO:") for s in node.sources), (name, node.sources)
            for source_id in (x for x in node.xrefs if x.split(":")[0] in ("HP", "SNOMEDCT")):
                carriers = store.query(
                    "MATCH (c:Concept) WHERE c.id = $x OR list_contains(c.xrefs, $x) RETURN c.id",
                    {"x": source_id},
                ).rows
                assert carriers == ((node.id,),), (name, source_id, carriers)


def _store_patient(settings) -> None:
    from graph.records import Finding, Patient, Report, TextSpan

    text = "FINDINGS: The heart is enlarged."
    finding = Finding(
        concept_id="UMLS:C0018800",
        provenance=TextSpan(doc_id="r1", start=14, end=31, text=text[14:31]),
    )
    patient = Patient(id="P1", reports=(Report(id="r1", text=text),), findings=(finding,))
    with open_store("embedded", settings=settings) as store:
        store.upsert_patient(patient)


def test_rebuild_keeps_stored_patients(settings, fixture_sources):
    build_kg(sources=fixture_sources, settings=settings)
    _store_patient(settings)
    result = build_kg(sources=fixture_sources, settings=settings)
    assert result.patients_carried == 1
    with open_store("embedded", settings=settings) as store:
        (finding,) = store.get_patient("P1").findings
        assert finding.concept_id == "UMLS:C0018800"


def test_rebuild_that_would_orphan_patients_fails_and_keeps_everything(
    settings, fixture_sources, fixtures
):
    build_kg(sources=fixture_sources, settings=settings)
    _store_patient(settings)
    before = stored(settings)
    # A KG without the UMLS/SNOMED/HPO sources lacks cardiomegaly, which P1 refers to.
    with pytest.raises(InputError, match=r"P1: UMLS:C0018800"):
        build_kg(sources=[f"do={fixtures / 'obo' / 'do_reports'}"], settings=settings)
    assert stored(settings) == before
    with open_store("embedded", settings=settings) as store:
        assert store.patient_ids() == ["P1"]


def test_truncated_gzip_and_bad_utf8_name_the_file(settings, fixture_sources, tmp_path):
    from graph.settings import DATA_DIR

    build_kg(sources=fixture_sources, settings=settings)
    before = stored(settings)
    truncated = tmp_path / "symp.obo.gz"
    truncated.write_bytes((DATA_DIR / "kg" / "ontologies" / "symp.obo.gz").read_bytes()[:400])
    with pytest.raises(InputError, match=r"symp\.obo\.gz: truncated or corrupt"):
        build_kg(sources=[*fixture_sources, f"symp={truncated}"], settings=settings)
    latin1 = tmp_path / "latin1.obo"
    latin1.write_bytes("[Term]\nid: HP:0000001\nname: caf\xe9\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"latin1\.obo: truncated or corrupt"):
        build_kg(sources=[*fixture_sources, f"obo={latin1}"], settings=settings)
    assert stored(settings) == before


def test_a_rebuild_through_a_symlink_replaces_the_file_it_names(tmp_path, fixture_sources):
    """The link stays a link, the file it names gets the new KG, and a patient whose commit
    is only in the log beside the link (a writer killed after it) is carried over."""
    from graph.settings import Settings
    from tests.kg_loaders.killed_writer import commit_then_die

    real = tmp_path / "real"
    real.mkdir()
    build_kg(sources=fixture_sources, settings=Settings(home=real, db_path=real / "kg.lbug"))
    home = tmp_path / "home"
    home.mkdir()
    (home / "kg.lbug").symlink_to(real / "kg.lbug")
    settings = Settings(home=home, db_path=home / "kg.lbug")
    commit_then_die(settings, "LATE")
    assert (home / "kg.lbug.wal").exists()
    result = build_kg(sources=fixture_sources, settings=settings)
    assert result.patients_carried == 1
    assert (home / "kg.lbug").is_symlink() and not (home / "kg.lbug.wal").exists()
    with open_store("embedded", settings=Settings(home=real, db_path=real / "kg.lbug")) as store:
        assert store.patient_ids() == ["LATE"] and store.counts().nodes["Concept"] > 0
