"""Through the API, a treatment dated absurdly far ahead is a 400 on its field, never a 500 (issue 20)."""

from __future__ import annotations

from clinic.roles import Role
from tests.api.conftest import API
from tests.factories import PatientFactory, diagnosis_for
from tests.patients.test_clinical_date_range import FAR


def test_the_api_answers_a_treatment_of_year_9999_with_a_400(db, api_as):
    diagnosis = diagnosis_for(PatientFactory())

    body = {
        "patient": str(diagnosis.patient.uuid),
        "diagnosis": str(diagnosis.uuid),
        "kind": "mvd",
        "status": "planned",
        "started_on": FAR.isoformat(),
        "mvd": {"technique": "interposition", "offending_vessels": ["aica"]},
    }

    response = api_as(Role.CLINICIAN).post(f"{API}treatments/", body, format="json")

    assert response.status_code == 400, response.content
    assert list(response.json()["started_on"]) == ["Plan it within two years of today."]
