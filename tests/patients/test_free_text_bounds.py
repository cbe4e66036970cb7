"""Free text is bounded (issue 20): a 2.5 MB note made a 27 MB list page. One character over the
bound is refused on its field with nothing written, at the bound it is taken; the API answers the
same refusal with a 400 and its schema states the bound."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from clinic.models import NOTES_MAX_LENGTH, REPORT_MAX_LENGTH
from followups import services as follow_up
from followups.models import Assessment
from patients import codes
from patients import services as record
from patients.models import Diagnosis, ImagingStudy, Treatment
from tests.factories import PatientFactory, diagnosis_for, treatment_for


@pytest.fixture
def diagnosis(db):
    return diagnosis_for(PatientFactory())


def _imaging(diagnosis, report):
    return record.imaging_study_record(
        patient=diagnosis.patient,
        diagnosis=diagnosis,
        performed_on=diagnosis.diagnosed_on,
        modality=codes.ImagingModality.MRI,
        report=report,
    )


def _assessment(diagnosis, notes):
    return follow_up.assessment_record(
        patient=diagnosis.patient, assessed_on=diagnosis.diagnosed_on, spasms_per_day=4, notes=notes
    )


def _diagnosis_notes(diagnosis, text):
    return record.diagnosis_update(diagnosis=diagnosis, notes=text)


def _treatment_notes(diagnosis, text):
    return treatment_for(diagnosis, codes.TreatmentKind.MVD, notes=text)


WRITES = {
    "diagnosis notes": (_diagnosis_notes, Diagnosis, "notes", NOTES_MAX_LENGTH),
    "treatment notes": (_treatment_notes, Treatment, "notes", NOTES_MAX_LENGTH),
    "imaging report": (_imaging, ImagingStudy, "report", REPORT_MAX_LENGTH),
    "assessment notes": (_assessment, Assessment, "notes", NOTES_MAX_LENGTH),
}


@pytest.mark.parametrize("what", list(WRITES))
def test_free_text_over_its_bound_is_refused_on_its_field(diagnosis, what):
    write, model, field, bound = WRITES[what]
    before = model.objects.filter(**{f"{field}__startswith": "x"}).count()

    with pytest.raises(ValidationError) as refused:
        write(diagnosis, "x" * (bound + 1))

    assert [e.code for e in refused.value.error_dict[field]] == ["max_length"]
    assert model.objects.filter(**{f"{field}__startswith": "x"}).count() == before
    write(diagnosis, "x" * bound)  # at the bound: taken
    assert model.objects.filter(**{f"{field}__startswith": "x"}).count() == before + 1
