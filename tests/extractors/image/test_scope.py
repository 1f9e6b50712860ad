"""Scope checks of the image model: DICOM headers (real files and odd values), rasters, policy."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.valuerep import DSfloat

from extractors.image.readers import load_image
from extractors.image.scope import (
    Scope,
    ScopeCheck,
    check_dicom_header,
    check_pixels,
    check_raster,
)
from graph.errors import InputError, ModelError
from tests.extractors.image.dicom_files import dicom_file

# odd values are the point of some tests; pydicom warns about each
pytestmark = pytest.mark.filterwarnings("ignore:Invalid value for VR")


def header(name: str):
    return dcmread(dicom_file(name), stop_before_pixels=True, force=True)


# ------------------------------------------------------------------ real DICOM headers
@pytest.mark.parametrize(
    ("name", "says"),
    [
        ("MR_small.dcm", "modality MR (magnetic resonance) is not a radiograph"),
        ("emri_small.dcm", "modality MR"),  # a brain MR with BodyPartExamined HEAD
        ("CT_small.dcm", "modality CT (computed tomography)"),
        ("US1_J2KR.dcm", "modality US (ultrasound)"),
        ("examples_palette.dcm", "modality US"),
        ("JPEG2000.dcm", "modality NM (nuclear medicine)"),
    ],
)
def test_other_modalities_are_out_of_scope(name, says):
    check = check_dicom_header(header(name))
    assert check.scope is Scope.OUT
    assert says in check.decisive_reason


def test_a_brain_mr_is_out_for_its_body_part_too():
    check = check_dicom_header(header("emri_small.dcm"))
    assert "body part 'HEAD' is not the chest" in check.reason


def test_an_extremity_radiograph_is_out_of_scope():
    # pydicom-data's RG3: a real CR of an extremity, AP view
    check = check_dicom_header(header("RG3_UNCR.dcm"))
    assert check.scope is Scope.OUT
    assert check.decisive_reason == "body part 'EXTREMITY' is not the chest"


@pytest.mark.shared_data
def test_the_real_chest_cr_passes_modality_body_part_and_view(chest_cr):
    check = check_dicom_header(dcmread(chest_cr, stop_before_pixels=True))
    # CR, CHEST, PA: nothing but the patient's age (birth and study dates) is a concern
    assert check.scope is Scope.UNVERIFIED
    assert check.reasons == ("an adult patient; the model saw children aged 1-5",)


@pytest.mark.shared_data
def test_the_real_dx_thorax_of_a_child_is_in_scope(highdicom_dir):
    # DX, THORAX, no ViewPosition but PatientOrientation L\F (frontal), age 005Y
    check = check_dicom_header(dcmread(highdicom_dir / "dx_image.dcm", stop_before_pixels=True))
    assert check == ScopeCheck()


def test_a_secondary_capture_of_anything_is_unverified():
    check = check_dicom_header(header("OT-PAL-8-face.dcm"))  # a photograph of a face, as OT
    assert check.scope is Scope.UNVERIFIED
    assert "modality OT (other): could be anything" in check.reasons
    assert "a colour image (PALETTE COLOR); X-rays are grey" in check.reasons


# ------------------------------------------------------------------ odd and missing values
def chest(**tags) -> Dataset:
    """A header that is in scope, with ``tags`` replaced (None removes the tag)."""
    dataset = Dataset()
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1"  # CR Image Storage
    dataset.Modality = "CR"
    dataset.BodyPartExamined = "CHEST"
    dataset.ViewPosition = "PA"
    dataset.PhotometricInterpretation = "MONOCHROME2"
    dataset.Rows, dataset.Columns = 2048, 1760
    dataset.PatientAge = "004Y"
    for keyword, value in tags.items():
        if value is None:
            if keyword in dataset:
                delattr(dataset, keyword)
        else:
            setattr(dataset, keyword, value)
    return dataset


def test_the_reference_header_is_in_scope():
    assert check_dicom_header(chest()) == ScopeCheck()


@pytest.mark.parametrize(
    ("tags", "scope", "reason"),
    [
        ({"Modality": None, "SOPClassUID": None}, Scope.UNVERIFIED, "modality not recorded"),
        ({"Modality": ""}, Scope.IN, None),  # the SOP class says CR
        ({"Modality": None, "SOPClassUID": "1.2.840.10008.5.1.4.1.1.2"}, Scope.OUT, "CT Image"),
        ({"Modality": "DX", "SOPClassUID": "1.2.840.10008.5.1.4.1.1.4"}, Scope.OUT, "MR Image"),
        ({"Modality": "XRAY"}, Scope.UNVERIFIED, "unrecognised modality 'XRAY'"),
        ({"Modality": " dx "}, Scope.IN, None),
        ({"Modality": "MG"}, Scope.OUT, "mammography"),
        ({"BodyPartExamined": None}, Scope.UNVERIFIED, "body part not recorded"),
        ({"BodyPartExamined": "PORT CHEST"}, Scope.IN, None),
        ({"BodyPartExamined": "chest_pa"}, Scope.IN, None),
        ({"BodyPartExamined": "LUNG"}, Scope.IN, None),
        ({"BodyPartExamined": "CHESTABDOMEN"}, Scope.UNVERIFIED, "covers more than the chest"),
        ({"BodyPartExamined": "CHEST ABDOMEN"}, Scope.UNVERIFIED, "covers more than the chest"),
        ({"BodyPartExamined": "TSPINE"}, Scope.OUT, "'TSPINE' is not the chest"),
        ({"BodyPartExamined": "THORACIC SPINE"}, Scope.OUT, "is not the chest"),
        ({"BodyPartExamined": "KNEE"}, Scope.OUT, "is not the chest"),
        ({"BodyPartExamined": "ZZZ"}, Scope.UNVERIFIED, "unrecognised body part 'ZZZ'"),
        ({"ViewPosition": "LL"}, Scope.OUT, "lateral or oblique view"),
        ({"ViewPosition": "lateral"}, Scope.OUT, "lateral or oblique view"),
        ({"ViewPosition": "RAO"}, Scope.OUT, "lateral or oblique view"),
        ({"ViewPosition": "AP"}, Scope.IN, None),
        ({"ViewPosition": None}, Scope.UNVERIFIED, "view not recorded"),
        ({"ViewPosition": "", "PatientOrientation": ["L", "F"]}, Scope.IN, None),
        ({"ViewPosition": "", "PatientOrientation": ["A", "F"]}, Scope.OUT, "lateral view"),
        ({"ViewPosition": "", "PatientOrientation": ["F", "L"]}, Scope.UNVERIFIED, "rotated"),
        ({"ViewPosition": "", "PatientOrientation": "L"}, Scope.UNVERIFIED, "view not recorded"),
        ({"ViewPosition": "WEIRD"}, Scope.UNVERIFIED, "unrecognised view 'WEIRD'"),
        ({"ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}, Scope.UNVERIFIED, "localizer"),
        ({"ImageType": ["DERIVED", "SECONDARY"]}, Scope.UNVERIFIED, "secondary"),
        ({"ImageType": ["DERIVED", "PRIMARY"]}, Scope.IN, None),
        ({"PhotometricInterpretation": "RGB"}, Scope.UNVERIFIED, "a colour image (RGB)"),
        ({"PhotometricInterpretation": "MONOCHROME1"}, Scope.IN, None),
        ({"Rows": 1024, "Columns": 256}, Scope.UNVERIFIED, "aspect ratio"),
        ({"PatientAge": "045Y"}, Scope.UNVERIFIED, "an adult patient"),
        ({"PatientAge": "017Y"}, Scope.IN, None),
        ({"PatientAge": "030M"}, Scope.IN, None),
        ({"PatientAge": "garbage"}, Scope.IN, None),  # unreadable age: not a concern
        (
            {"PatientAge": None, "PatientBirthDate": "19600101", "StudyDate": "20200101"},
            Scope.UNVERIFIED,
            "an adult patient",
        ),
        (
            {"PatientAge": None, "PatientBirthDate": "20181340", "StudyDate": "20200101"},
            Scope.IN,
            None,
        ),
    ],
)
def test_header_values(tags, scope, reason):
    check = check_dicom_header(chest(**tags))
    assert check.scope is scope, check.reason
    if reason is None:
        assert check.reasons == ()
    else:
        assert reason in check.reason


def test_multi_valued_and_binary_values_do_not_break_the_checks():
    dataset = chest()
    dataset.BodyPartExamined = MultiValue(str, ["CHEST", "PA"])
    assert check_dicom_header(dataset).scope is Scope.IN
    dataset = chest()
    dataset.add_new(0x00185101, "CS", b"AP")  # ViewPosition as raw bytes
    assert check_dicom_header(dataset).scope is Scope.IN
    dataset = chest(Rows=None, Columns=None)
    dataset.add_new(0x00280010, "DS", DSfloat("2048.7"))  # Rows as a decimal string: no crash
    assert check_dicom_header(dataset).scope in (Scope.IN, Scope.UNVERIFIED)


def test_view_code_and_anatomic_region_sequences_are_read():
    dataset = chest(ViewPosition=None, BodyPartExamined=None)
    view, region = Dataset(), Dataset()
    view.CodeMeaning = "latero-medial"
    region.CodeMeaning = "Chest"
    dataset.ViewCodeSequence = [view]
    dataset.AnatomicRegionSequence = [region]
    check = check_dicom_header(dataset)
    assert check.scope is Scope.UNVERIFIED  # chest found; "latero-medial" is not a known view
    view.CodeMeaning = "postero-anterior"
    assert check_dicom_header(dataset) == ScopeCheck()
    empty = Dataset()  # an item without CodeMeaning
    dataset.ViewCodeSequence = [empty]
    assert check_dicom_header(dataset).scope is Scope.UNVERIFIED


def test_an_empty_header_is_unverified_never_an_error():
    check = check_dicom_header(Dataset())
    assert check.scope is Scope.UNVERIFIED
    assert "modality not recorded" in check.reason


def test_out_of_scope_reasons_come_first():
    check = check_dicom_header(chest(Modality="MR", BodyPartExamined=None))
    assert check.reasons[0].startswith("modality MR")
    assert check.decisive_reason == "modality MR (magnetic resonance) is not a radiograph"


# ------------------------------------------------------------------ rasters and pixels
def test_raster_shape_and_colour():
    assert check_raster(320, 280, colour=0.0) == ScopeCheck()
    assert "aspect ratio" in check_raster(1024, 256, colour=0.0).reason
    assert "a colour image" in check_raster(480, 640, colour=0.2).reason


def test_a_real_colour_photograph_is_flagged_as_colour():
    import sklearn.datasets

    photo = Path(sklearn.datasets.__file__).parent / "images" / "china.jpg"  # shipped with sklearn
    image = load_image(photo)
    assert image.scope.scope is Scope.UNVERIFIED
    assert "a colour image; X-rays are grey" in image.scope.reason


@pytest.mark.shared_data
def test_a_grey_x_ray_saved_as_rgb_is_not_colour(shared_data, tmp_path):
    from PIL import Image

    source = next((shared_data / "cohorts" / "covid_cxr" / "images").glob("*.png"))
    rgb = tmp_path / "rgb.png"
    with Image.open(source) as image:
        image.convert("RGB").save(rgb)
    assert load_image(rgb).scope == ScopeCheck()


def test_pixel_verdicts():
    assert check_pixels(0.4) == ScopeCheck(ood_score=0.4)
    flagged = check_pixels(3.0)
    assert flagged.scope is Scope.UNVERIFIED and flagged.ood_score == 3.0
    assert "OOD score 3.00 > 1" in flagged.reason
    assert "pixels not checked" in check_pixels(None).reason


# ------------------------------------------------------------------ the extractor's policy
def test_refuse_names_every_out_of_scope_file_and_scores_nothing(shipped_extractor):
    from extractors.image.predict import OutOfScopeError

    files = [dicom_file("MR_small.dcm"), dicom_file("CT_small.dcm")]
    with pytest.raises(OutOfScopeError) as caught:
        shipped_extractor.predict_files(files)
    assert isinstance(caught.value, InputError)
    assert len(caught.value.refused) == 2
    assert "MR_small.dcm: modality MR" in str(caught.value)
    assert "CT_small.dcm: modality CT" in str(caught.value)


@pytest.mark.shared_data
def test_one_out_of_scope_file_refuses_the_batch(shipped_extractor, chest_cr):
    with pytest.raises(InputError, match="1 image\\(s\\) outside the scope"):
        shipped_extractor.predict_files([chest_cr, dicom_file("MR_small.dcm")])


@pytest.mark.shared_data
def test_force_scores_and_flags_every_finding(chest_cr):
    from extractors.image.predict import ImageExtractor

    extractor = ImageExtractor(policy="force")
    mr, cr = extractor.predict_files([dicom_file("MR_small.dcm"), chest_cr])
    assert mr.scope.scope is Scope.OUT
    (finding,) = mr.findings
    assert finding.provenance.scope == "out_of_scope"
    assert finding.provenance.in_scope is False
    assert finding.provenance.scope_reason == mr.scope.reason
    assert finding.provenance.ood_score == pytest.approx(mr.scope.ood_score, abs=1e-4)
    assert cr.scope.scope is Scope.UNVERIFIED  # an adult
    assert cr.findings[0].provenance.scope == "unverified"


@pytest.mark.shared_data
def test_in_distribution_images_are_in_scope(shipped_extractor, shared_data):
    from extractors.image.datasets import load_npz_split
    from extractors.image.readers import LoadedImage

    images, _ = load_npz_split(shared_data / "images" / "pneumoniamnist_dev.npz", "val")
    loaded = [LoadedImage(image_id=f"v{i}", pixels=x) for i, x in enumerate(images)]
    predictions = shipped_extractor.predict_images(loaded, ["val"] * len(loaded))
    flagged = np.mean([not p.scope.in_scope for p in predictions])
    assert flagged <= 0.03  # the threshold is the 99th percentile of held-out training images
    assert all(p.findings[0].provenance.scope for p in predictions)


def test_missing_statistics_leave_pixels_unchecked(tmp_path):
    from extractors.image.predict import DEFAULT_WEIGHTS, ImageExtractor, labels_path_for

    weights = tmp_path / "model.safetensors"
    shutil.copy(DEFAULT_WEIGHTS, weights)
    shutil.copy(labels_path_for(DEFAULT_WEIGHTS), labels_path_for(weights))
    extractor = ImageExtractor(weights, policy="force")
    assert extractor.ood is None
    (prediction,) = extractor.predict_files([dicom_file("CT_small.dcm")])
    assert prediction.scope.ood_score is None
    assert "pixels not checked" in prediction.scope.reason


def test_statistics_of_other_weights_are_refused(tmp_path):
    from extractors.image.ood import ood_path_for
    from extractors.image.predict import DEFAULT_WEIGHTS, ImageExtractor, labels_path_for

    weights = tmp_path / "model.safetensors"
    shutil.copy(DEFAULT_WEIGHTS, weights)
    shutil.copy(labels_path_for(DEFAULT_WEIGHTS), labels_path_for(weights))
    shutil.copy(ood_path_for(DEFAULT_WEIGHTS), ood_path_for(weights))
    ImageExtractor(weights)  # the same bytes: accepted
    with weights.open("r+b") as handle:  # retrained weights, stale statistics
        handle.seek(-4, 2)
        handle.write(b"\x00\x00\x80\x3f")
    with pytest.raises(ModelError, match="fitted for other weights.*kgdx image fit-ood"):
        ImageExtractor(weights)


def test_forced_out_of_scope_findings_never_feed_a_diagnosis():
    from graph.records import Finding, ImageEvidence
    from graph.sections import ALL_SECTIONS, FEATURE_SECTIONS, select_findings

    def finding(scope: str) -> Finding:
        evidence = ImageEvidence(image_id="i", model_id="m", probability=0.9, scope=scope)
        return Finding(concept_id="UMLS:C0032285", provenance=evidence)

    out, flagged, fine, unchecked = map(finding, ("out_of_scope", "unverified", "in_scope", ""))
    for sections in (FEATURE_SECTIONS, ALL_SECTIONS):
        assert select_findings([out, flagged, fine, unchecked], sections) == (
            flagged,
            fine,
            unchecked,
        )
    assert [f.provenance.in_scope for f in (out, flagged, fine, unchecked)] == [
        False,
        False,
        True,
        None,
    ]
