"""An empty Idempotency-Key is a 400 (issue 20, found by schemathesis): it was taken for no key at
all, so a client that meant its retries to be safe created a patient with each one."""

from __future__ import annotations

import pytest

from patients.models import Patient
from tests.api.conftest import API, patient_body


@pytest.mark.parametrize("key", ["", " ", "\t "])
def test_an_empty_idempotency_key_is_a_400_and_creates_nothing(clinician, key):
    response = clinician.post(
        f"{API}patients/", patient_body(mrn="IDEM-EMPTY"), format="json", HTTP_IDEMPOTENCY_KEY=key
    )

    assert response.status_code == 400
    assert response.json() == {"Idempotency-Key": ["Give a key, or leave the header out."]}
    assert not Patient.objects.filter(mrn="IDEM-EMPTY").exists()


def test_without_the_header_a_post_creates_as_before(clinician):
    response = clinician.post(f"{API}patients/", patient_body(mrn="IDEM-NONE"), format="json")
    assert response.status_code == 201
