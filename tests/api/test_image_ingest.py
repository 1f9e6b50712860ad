"""``Engine.ingest_images`` and ``kgdx ingest image``: real DICOMs into the embedded store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.engine import Engine
from extractors.image.predict import ImageExtractor
from graph.errors import InputError
from graph.records import Finding, Image, ImageEvidence, Patient, Report

pydicom_data = pytest.importorskip("pydicom.data")

PNEUMONIA = "UMLS:C0032285"


def _testdata(name: str) -> Path:
    path = pydicom_data.get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} is not installed (pydicom-data)")
    return Path(path)


def _original_id(path: Path) -> str:
    import pydicom

    return str(pydicom.dcmread(path, stop_before_pixels=True).PatientID)


def _pseudonym(settings, path: Path) -> str:
    """What the store keeps for a file's PatientID: a keyed HMAC, never the PatientID."""
    from api.image_ingest import deid_secret
    from extractors.image.deid import Deidentifier

    return Deidentifier(secret=deid_secret(settings)).source_pseudonym(_original_id(path))


@pytest.fixture(scope="module")
def extractor() -> ImageExtractor:
    # The shipped CNN, loaded once for the module. Most tests here are about the PatientID
    # mapping and use pydicom's CT_small.dcm, which is out of the model's scope: forced.
    return ImageExtractor(policy="force")


@pytest.fixture()
def engine(store) -> Engine:
    engine = Engine(store=store)
    engine.build_seed_kg()
    return engine


def _shows(store, patient_id: str) -> list[tuple]:
    rows = store.query(
        "MATCH (p:Patient {id: $pid})-[:HAS_IMAGE]->(i:Image)-[s:SHOWS]->(c:Concept) "
        "RETURN i.id, i.modality, c.id, s.probability, s.model_id ORDER BY i.id",
        {"pid": patient_id},
    ).rows
    return [tuple(row) for row in rows]


def _scope(store, patient_id: str) -> list[tuple]:
    rows = store.query(
        "MATCH (p:Patient {id: $pid})-[:HAS_IMAGE]->(i:Image)-[s:SHOWS]->(:Concept) "
        "RETURN i.modality, s.scope, s.in_scope, s.scope_reason, s.ood_score ORDER BY i.id",
        {"pid": patient_id},
    ).rows
    return [tuple(row) for row in rows]


def _node_text(store, label: str) -> str:
    rows = store.query(f"MATCH (n:{label}) RETURN n").rows
    return json.dumps([row[0] for row in rows], default=str)


def test_ct_image_creates_patient_with_shows_edge(engine, extractor):
    ct = _testdata("CT_small.dcm")
    patient = engine.ingest_images([ct], extractor=extractor)

    assert patient.id.startswith("P-")
    assert patient.attributes["source_ids"] == {"dicom": [_pseudonym(engine.settings, ct)]}
    assert _original_id(ct) not in _node_text(engine.store, "Patient")
    [image] = patient.images
    assert image.modality == "CT" and image.path is None
    [(image_id, modality, concept, probability, model_id)] = _shows(engine.store, patient.id)
    assert image_id.endswith(image.id) and modality == "CT" and concept == PNEUMONIA
    [finding] = [f for f in patient.findings if isinstance(f.provenance, ImageEvidence)]
    assert probability == pytest.approx(finding.provenance.probability)
    assert model_id == extractor.model_id
    # the stored probability is the model's: predicting the file again gives the same number
    [again] = extractor.predict_files([ct])
    assert again.probabilities[PNEUMONIA] == pytest.approx(probability, abs=1e-6)


def test_out_of_scope_images_are_refused_and_nothing_is_stored(engine):
    before = engine.store.counts()
    with pytest.raises(InputError, match="(?s)outside the scope.*CT_small.dcm: modality CT"):
        engine.ingest_images([_testdata("CT_small.dcm")], extractor=ImageExtractor())
    assert engine.store.counts() == before and engine.store.patient_ids() == []


def test_forced_images_carry_their_scope_onto_the_shows_edge(engine, extractor):
    ct, cr = _testdata("CT_small.dcm"), _testdata("RG1_UNCR.dcm")
    forced = engine.ingest_images([ct], extractor=extractor)
    chest = engine.ingest_images([cr], extractor=extractor)
    [(modality, scope, in_scope, reason, ood)] = _scope(engine.store, forced.id)
    assert (modality, scope, in_scope) == ("CT", "out_of_scope", False)
    assert reason.startswith("modality CT (computed tomography) is not a radiograph")
    assert ood > 1.0
    [(modality, scope, in_scope, reason, _)] = _scope(engine.store, chest.id)
    assert (modality, scope, in_scope) == ("CR", "unverified", False)
    assert "an adult patient" in reason
    # the record read back is the record written
    for patient in (forced, chest):
        stored = engine.store.get_patient(patient.id)
        [evidence] = [f.provenance for f in stored.findings]
        [written] = [f.provenance for f in patient.findings]
        assert evidence == written
    # researchers filter in Cypher: nothing here is in scope, both are flagged
    rows = engine.store.query(
        "MATCH (:Image)-[s:SHOWS]->(:Concept) WHERE s.in_scope RETURN count(*)"
    ).rows
    assert [list(row) for row in rows] == [[0]]
    flagged = engine.store.query(
        "MATCH (i:Image)-[s:SHOWS]->(:Concept) WHERE s.scope IN ['unverified', 'out_of_scope'] "
        "RETURN i.modality, s.scope ORDER BY i.modality"
    ).rows
    assert [list(row) for row in flagged] == [["CR", "unverified"], ["CT", "out_of_scope"]]


def test_findings_stored_without_a_scope_read_back_unchecked(engine):
    finding = Finding(
        concept_id=PNEUMONIA,
        provenance=ImageEvidence(image_id="i1", model_id="m", probability=0.7),
    )
    engine.store.upsert_patient(
        Patient(id="P010", images=(Image(id="i1", modality="CR"),), findings=(finding,))
    )
    assert _scope(engine.store, "P010") == [("CR", "", None, "", None)]
    [back] = engine.store.get_patient("P010").findings
    assert back.provenance.scope == "" and back.provenance.in_scope is None


def test_reports_are_kept_and_reingest_is_idempotent(engine, extractor):
    cr = _testdata("RG1_UNCR.dcm")
    first = engine.ingest_images([cr], extractor=extractor)
    # the patient gets a report later; its findings come from the text extractor
    with_report = first.model_copy(
        update={"reports": (Report(id="r1", text="Right lower lobe consolidation."),)}
    )
    [stored_with_report] = engine.ingest([with_report])
    text_findings = [f for f in stored_with_report.findings if f.provenance.kind == "text"]
    assert text_findings, "the report should yield a text finding"
    counts = engine.store.counts()

    # a second run: ingest_images gives the extractor a new de-identifier built from the stored
    # mapping, which yields the same patient id
    second = engine.ingest_images([cr], extractor=extractor)
    assert second.id == first.id
    assert engine.store.counts() == counts
    stored = engine.store.get_patient(first.id)
    assert [r.id for r in stored.reports] == ["r1"]
    assert sorted(f.concept_id for f in stored.findings if f.provenance.kind == "text") == sorted(
        f.concept_id for f in text_findings
    )
    assert [i.id for i in stored.images] == [i.id for i in first.images]
    assert len(_shows(engine.store, first.id)) == 1


def test_mapping_lives_only_in_the_patient_attributes(engine, extractor):
    cr, ct = _testdata("RG1_UNCR.dcm"), _testdata("CT_small.dcm")
    a = engine.ingest_images([cr], extractor=extractor)
    b = engine.ingest_images([ct], extractor=extractor)
    assert a.id != b.id
    for path in (cr, ct):
        original = _original_id(path)
        assert original not in _node_text(engine.store, "Image")
        assert original not in _node_text(engine.store, "Patient")
        assert original not in _node_text(engine.store, "Report")
        assert original not in a.id + b.id
    mapping = engine.store.query(
        "MATCH (p:Patient) RETURN p.id, p.attributes ORDER BY p.id"
    ).records()
    by_id = {row["p.id"]: json.loads(row["p.attributes"]) for row in mapping}
    assert by_id[a.id]["source_ids"]["dicom"] == [_pseudonym(engine.settings, cr)]
    assert by_id[b.id]["source_ids"]["dicom"] == [_pseudonym(engine.settings, ct)]


def test_explicit_patient_is_reused_on_the_next_ingest(engine, extractor):
    engine.ingest([Patient(id="P007", reports=(Report(id="r1", text="Cough and fever."),))])
    ct = _testdata("CT_small.dcm")
    patient = engine.ingest_images([ct], patient_id="P007", extractor=extractor)
    assert patient.id == "P007" and [r.id for r in patient.reports] == ["r1"]
    # next time the file's PatientID alone finds P007
    assert engine.ingest_images([ct], extractor=extractor).id == "P007"
    with pytest.raises(InputError, match="belongs to stored patient 'P007'"):
        engine.ingest_images([ct], patient_id="P008", extractor=extractor)
    assert engine.store.patient_ids() == ["P007"]


def test_bad_file_in_a_batch_writes_nothing(engine, extractor, tmp_path):
    ct = _testdata("CT_small.dcm")
    corrupt = tmp_path / "corrupt.dcm"
    corrupt.write_bytes(ct.read_bytes()[: ct.stat().st_size // 2])  # truncated pixel data
    before = engine.store.counts()
    with pytest.raises(InputError):
        engine.ingest_images([ct, corrupt], extractor=extractor)
    assert engine.store.counts() == before
    assert engine.store.patient_ids() == []


def test_structured_report_is_refused(engine, extractor):
    sr = _testdata("test-SR.dcm")
    with pytest.raises(InputError, match="not an image"):
        engine.ingest_images([sr], extractor=extractor)
    assert engine.store.patient_ids() == []


def test_images_of_several_patients_need_one_target(engine, extractor):
    with pytest.raises(InputError, match="2 different PatientIDs"):
        engine.ingest_images(
            [_testdata("CT_small.dcm"), _testdata("RG1_UNCR.dcm")], extractor=extractor
        )
    assert engine.store.patient_ids() == []


@pytest.mark.shared_data
def test_shared_chest_cr_through_the_cli(shared_data, settings, tmp_path, monkeypatch):
    source = shared_data / "dicom" / "RG1_UNCR_chest_cr.dcm"
    if not source.exists():
        pytest.skip("RG1_UNCR_chest_cr.dcm is not in ../shared/data/dicom")
    from api.cli import app

    monkeypatch.setenv("KGDX_HOME", str(settings.home))
    monkeypatch.setenv("KGDX_DB_PATH", str(settings.db_path))
    with Engine(settings=settings) as engine:
        engine.build_seed_kg()
    copy = tmp_path / "chest.dcm"
    shutil.copyfile(source, copy)

    runner = CliRunner()
    refused = runner.invoke(app, ["ingest", "image", str(_testdata("MR_small.dcm"))])
    assert refused.exit_code != 0 and "--force" in str(refused.exception)
    result = runner.invoke(app, ["ingest", "image", str(copy)])
    assert result.exit_code == 0, result.output
    original = _original_id(copy)
    assert original not in result.output
    again = runner.invoke(app, ["ingest", "image", str(copy)])
    assert again.exit_code == 0, again.output

    with Engine(settings=settings) as engine:
        [patient_id] = engine.store.patient_ids()
        assert patient_id in result.output
        [(_, modality, concept, probability, _)] = _shows(engine.store, patient_id)
        assert modality == "CR" and concept == PNEUMONIA
        assert f"{probability:.3f}" in result.output
        # an adult CR: scored, flagged in the table, its note and the store
        [(_, scope, _, reason, _)] = _scope(engine.store, patient_id)
        assert scope == "unverified" and "an adult patient" in reason
        assert "unverified" in result.output and "an adult patient" in result.output
        assert engine.store.get_patient(patient_id).attributes["source_ids"] == {
            "dicom": [_pseudonym(settings, copy)]
        }
        assert original not in _node_text(engine.store, "Patient")
    # the original id is in the store only: not in the key file beside it
    assert original not in (settings.home / "deid.key").read_text()


def test_png_needs_an_explicit_patient(engine, extractor, tmp_path):
    import numpy as np
    from PIL import Image as PILImage

    png = tmp_path / "chest.png"
    gradient = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (64, 1))
    PILImage.fromarray(gradient).save(png)
    with pytest.raises(InputError, match="no PatientID"):
        engine.ingest_images([png], extractor=extractor)
    patient = engine.ingest_images([png], patient_id="P009", extractor=extractor)
    assert len(patient.images) == 1 and "source_ids" not in patient.attributes
    assert len(_shows(engine.store, "P009")) == 1


def test_deid_key_is_private_and_checked(settings):
    from api.image_ingest import deid_secret
    from graph.errors import ConfigError

    key = deid_secret(settings)
    path = settings.home / "deid.key"
    assert len(key) == 32 and deid_secret(settings) == key
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text("not hex\n")
    with pytest.raises(ConfigError, match="restore it"):
        deid_secret(settings)


def test_reports_only_ingest_keeps_stored_images_and_mapping(engine, extractor):
    ct = _testdata("CT_small.dcm")
    patient = engine.ingest_images([ct], extractor=extractor)
    before = engine.store.counts()
    report = Report(id="r1", text="FINDINGS: Small left pleural effusion. No pneumothorax.")
    [stored] = engine.ingest([Patient(id=patient.id, reports=(report,))])
    assert stored.images == patient.images
    assert stored.attributes["source_ids"] == {"dicom": [_pseudonym(engine.settings, ct)]}
    again = engine.store.get_patient(patient.id)
    assert again.images == patient.images
    kinds = {type(f.provenance).__name__ for f in again.findings}
    assert kinds == {"ImageEvidence", "TextSpan"}
    assert engine.store.counts().relations["SHOWS"] == before.relations["SHOWS"]
    # the stored mapping still finds the patient for the same file
    assert engine.ingest_images([ct], extractor=extractor).id == patient.id
