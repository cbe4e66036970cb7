"""A number or a boolean where the API takes text is a 400 (issue 20, found by schemathesis): DRF
turned ``{"reason": 0}`` into the text "0", so a request the schema calls invalid was carried out."""

from __future__ import annotations

import pytest

from patients.models import Patient
from tests.api.conftest import API, patient_body


@pytest.mark.parametrize("value", [0, 1.5, True])
def test_a_name_given_as_a_number_is_refused_and_nothing_is_written(clinician, value):
    response = clinician.post(f"{API}patients/", patient_body(mrn="TEXT1", given_name=value), format="json")

    assert response.status_code == 400
    assert response.json() == {"given_name": ["Not a valid string."]}
    assert not Patient.objects.filter(mrn="TEXT1").exists()


def test_a_change_given_as_a_number_is_refused_too(clinician, patient_record):
    path = f"{API}diagnoses/{patient_record.diagnosis.uuid}/"

    assert clinician.patch(path, {"notes": 0}, format="json").json() == {"notes": ["Not a valid string."]}
    assert clinician.patch(path, {"notes": "0"}, format="json").status_code == 200
