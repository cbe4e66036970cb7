"""An archived patient's record is read-only until the patient is restored (issue 20): every change
to it, a retraction included, is refused on ``patient`` with nothing written; restoring the patient
opens it again."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from patients import codes
from patients import services as record
from patients.models import Diagnosis, ImagingStudy, Patient, Treatment
from tests.factories import PatientFactory, diagnosis_for, treatment_for

ARCHIVED = "This patient is archived; restore them before changing their record."


@pytest.fixture
def archived(db):
    patient = PatientFactory()
    diagnosis = diagnosis_for(patient)
    study = record.imaging_study_record(
        patient=patient,
        diagnosis=diagnosis,
        performed_on=diagnosis.diagnosed_on,
        modality=codes.ImagingModality.MRI,
        sequences=[codes.ImagingSequence.CISS],
    )
    treatment = treatment_for(diagnosis, codes.TreatmentKind.BOTULINUM_TOXIN)
    record.patient_archive(patient=patient)
    return patient, diagnosis, study, treatment


CHANGES = {
    "patient_update": lambda p, d, s, t: record.patient_update(patient=p, phone="+49 30 1112233"),
    "diagnosis_update": lambda p, d, s, t: record.diagnosis_update(diagnosis=d, notes="Changed"),
    "diagnosis_retract": lambda p, d, s, t: record.diagnosis_retract(diagnosis=d),
    "imaging_study_update": lambda p, d, s, t: record.imaging_study_update(study=s, report="Changed"),
    "imaging_study_retract": lambda p, d, s, t: record.imaging_study_retract(study=s),
    "treatment_update": lambda p, d, s, t: record.treatment_update(treatment=t, notes="Changed"),
    "treatment_retract": lambda p, d, s, t: record.treatment_retract(treatment=t),
}


def _state(patient, diagnosis, study, treatment):
    return (
        Patient.objects.filter(pk=patient.pk).values_list("phone", "updated_at").get(),
        Diagnosis.objects.filter(pk=diagnosis.pk).values_list("status", "notes", "updated_at").get(),
        ImagingStudy.objects.filter(pk=study.pk).values_list("status", "report", "updated_at").get(),
        Treatment.objects.filter(pk=treatment.pk).values_list("status", "notes", "updated_at").get(),
    )


@pytest.mark.parametrize("change", list(CHANGES))
def test_an_archived_patient_s_record_is_read_only(archived, change):
    before = _state(*archived)

    with pytest.raises(ValidationError) as refused:
        CHANGES[change](*archived)

    assert refused.value.message_dict == {"patient": [ARCHIVED]}
    assert refused.value.error_dict["patient"][0].code == "archived"
    assert _state(*archived) == before


@pytest.mark.parametrize("change", list(CHANGES))
def test_restoring_the_patient_opens_the_record_again(archived, change):
    patient = archived[0]
    record.patient_restore(patient=patient)

    CHANGES[change](*archived)  # no refusal

    assert Patient.objects.get(pk=patient.pk).archived is False
