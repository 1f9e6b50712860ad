"""Every mention keeps its report section, and a task chooses which sections feed it (issue 12,
item 5): "IMPRESSION: CHF" is a finding of the impression, stored as such, and the default
diagnosis input leaves it out."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from graph.errors import InputError, StoreError
from graph.records import (
    Finding,
    Image,
    ImageEvidence,
    Patient,
    Report,
    SectionSelection,
    TextSpan,
)
from graph.sections import (
    ALL_SECTIONS,
    FEATURE_SECTIONS,
    check_known_sections,
    parse_sections,
    select_findings,
)
from graph.settings import Settings
from graph.stores import ladybug_cypher as cy
from graph.stores import open_store
from graph.subgraph import PatientSubgraph

CHF, CARDIOMEGALY, EFFUSION = "UMLS:C0018802", "UMLS:C0018800", "UMLS:C0032227"
REPORT = (
    "Portable chest radiograph.\n\nFINDINGS: The heart is enlarged. Small bilateral pleural "
    "effusions.\n\nIMPRESSION: CHF."
)


@pytest.fixture(scope="module")
def seed_kg():
    from kg_loaders.seed import read_seed_concepts, read_seed_relations

    concepts = read_seed_concepts()
    return concepts, read_seed_relations(concepts=concepts)


@pytest.fixture(scope="module")
def patient(seed_kg) -> Patient:
    """A patient whose findings the real extractor read from REPORT."""
    from extractors.text import ReportExtractor

    extractor = ReportExtractor.from_concepts(seed_kg[0])
    findings = extractor.extract(REPORT, "r1")
    return Patient(
        id="P1",
        reports=(Report(id="r1", text=REPORT),),
        images=(Image(id="i1", modality="CR"),),
        findings=(
            *findings,
            Finding(
                concept_id=EFFUSION,
                provenance=ImageEvidence(image_id="i1", model_id="cnn", probability=0.8),
            ),
        ),
        labels=(CHF,),
    )


def _sections_of(patient: Patient, concept_id: str) -> list[str | None]:
    return [
        f.provenance.section
        for f in patient.findings
        if f.concept_id == concept_id and isinstance(f.provenance, TextSpan)
    ]


def test_the_impressions_diagnosis_is_a_finding_of_the_impression(patient):
    assert _sections_of(patient, CHF) == ["impression"]
    assert set(_sections_of(patient, CARDIOMEGALY)) == {"findings"}


def test_spellings_of_a_selection():
    assert parse_sections("all") == ALL_SECTIONS
    assert parse_sections("default") == FEATURE_SECTIONS == parse_sections("-impression")
    used = parse_sections("findings, indication")
    assert used == SectionSelection(include=("findings", "indication"), unknown=False)
    assert parse_sections("findings,unknown").unknown is True
    assert parse_sections("-impression,-unknown") == SectionSelection(
        exclude=("impression",), unknown=False
    )
    assert parse_sections("-unknown") == SectionSelection(unknown=False)
    for bad in ("", "findings,-impression", "Not A Section"):
        with pytest.raises(InputError):
            parse_sections(bad)
    assert FEATURE_SECTIONS.describe() == (
        "all sections except impression, and mentions of unknown section"
    )
    assert used.describe() == "sections findings, indication"


def test_a_selection_keeps_image_findings_and_decides_unknown_sections(patient):
    only_findings = SectionSelection(include=("findings",), unknown=False)
    kept = select_findings(patient.findings, only_findings)
    assert {f.concept_id for f in kept if isinstance(f.provenance, TextSpan)} >= {CARDIOMEGALY}
    assert CHF not in {f.concept_id for f in kept}
    assert any(isinstance(f.provenance, ImageEvidence) for f in kept)  # images have no section
    assert FEATURE_SECTIONS.admits(None) and not only_findings.admits(None)
    assert not FEATURE_SECTIONS.admits("IMPRESSION")  # stored by hand in capitals
    # "" as a stored section reads as unknown, the way mentions from before sections came back
    assert TextSpan(doc_id="d", section="", start=0, end=1, text="x").section is None


def test_a_misspelt_section_is_refused():
    with pytest.raises(InputError, match="impresion"):
        check_known_sections(parse_sections("-impresion"), {"findings", "impression"})
    assert check_known_sections(FEATURE_SECTIONS, {"impression"}) is FEATURE_SECTIONS


def test_the_default_diagnosis_input_leaves_out_the_impression(patient, seed_kg):
    concepts = {c.id: c for c in seed_kg[0]}
    default = PatientSubgraph.from_patient(patient, concepts=concepts)
    everything = PatientSubgraph.from_patient(patient, concepts=concepts, sections=ALL_SECTIONS)
    assert default.sections == FEATURE_SECTIONS and everything.sections == ALL_SECTIONS
    linked = lambda subgraph: {c for ids in subgraph.edges.values() for c in ids}  # noqa: E731
    assert CHF not in linked(default) and CHF in linked(everything)
    assert {CARDIOMEGALY, EFFUSION} <= set(default.observed)
    assert CHF not in default.findings


def test_the_store_keeps_the_section_of_every_mention(patient, store):
    from kg_loaders.seed import read_seed_concepts

    store.upsert_concepts(read_seed_concepts())
    store.upsert_patient(patient)
    again = store.get_patient("P1")
    assert _sections_of(again, CHF) == ["impression"]
    assert {f.provenance.section for f in again.findings if f.provenance.kind == "text"} == {
        "findings",
        "impression",
    }
    rows = store.query(
        "MATCH (:Report)-[m:MENTIONS]->(c:Concept {id: $chf}) RETURN m.section", {"chf": CHF}
    ).rows
    assert [list(row) for row in rows] == [["impression"]]
    edges = dict(
        store.query(
            "MATCH (:Patient {id: 'P1'})-[f:HAS_FINDING]->(c:Concept) RETURN c.id, f.sections"
        ).rows
    )
    assert json.loads(edges[CHF]) == ["impression"]
    assert json.loads(edges[CARDIOMEGALY]) == ["findings"]
    # pleural effusion is read in the findings and seen on the image: only the text has a section
    assert json.loads(edges[EFFUSION]) == ["findings"]


def _old_database(path) -> None:
    """A database as an older kgdx wrote it: no ``HAS_FINDING.sections`` nor
    ``Prediction.input_sections``, a mention's unknown section stored as ``""``."""
    import ladybug

    db = ladybug.Database(str(path))
    connection = ladybug.Connection(db)
    for statement in cy.create_schema():
        connection.execute(statement)
    connection.execute("ALTER TABLE HAS_FINDING DROP sections")
    connection.execute("ALTER TABLE Prediction DROP input_sections")
    connection.execute(
        "CREATE (:Concept {id: 'UMLS:C0018800', name: 'cardiomegaly', kind: 'finding'})"
    )
    connection.execute(
        "CREATE (p:Patient {id: 'OLD', attributes: ''})-[:HAS_REPORT]->"
        "(:Report {id: 'OLD/r1', patient_id: 'OLD', text: 'Cardiomegaly.'})"
    )
    connection.execute(
        "MATCH (d:Report {id: 'OLD/r1'}), (c:Concept {id: 'UMLS:C0018800'}) "
        "CREATE (d)-[:MENTIONS {polarity: 'present', certainty: 'definite', "
        "temporality: 'current', experiencer: 'patient', confidence: 1.0, section: '', "
        "sentence: 'Cardiomegaly.', start: 0, `end`: 12}]->(c)"
    )
    connection.execute(
        "MATCH (p:Patient {id: 'OLD'}), (c:Concept {id: 'UMLS:C0018800'}) "
        "CREATE (p)-[:HAS_FINDING {polarity: 'present', certainty: 'definite', "
        "temporality: 'current', experiencer: 'patient', confidence: 1.0, "
        "sources: '[\"r1\"]'}]->(c)"
    )
    connection.close()
    db.close()


@pytest.mark.parametrize("read_only", [False, True], ids=["read-write", "read-only"])
def test_a_database_from_before_sections_still_loads(tmp_path, read_only):
    path = tmp_path / "old.lbug"
    _old_database(path)
    settings = Settings(home=tmp_path, db_path=path)
    with open_store("embedded", settings=settings, read_only=read_only) as store:
        old = store.get_patient("OLD")
        assert [f.provenance.section for f in old.findings] == [None]  # unknown
        rows = store.query("MATCH (:Patient)-[f:HAS_FINDING]->(:Concept) RETURN f.sections").rows
        assert [list(row) for row in rows] == [[None]]  # not recorded
        assert not store.query("MATCH (x:Prediction) RETURN x.input_sections").rows
    with open_store("embedded", settings=settings) as store:  # it was upgraded in place
        store.upsert_patient(old.model_copy(update={"id": "NEW"}))
        assert store.get_patient("NEW").findings == old.findings


def test_an_old_database_held_by_an_old_writer_is_refused_with_a_reason(tmp_path):
    path = tmp_path / "old.lbug"
    _old_database(path)
    # another process holds it read-write (LadybugDB's lock is per process), like an old server
    code = f"import ladybug, sys, time; db = ladybug.Database({str(path)!r}); print('held'); "
    code += "sys.stdout.flush(); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(StoreError, match="older kgdx"):
            open_store("embedded", settings=Settings(home=tmp_path, db_path=path), read_only=True)
    finally:
        holder.kill()
        holder.wait()


def test_extract_report_json_names_each_findings_section():
    from api.cli import app

    result = CliRunner().invoke(
        app, ["extract", "report", "--text", REPORT, "--json", "--kg", "seed"]
    )
    assert result.exit_code == 0, result.output
    sections = {
        (row["concept_id"], row["section"]) for row in json.loads(result.output)["findings"]
    }
    assert (CHF, "impression") in sections and (CARDIOMEGALY, "findings") in sections
    plain = CliRunner().invoke(
        app, ["extract", "report", "--text", "Cardiomegaly.", "--json", "--kg", "seed"]
    )
    assert [row["section"] for row in json.loads(plain.output)["findings"]] == [None]
