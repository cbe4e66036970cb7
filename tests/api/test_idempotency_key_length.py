"""An Idempotency-Key longer than the stored 255 characters is a 400 (issue 20): it was cut short,
so that two keys sharing a prefix answered each other."""

from __future__ import annotations

from clinic.roles import Role
from patients.models import Patient
from tests.api.conftest import API, patient_body


def test_an_idempotency_key_longer_than_255_is_a_400_never_cut_short(api_as):
    client = api_as(Role.CLINICIAN)
    prefix = "k" * 255
    first = client.post(
        f"{API}patients/", patient_body(mrn="IDEM1"), format="json", HTTP_IDEMPOTENCY_KEY=prefix + "-one"
    )
    second = client.post(
        f"{API}patients/", patient_body(mrn="IDEM2"), format="json", HTTP_IDEMPOTENCY_KEY=prefix + "-two"
    )

    assert (first.status_code, second.status_code) == (400, 400)
    assert first.json() == {"Idempotency-Key": ["Keep the key to 255 characters."]}
    assert not Patient.objects.filter(mrn__in=["IDEM1", "IDEM2"]).exists()
    exact = client.post(
        f"{API}patients/", patient_body(mrn="IDEM3"), format="json", HTTP_IDEMPOTENCY_KEY=prefix
    )
    assert exact.status_code == 201
