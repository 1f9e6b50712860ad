"""De-identification of DICOM headers: PS3.15 Annex E Basic Application Level Confidentiality.

Applied to every dataset before anything from its header leaves the reader. Actions follow
Table E.1-1 (Basic Profile column, no retain options): ``Z`` empty value, ``X`` remove,
``U`` replace UID consistently, and the whole-header rules of E.3: private attributes removed,
overlays and curves removed, ``PatientIdentityRemoved`` = YES with the profile's code (113100).
Beyond the table, every person name, date/time and non-standard UID anywhere in the dataset
(including sequences) is handled by VR, so an attribute the table does not list cannot leak.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

from pydicom.datadict import dictionary_has_tag, dictionary_VR, keyword_for_tag
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

PROFILE_CODE = ("113100", "DCM", "Basic Application Confidentiality Profile")
DEID_METHOD = "PS3.15 Annex E Basic Application Confidentiality Profile (kgdx)"  # LO <= 64

# Attribute groups of Table E.1-1 (keywords), by action. Grouped so tests can check each group.
PATIENT_IDENTITY_Z = ("PatientName", "PatientBirthDate", "PatientSex")
PATIENT_IDENTITY_X = (
    "OtherPatientIDs",
    "OtherPatientIDsSequence",
    "OtherPatientNames",
    "PatientBirthName",
    "PatientBirthTime",
    "PatientMotherBirthName",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "PatientAge",
    "PatientSize",
    "PatientWeight",
    "Occupation",
    "MilitaryRank",
    "BranchOfService",
    "EthnicGroup",
    "PatientReligiousPreference",
    "MedicalRecordLocator",
    "CountryOfResidence",
    "RegionOfResidence",
    "PatientInsurancePlanCodeSequence",
    "AdditionalPatientHistory",
    "PatientComments",
    "MedicalAlerts",
    "Allergies",
    "SmokingStatus",
    "PregnancyStatus",
    "LastMenstrualDate",
    "ResponsiblePerson",
    "ResponsibleOrganization",
    "PatientState",
    "InsurancePlanIdentification",
    "PatientTransportArrangements",
    "IssuerOfPatientID",
)
INSTITUTION_PERSONNEL_Z = ("ReferringPhysicianName",)
INSTITUTION_PERSONNEL_X = (
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "InstitutionCodeSequence",
    "ReferringPhysicianAddress",
    "ReferringPhysicianTelephoneNumbers",
    "ReferringPhysicianIdentificationSequence",
    "PerformingPhysicianName",
    "PerformingPhysicianIdentificationSequence",
    "NameOfPhysiciansReadingStudy",
    "PhysiciansReadingStudyIdentificationSequence",
    "PhysiciansOfRecord",
    "PhysiciansOfRecordIdentificationSequence",
    "OperatorsName",
    "OperatorIdentificationSequence",
    "RequestingPhysician",
    "ScheduledPerformingPhysicianName",
    "StationName",
    "DeviceSerialNumber",
    "DetectorID",
    "PlateID",
    "CassetteID",
    "GantryID",
    "SourceApplicationEntityTitle",
    "PersonName",
    "ContentCreatorName",
)
STUDY_IDS_Z = ("AccessionNumber", "StudyID")
STUDY_IDS_X = (
    "AdmissionID",
    "IssuerOfAdmissionIDSequence",
    "RequestedProcedureID",
    "PerformedProcedureStepID",
    "ScheduledProcedureStepID",
    "PlacerOrderNumberImagingServiceRequest",
    "FillerOrderNumberImagingServiceRequest",
    "ServiceEpisodeID",
    "ReferencedPatientSequence",
    "ReferencedStudySequence",
    "OtherPatientIDs",
)
DATES_Z = ("StudyDate", "StudyTime", "ContentDate", "ContentTime")
DESCRIPTIONS_X = (
    "StudyDescription",
    "SeriesDescription",
    "ImageComments",
    "RequestedProcedureDescription",
    "PerformedProcedureStepDescription",
    "RequestAttributesSequence",
    "DerivationDescription",
    "AdmittingDiagnosesDescription",
    "AdmittingDiagnosesCodeSequence",
    "ProtocolName",
    "ReasonForStudy",
    "ReasonForTheRequestedProcedure",
    "TextComments",
    "AcquisitionComments",
    "InterpretationText",
    "ImagePresentationComments",
    "FrameComments",
    "VisitComments",
    "PerformedProcedureStepStartDate",
    "CommentsOnThePerformedProcedureStep",
    "IdentifyingComments",
    "ModifiedAttributesSequence",
    "OriginalAttributesSequence",
    "DigitalSignaturesSequence",
    "DataSetTrailingPadding",
)
EMPTY = frozenset(PATIENT_IDENTITY_Z + INSTITUTION_PERSONNEL_Z + STUDY_IDS_Z + DATES_Z)
REMOVE = frozenset(PATIENT_IDENTITY_X + INSTITUTION_PERSONNEL_X + STUDY_IDS_X + DESCRIPTIONS_X)
# Dates/times and names the IODs require as Type 2 stay present but empty; the rest go.
_STANDARD_UID_ROOT = "1.2.840.10008."  # SOP classes, transfer syntaxes, well-known frames


@dataclass
class Deidentifier:
    """Applies the Basic Profile, remapping UIDs and patient ids consistently across calls.

    One instance per ingestion run: every dataset of a study goes through the same instance, so
    its Study/Series/Frame-of-Reference UIDs map to the same new UIDs and references between
    instances still resolve. New UIDs are ``2.25.<int>`` (PS3.5 B.2) from an HMAC of the old one
    under ``secret``, so they cannot be reversed without it.

    Args:
        secret: HMAC key; random per instance unless given (give one to keep a mapping stable
            across runs).
        patient_ids: known ``original PatientID -> kgdx patient id`` pairs to reuse.
        known_sources: known ``source pseudonym -> kgdx patient id`` pairs (what a store keeps
            instead of original PatientIDs; see :meth:`source_pseudonym`).
    """

    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    patient_ids: dict[str, str] = field(default_factory=dict)
    known_sources: dict[str, str] = field(default_factory=dict)
    uid_map: dict[str, str] = field(default_factory=dict)

    def new_uid(self, uid: str) -> str:
        """The replacement of ``uid`` (the same for the same ``uid`` and secret)."""
        if uid not in self.uid_map:
            digest = hmac.new(self.secret, uid.encode(), hashlib.sha256).digest()
            self.uid_map[uid] = f"2.25.{int.from_bytes(digest[:16], 'big')}"
        return self.uid_map[uid]

    def source_pseudonym(self, original: str) -> str:
        """A keyed, irreversible stand-in for an original PatientID, safe to store: it lets a
        later ingest find the same patient without the store ever holding the PatientID."""
        digest = hmac.new(self.secret, b"patient-source:" + original.encode(), hashlib.sha256)
        return f"hmac-sha256:{digest.hexdigest()}"

    def patient_id(self, original: str) -> str:
        """The kgdx patient id for an original PatientID (``P-`` + 12 hex digits)."""
        if original not in self.patient_ids:
            known = self.known_sources.get(self.source_pseudonym(original))
            if known is not None:
                self.patient_ids[original] = known
                return known
            digest = hmac.new(self.secret, b"patient:" + original.encode(), hashlib.sha256)
            self.patient_ids[original] = f"P-{digest.hexdigest()[:12]}"
        return self.patient_ids[original]

    def __call__(self, dataset: Dataset, *, in_place: bool = False) -> Dataset:
        """Return ``dataset`` de-identified: a copy, or ``dataset`` itself when ``in_place``.

        Readers that own a freshly parsed dataset pass ``in_place=True`` to skip the deep copy
        (the slowest part of de-identification).
        """
        # Dataset.copy() shares elements with the input, so only a deep copy leaves it untouched.
        clean = dataset if in_place else copy.deepcopy(dataset)
        original_patient = str(clean.get("PatientID", "") or "")
        self._clean(clean)
        clean.PatientID = self.patient_id(original_patient) if original_patient else ""
        meta = getattr(clean, "file_meta", None)
        if meta is not None and "MediaStorageSOPInstanceUID" in meta:
            meta.MediaStorageSOPInstanceUID = self.new_uid(str(meta.MediaStorageSOPInstanceUID))
        clean.PatientIdentityRemoved = "YES"
        clean.DeidentificationMethod = DEID_METHOD
        code = Dataset()
        code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = PROFILE_CODE
        clean.DeidentificationMethodCodeSequence = Sequence([code])
        return clean

    def _clean(self, dataset: Dataset) -> None:
        # Decide from the raw element (tag and VR) where possible: converting every value of a
        # large header just to delete it costs more than the rest of the reading.
        for tag in list(dataset.keys()):
            raw = dataset.get_item(tag)
            keyword = keyword_for_tag(tag)
            vr = raw.VR
            if vr in (None, "UN") and dictionary_has_tag(tag):  # implicit VR, or public tag as UN
                vr = dictionary_VR(tag)
            if tag.is_private or tag.group & 0xFF00 in (0x5000, 0x6000):
                del dataset[tag]  # private data and curves/overlays can carry identifying text
            elif keyword in REMOVE:
                del dataset[tag]
            elif keyword in EMPTY:
                dataset[tag].value = None
            elif keyword == "PatientID":
                continue
            elif vr == "SQ":
                for item in dataset[tag].value:
                    self._clean(item)
            elif vr == "UI":
                element = dataset[tag]
                element.value = self._remap(element.value)
            elif vr == "PN":
                del dataset[tag]
            elif vr in ("DA", "DT", "TM") and tag.group != 0x0002:
                del dataset[tag]

    def _remap(self, value: object) -> object:
        if value is None or value == "":
            return value
        if (
            isinstance(value, list | tuple)
            or hasattr(value, "__iter__")
            and not isinstance(value, str)
        ):
            return [self._remap(item) for item in value]
        text = str(value)
        return text if text.startswith(_STANDARD_UID_ROOT) else self.new_uid(text)
