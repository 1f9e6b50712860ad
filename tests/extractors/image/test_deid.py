"""PS3.15 Annex E Basic Profile: one test per attribute group, on real DICOM headers."""

from __future__ import annotations

import copy

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from extractors.image import deid
from extractors.image.deid import Deidentifier
from extractors.image.readers import load_image
from tests.extractors.image.dicom_files import dicom_file


@pytest.fixture()
def ct() -> Dataset:
    """A real CT header (JFK IMAGING CENTER, 179 private elements) with every group filled in."""
    dataset = pydicom.dcmread(dicom_file("CT_small.dcm"))
    for keyword in deid.PATIENT_IDENTITY_X + deid.INSTITUTION_PERSONNEL_X + deid.STUDY_IDS_X:
        vr = pydicom.datadict.dictionary_VR(pydicom.datadict.tag_for_keyword(keyword))
        if vr == "SQ":
            setattr(dataset, keyword, Sequence([Dataset()]))
        elif vr in ("US", "SS", "UL", "SL", "FL", "FD"):
            setattr(dataset, keyword, 1)
        elif vr in ("DS", "IS"):
            setattr(dataset, keyword, "1")
        elif vr == "DA":
            setattr(dataset, keyword, "19700101")
        elif vr == "TM":
            setattr(dataset, keyword, "120000")
        else:
            setattr(dataset, keyword, "SECRET")
    for keyword in deid.DESCRIPTIONS_X:
        vr = pydicom.datadict.dictionary_VR(pydicom.datadict.tag_for_keyword(keyword))
        if vr in ("LO", "LT", "ST", "UT", "SH"):
            setattr(dataset, keyword, "Mr Smith's follow-up")
    dataset.AccessionNumber, dataset.StudyID = "ACC123", "STUDY9"
    dataset.ReferringPhysicianName = "Doe^Jane"
    dataset.PatientBirthDate, dataset.PatientSex, dataset.PatientAge = "19610412", "F", "042Y"
    return dataset


def test_patient_identity_group(ct):
    assert ct.PatientName and ct.PatientBirthDate
    clean = Deidentifier()(ct)
    for keyword in deid.PATIENT_IDENTITY_Z:
        assert keyword in clean and clean[keyword].value in (None, "", b""), keyword
    for keyword in deid.PATIENT_IDENTITY_X:
        assert keyword not in clean, keyword
    assert clean.PatientIdentityRemoved == "YES"
    code = clean.DeidentificationMethodCodeSequence[0]
    assert (code.CodeValue, code.CodingSchemeDesignator) == ("113100", "DCM")


def test_patient_id_becomes_a_kgdx_id_and_the_mapping_is_returned(ct):
    deidentifier = Deidentifier()
    clean = deidentifier(ct)
    assert ct.PatientID == "1CT1"
    assert clean.PatientID.startswith("P-") and clean.PatientID != "1CT1"
    assert deidentifier.patient_ids == {"1CT1": clean.PatientID}
    # Known pairs (from the kgdx store) are reused, not re-derived.
    assert Deidentifier(patient_ids={"1CT1": "P-000000000042"})(ct).PatientID == "P-000000000042"


def test_institution_and_personnel_group(ct):
    assert ct.InstitutionName == "SECRET"
    clean = Deidentifier()(ct)
    assert clean.ReferringPhysicianName in (None, "")
    for keyword in deid.INSTITUTION_PERSONNEL_X:
        assert keyword not in clean, keyword


def test_study_identifier_group(ct):
    clean = Deidentifier()(ct)
    assert clean.AccessionNumber in (None, "") and clean.StudyID in (None, "")
    for keyword in deid.STUDY_IDS_X:
        assert keyword not in clean, keyword


def test_dates_and_times_group(ct):
    assert ct.StudyDate == "20040119" and "AcquisitionDate" in ct
    clean = Deidentifier()(ct)
    for keyword in deid.DATES_Z:
        assert clean.get(keyword) in (None, ""), keyword
    remaining = [e.keyword for e in clean.iterall() if e.VR in ("DA", "DT", "TM") and e.value]
    assert remaining == []


def test_descriptions_group(ct):
    clean = Deidentifier()(ct)
    for keyword in deid.DESCRIPTIONS_X:
        assert keyword not in clean, keyword
    assert "Smith" not in str(clean)


def test_private_attributes_are_removed(ct):
    assert sum(element.tag.is_private for element in ct) == 179
    clean = Deidentifier()(ct)
    assert not any(element.tag.is_private for element in clean.iterall())


def test_overlays_are_removed():
    dataset = pydicom.dcmread(dicom_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    assert any(element.tag.group == 0x6000 for element in dataset)
    clean = Deidentifier()(dataset)
    assert not any(element.tag.group & 0xFF00 == 0x6000 for element in clean)


def test_names_nested_in_sequences_are_removed(ct):
    item = Dataset()
    item.PersonName = "Hidden^Person"
    item.ObserverType = "PSN"
    ct.ContentSequence = Sequence([item])
    clean = Deidentifier()(ct)
    assert "Hidden" not in str(clean)
    assert clean.ContentSequence[0].ObserverType == "PSN"


def test_uids_are_remapped_consistently_within_a_study():
    first = pydicom.dcmread(dicom_file("emri_small.dcm"))
    second = copy.deepcopy(first)
    second.SOPInstanceUID = first.SOPInstanceUID.rsplit(".", 1)[0] + ".99"
    deidentifier = Deidentifier()
    a, b = deidentifier(first), deidentifier(second)
    assert a.StudyInstanceUID == b.StudyInstanceUID != first.StudyInstanceUID
    assert a.SeriesInstanceUID == b.SeriesInstanceUID != first.SeriesInstanceUID
    assert a.SOPInstanceUID != b.SOPInstanceUID
    assert a.StudyInstanceUID.startswith("2.25.") and len(a.StudyInstanceUID) <= 64
    assert a.file_meta.MediaStorageSOPInstanceUID == a.SOPInstanceUID
    # Standard UIDs (SOP class, transfer syntax) are not identifying and stay.
    assert a.SOPClassUID == first.SOPClassUID
    # A different secret (another site or run) gives unlinkable UIDs.
    assert Deidentifier()(first).StudyInstanceUID != a.StudyInstanceUID


def test_the_input_dataset_is_not_modified(ct):
    before = str(ct.PatientName), ct.StudyInstanceUID
    Deidentifier()(ct)
    assert (str(ct.PatientName), ct.StudyInstanceUID) == before


def test_loaded_images_carry_only_deidentified_headers():
    image = load_image(dicom_file("CT_small.dcm"))
    header = image.header
    assert header.PatientIdentityRemoved == "YES" and "PixelData" not in header
    assert "CompressedSamples" not in str(header) and "JFK" not in str(header)
    assert image.patient_id == header.PatientID and image.image_id == header.SOPInstanceUID


def test_in_place_mode_returns_the_same_cleaned_dataset(ct):
    reference = Deidentifier(secret=b"k")(ct)
    same = Deidentifier(secret=b"k")(ct, in_place=True)
    assert same is ct and same.to_json_dict() == reference.to_json_dict()


def test_implicit_vr_and_un_encoded_headers_are_cleaned():
    for name in ("MR_small_implicit.dcm", "explicit_VR-UN.dcm"):
        dataset = pydicom.dcmread(dicom_file(name))
        clean = Deidentifier()(dataset)
        names = [e for e in clean.iterall() if e.VR == "PN" or e.keyword == "PatientName"]
        assert all(not e.value for e in names), name
        assert clean.get("StudyDate") in (None, ""), name
        assert str(clean.StudyInstanceUID).startswith("2.25."), name
