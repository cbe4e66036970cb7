"""Through the API too, an archived patient's record is read-only until restored (issue 20)."""

from __future__ import annotations

from clinic.roles import Role
from patients import services as record
from patients.models import Diagnosis
from tests.api.conftest import API
from tests.factories import PatientFactory, diagnosis_for
from tests.patients.test_archived_read_only import ARCHIVED


def test_the_api_answers_a_change_to_an_archived_patient_s_record_with_a_400(api_as):
    patient = PatientFactory()
    diagnosis = diagnosis_for(patient)
    record.patient_archive(patient=patient)

    response = api_as(Role.CLINICIAN).patch(
        f"{API}diagnoses/{diagnosis.uuid}/", {"notes": "Changed"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert response.json()["patient"] == [ARCHIVED]
    assert Diagnosis.objects.get(pk=diagnosis.pk).notes != "Changed"
