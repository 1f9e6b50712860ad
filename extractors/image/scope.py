"""Is an image inside the image model's scope? DICOM header checks, raster checks, the policy.

The shipped CNN saw 28x28 frontal chest radiographs of children aged 1-5 and nothing else
(``data/models/pneumonia_cnn.md``). Scoring a brain MR gives a number that means nothing, so
each image gets a :class:`ScopeCheck` before its findings leave the extractor:

- ``in_scope``: everything checked agrees with the model card;
- ``unverified``: something could not be checked or looks unusual (no BodyPartExamined, a colour
  image, an adult, pixels unlike the training X-rays, ...): scored, and the findings say why;
- ``out_of_scope``: the header says it is something else (modality MR/CT/US/NM/..., another body
  part, a lateral view): refused by default (:class:`graph.errors.InputError`); with ``force``
  scored and flagged, and left out of diagnoses.

Header checks read the original dataset before de-identification (Patient's Age is removed by
the Basic Profile) and keep only their conclusions, never a header value that could identify
anyone. Every tag may be missing, empty, multi-valued or oddly spelt; a value the checks do not
recognise makes the image ``unverified``, never an error.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum

import numpy as np


class Scope(StrEnum):
    IN = "in_scope"
    UNVERIFIED = "unverified"
    OUT = "out_of_scope"


_RANK = {Scope.IN: 0, Scope.UNVERIFIED: 1, Scope.OUT: 2}


class ScopePolicy(StrEnum):
    """What the extractor does with an out-of-scope image."""

    REFUSE = "refuse"  # raise InputError naming every such file; nothing is scored
    FORCE = "force"  # score it; its findings carry scope out_of_scope


@dataclass(frozen=True)
class ScopeCheck:
    """The verdict on one image and every concern behind it (none when in scope).

    ``concerns`` pairs each reason with the verdict it alone would give; the verdict is the
    worst of them.
    """

    scope: Scope = Scope.IN
    concerns: tuple[tuple[Scope, str], ...] = ()
    ood_score: float | None = None  # pixel score / flag threshold (None: not measured)

    @property
    def reasons(self) -> tuple[str, ...]:
        """Every reason, the worst first (out-of-scope ones, then unverified ones)."""
        ranked = sorted(self.concerns, key=lambda concern: -_RANK[concern[0]])
        return tuple(reason for _, reason in ranked)

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @property
    def decisive_reason(self) -> str:
        """The reasons that set the verdict (for an out-of-scope image: why it is out)."""
        return "; ".join(reason for scope, reason in self.concerns if scope is self.scope)

    @property
    def in_scope(self) -> bool:
        return self.scope is Scope.IN

    def add(self, scope: Scope, reason: str) -> ScopeCheck:
        """This check with one more concern (the verdict is the worst of all)."""
        worst = scope if _RANK[scope] > _RANK[self.scope] else self.scope
        return ScopeCheck(worst, (*self.concerns, (scope, reason)), self.ood_score)

    def merge(self, other: ScopeCheck) -> ScopeCheck:
        worst = other.scope if _RANK[other.scope] > _RANK[self.scope] else self.scope
        score = other.ood_score if other.ood_score is not None else self.ood_score
        return ScopeCheck(worst, (*self.concerns, *other.concerns), score)


@dataclass(frozen=True)
class ModelScope:
    """What a model was trained on, as the checks and the model card state it."""

    description: str
    modalities: tuple[str, ...]
    body_parts: tuple[str, ...]
    views: tuple[str, ...]
    max_age_years: float | None = None
    population: str = ""
    extra: dict[str, str] = field(default_factory=dict)


CHEST_XRAY_SCOPE = ModelScope(
    description="frontal (PA or AP) chest radiographs (CR, DX)",
    modalities=("CR", "DX", "RG"),
    body_parts=("CHEST", "THORAX", "LUNG", "LUNGS", "CXR", "TORAX", "THORAKS"),
    views=("PA", "AP"),
    max_age_years=18.0,
    population="children aged 1-5",
)

# DICOM Modality defined terms (PS3.3 C.7.3.1.1.1) that are not radiographs of the chest.
OTHER_MODALITIES = {
    "CT": "computed tomography",
    "MR": "magnetic resonance",
    "US": "ultrasound",
    "NM": "nuclear medicine",
    "PT": "positron emission tomography",
    "MG": "mammography",
    "XA": "X-ray angiography",
    "RF": "radiofluoroscopy",
    "IO": "intra-oral X-ray",
    "PX": "panoramic dental X-ray",
    "DG": "diaphanography",
    "BMD": "bone densitometry",
    "BDUS": "bone densitometry (ultrasound)",
    "OP": "ophthalmic photography",
    "OPT": "ophthalmic tomography",
    "OPM": "ophthalmic mapping",
    "OAM": "ophthalmic axial measurements",
    "OCT": "optical coherence tomography",
    "IVOCT": "intravascular OCT",
    "IVUS": "intravascular ultrasound",
    "SM": "slide microscopy",
    "GM": "general microscopy",
    "ES": "endoscopy",
    "XC": "external-camera photography",
    "TG": "thermography",
    "LS": "laser surface scan",
    "DOC": "a document",
    "ECG": "an electrocardiogram",
    "HD": "a haemodynamic waveform",
    "EPS": "cardiac electrophysiology",
    "RTIMAGE": "a radiotherapy image",
    "RTDOSE": "a radiotherapy dose",
    "PA": "photoacoustic imaging",
    "DMS": "dermoscopy",
    "CFM": "confocal microscopy",
}
UNKNOWN_MODALITIES = ("OT",)  # "other": a scanned film or a screenshot could be anything

# Modality implied by the SOP Class name (pydicom's UID dictionary), first match wins.
_SOP_CLASS_MODALITY = (
    ("Mammography", "MG"),
    ("Breast Tomosynthesis", "MG"),
    ("Intra-Oral", "IO"),
    ("Computed Radiography", "CR"),
    ("Digital X-Ray", "DX"),
    ("Angiographic", "XA"),
    ("Radiofluoroscopic", "RF"),
    ("CT ", "CT"),
    ("Computed Tomography", "CT"),
    ("MR ", "MR"),
    ("Ultrasound", "US"),
    ("Nuclear Medicine", "NM"),
    ("Positron Emission", "PT"),
    ("Ophthalmic", "OP"),
    ("Microscop", "SM"),
    ("Endoscop", "ES"),
    ("Photograph", "XC"),
    ("RT Image", "RTIMAGE"),
)

# Body Part Examined values (PS3.16 Annex L, and common vendor spellings) that are not the chest.
OTHER_BODY_PARTS = frozenset(
    """HEAD BRAIN SKULL NECK FACE SINUS SINUSES ORBIT ORBITS TMJ JAW MANDIBLE MAXILLA DENTAL TEETH
    ABDOMEN ABD PELVIS ABDOMENPELVIS ABDPELVIS HIP HIPS KNEE KNEES LEG LEGS FEMUR TIBIA FIBULA
    ANKLE FOOT FEET TOE TOES ARM ARMS HUMERUS ELBOW FOREARM WRIST HAND HANDS FINGER FINGERS THUMB
    SHOULDER CLAVICLE SCAPULA SPINE CSPINE TSPINE LSPINE SSPINE SACRUM COCCYX BREAST EXTREMITY
    EXTREMITIES UPREXM LOWREXM KIDNEY KIDNEYS LIVER PANCREAS BLADDER PROSTATE UTERUS HEADNECK
    WHOLEBODY BONE BONES CALCANEUS PATELLA""".split()
)
_TOKEN = re.compile(r"[A-Z0-9]+")
LATERAL_VIEWS = frozenset(
    "LL RL LAT LATERAL LLD RLD DECUBITUS LAO RAO LPO RPO OBL OBLIQUE XTABLE SWIMMERS".split()
)
FRONTAL_VIEWS = frozenset("PA AP".split())
MAX_ASPECT = 2.5  # rows / cols of a radiograph: detectors are 14x17 or 17x17 inches
COLOUR_LIMIT = 0.02  # mean |R-G|, |G-B| in [0, 1] above which an image counts as colour


def _text(dataset: object, keyword: str) -> str:
    """A header value as one upper-case string ('' when missing, empty or unreadable)."""
    try:
        value = dataset.get(keyword)  # type: ignore[attr-defined]
    except Exception:  # a malformed element raises on access
        return ""
    if value is None:
        return ""
    try:
        if isinstance(value, bytes):
            value = value.decode("ascii", "replace")
        if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
            value = "\\".join(str(v) for v in value)
        return str(value).strip().upper()
    except Exception:
        return ""


def _values(dataset: object, keyword: str) -> list[str]:
    return (
        [v.strip() for v in _text(dataset, keyword).split("\\")] if _text(dataset, keyword) else []
    )


def _sop_modality(dataset: object) -> tuple[str, str]:
    """``(modality, SOP class name)`` implied by the SOP Class UID ('' when none is implied)."""
    from pydicom.uid import UID

    uid = _text(dataset, "SOPClassUID")
    if not uid:
        return "", ""
    name = UID(uid).name
    for marker, modality in _SOP_CLASS_MODALITY:
        if marker in name:
            return modality, name
    return "", name


def _modality(dataset: object, scope: ModelScope, check: ScopeCheck) -> ScopeCheck:
    stated = _text(dataset, "Modality")
    implied, sop_name = _sop_modality(dataset)
    if implied and implied not in scope.modalities and implied != stated:
        check = check.add(
            Scope.OUT,
            f"the SOP class is {sop_name} ({OTHER_MODALITIES.get(implied, implied)})",
        )
    modality = stated or implied
    if not modality:
        return check.add(Scope.UNVERIFIED, "modality not recorded (no Modality, SOP class)")
    if modality in scope.modalities:
        return check
    if modality in OTHER_MODALITIES:
        return check.add(
            Scope.OUT, f"modality {modality} ({OTHER_MODALITIES[modality]}) is not a radiograph"
        )
    if modality in UNKNOWN_MODALITIES:
        return check.add(Scope.UNVERIFIED, f"modality {modality} (other): could be anything")
    return check.add(Scope.UNVERIFIED, f"unrecognised modality {modality[:16]!r}")


def _body_part(dataset: object, scope: ModelScope, check: ScopeCheck) -> ScopeCheck:
    stated = _text(dataset, "BodyPartExamined")
    words = " ".join(
        _code_meanings(dataset, "AnatomicRegionSequence") + ([stated] if stated else [])
    )
    if not words:
        return check.add(Scope.UNVERIFIED, "body part not recorded (no BodyPartExamined)")
    tokens = _TOKEN.findall(words)
    chest = any(t in scope.body_parts or t.startswith("CHEST") for t in tokens)
    # "CHESTABDOMEN" names the chest and another part
    other = sorted(
        {t for t in tokens if t in OTHER_BODY_PARTS}
        | {t[5:] for t in tokens if t.startswith("CHEST") and t[5:] in OTHER_BODY_PARTS}
    )
    shown = words[:40]
    if chest and other:
        return check.add(Scope.UNVERIFIED, f"body part {shown!r} covers more than the chest")
    if other:
        return check.add(Scope.OUT, f"body part {shown!r} is not the chest")
    if not chest:
        return check.add(Scope.UNVERIFIED, f"unrecognised body part {shown!r}")
    return check


def _code_meanings(dataset: object, keyword: str) -> list[str]:
    try:
        items = dataset.get(keyword) or []  # type: ignore[attr-defined]
        return [str(item.get("CodeMeaning", "")).upper() for item in items if item is not None]
    except Exception:
        return []


def _view(dataset: object, check: ScopeCheck) -> ScopeCheck:
    words = _TOKEN.findall(
        " ".join([_text(dataset, "ViewPosition"), *_code_meanings(dataset, "ViewCodeSequence")])
    )
    if any(w in LATERAL_VIEWS for w in words):
        return check.add(Scope.OUT, "a lateral or oblique view; the model saw frontal views only")
    if any(w in FRONTAL_VIEWS or w.startswith(("POSTERO", "ANTERO", "FRONTAL")) for w in words):
        return check
    # PatientOrientation: the patient direction of the rows, then of the columns (PS3.3
    # C.7.6.1.1.1). A frontal image runs left-right along its rows, a lateral one front-back.
    orientation = _values(dataset, "PatientOrientation")
    if len(orientation) == 2 and orientation[0] and orientation[1]:
        rows, cols = orientation[0][0], orientation[1][0]
        if rows in "LR" and cols in "HF":
            return check
        if rows in "AP" and cols in "HF":
            return check.add(Scope.OUT, "a lateral view (PatientOrientation); frontal views only")
        return check.add(Scope.UNVERIFIED, "the image is rotated or the view is unusual")
    if words:
        return check.add(Scope.UNVERIFIED, f"unrecognised view {' '.join(words)[:24]!r}")
    return check.add(Scope.UNVERIFIED, "view not recorded (no ViewPosition, PatientOrientation)")


def _age_years(dataset: object) -> float | None:
    """Patient's age in years from PatientAge (``034Y``, ``006M``...) or birth and study dates."""
    age = _text(dataset, "PatientAge")
    match = re.fullmatch(r"(\d{1,3})\s*([DWMY])", age)
    if match:
        per_year = {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[match.group(2)]
        return int(match.group(1)) / per_year
    birth = _dicom_date(_text(dataset, "PatientBirthDate"))
    for keyword in ("StudyDate", "AcquisitionDate", "ContentDate", "SeriesDate"):
        taken = _dicom_date(_text(dataset, keyword))
        if birth and taken and taken >= birth:
            return (taken - birth).days / 365.25
    return None


def _dicom_date(text: str) -> date | None:
    match = re.fullmatch(r"(\d{4})(\d{2})(\d{2})", text[:8])
    if not match:
        return None
    try:
        return date(*map(int, match.groups()))
    except ValueError:
        return None


def check_dicom_header(dataset: object, scope: ModelScope = CHEST_XRAY_SCOPE) -> ScopeCheck:
    """Check modality, body part, view, image type, photometric, size and age of a dataset.

    Call it on the dataset as read, before de-identification. Never raises.
    """
    check = _modality(dataset, scope, ScopeCheck())
    check = _body_part(dataset, scope, check)
    check = _view(dataset, check)
    image_type = _values(dataset, "ImageType")
    if "LOCALIZER" in image_type:
        check = check.add(Scope.UNVERIFIED, "a localizer (scout) image")
    elif len(image_type) > 1 and image_type[1] == "SECONDARY":
        check = check.add(Scope.UNVERIFIED, "a secondary (derived, re-captured) image")
    photometric = _text(dataset, "PhotometricInterpretation")
    if photometric and not photometric.startswith("MONOCHROME"):
        check = check.add(Scope.UNVERIFIED, f"a colour image ({photometric[:16]}); X-rays are grey")
    try:
        rows, cols = int(dataset.get("Rows") or 0), int(dataset.get("Columns") or 0)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        rows = cols = 0
    check = check_shape(rows, cols, check)
    years = _age_years(dataset)
    if scope.max_age_years is not None and years is not None and years >= scope.max_age_years:
        check = check.add(
            Scope.UNVERIFIED, f"an adult patient; the model saw {scope.population or 'children'}"
        )
    return check


def check_shape(rows: int, cols: int, check: ScopeCheck | None = None) -> ScopeCheck:
    """Flag a shape no radiograph has (NM whole-body strips, ultrasound cine panels)."""
    check = check or ScopeCheck()
    if rows > 0 and cols > 0 and max(rows / cols, cols / rows) > MAX_ASPECT:
        check = check.add(
            Scope.UNVERIFIED, f"{rows}x{cols} pixels: an aspect ratio no radiograph has"
        )
    return check


def colourfulness(rgb: np.ndarray) -> float:
    """Mean channel difference of an ``[H, W, 3]`` image scaled to [0, 1] (0 for grey)."""
    rgb = np.asarray(rgb, dtype=np.float32)
    return float((np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])).mean() / 2)


def check_raster(rows: int, cols: int, colour: float) -> ScopeCheck:
    """Checks of a PNG/JPEG (no header: the pixel score is the main evidence)."""
    check = check_shape(rows, cols)
    if colour > COLOUR_LIMIT:
        check = check.add(Scope.UNVERIFIED, "a colour image; X-rays are grey")
    return check


def check_pixels(relative_score: float | None) -> ScopeCheck:
    """The pixel OOD verdict from ``score / threshold`` (None: no statistics to score with)."""
    if relative_score is None:
        return ScopeCheck().add(
            Scope.UNVERIFIED, "no OOD statistics beside the weights: pixels not checked"
        )
    check = ScopeCheck(ood_score=relative_score)
    if relative_score > 1.0:
        return check.add(
            Scope.UNVERIFIED,
            f"pixels unlike the training X-rays (OOD score {relative_score:.2f} > 1)",
        )
    return check
