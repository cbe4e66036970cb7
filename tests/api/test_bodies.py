"""Request bodies the API cannot answer are a 400 before any view sees them (issue 20), and JSON is
the only body it takes (API.md): a lone UTF-16 surrogate anywhere in the JSON, nesting deeper than
any resource has, a form or multipart body. Nothing is stored for any of them."""

from __future__ import annotations

import json

import pytest

from clinic.parsers import MAX_DEPTH
from patients.models import Diagnosis, Patient
from tests.api.conftest import API, diagnosis_body, patient_body

SURROGATE = "\ud800"


def _json_text(body) -> str:
    # json.dumps escapes a lone surrogate as \ud800, as a client sending one does.
    return json.dumps(body)


def _where(patient):
    """Surrogates where an error message would repeat them: a choice, a field name, a list item."""
    return {
        "a choice": (f"{API}diagnoses/", diagnosis_body(patient, kind=f"primary{SURROGATE}")),
        "a field name": (f"{API}diagnoses/", {**diagnosis_body(patient), f"colour{SURROGATE}": 1}),
        "a list item": (f"{API}diagnoses/", diagnosis_body(patient, muscles=[f"zygomaticus{SURROGATE}"])),
        "a patient's name": (f"{API}patients/", patient_body(given_name=f"Ada{SURROGATE}")),
    }


@pytest.mark.parametrize("where", ["a choice", "a field name", "a list item", "a patient's name"])
def test_a_lone_surrogate_anywhere_in_a_body_is_a_400(clinician, patient_record, where):
    path, body = _where(patient_record.patient)[where]
    counts = (Patient.objects.count(), Diagnosis.objects.count())

    response = clinician.post(path, data=_json_text(body), content_type="application/json")

    assert response.status_code == 400, response.content
    assert "lone surrogate" in response.json()["detail"]
    assert (Patient.objects.count(), Diagnosis.objects.count()) == counts


def test_a_lone_surrogate_in_a_patch_is_a_400_and_changes_nothing(clinician, patient_record):
    patient = patient_record.patient
    response = clinician.patch(
        f"{API}patients/{patient.uuid}/",
        data=_json_text({"family_name": f"Lovelace{SURROGATE}"}),
        content_type="application/json",
    )

    assert response.status_code == 400, response.content
    patient.refresh_from_db()
    assert SURROGATE not in patient.family_name


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 1000, 100_000])
def test_json_nested_too_deep_is_a_400(clinician, patient_record, depth):
    body = "[" * depth + "]" * depth

    response = clinician.post(f"{API}diagnoses/", data=body, content_type="application/json")

    assert response.status_code == 400, response.content
    assert response.json()["detail"] == f"The body nests deeper than {MAX_DEPTH} levels."


def test_a_body_as_deep_as_a_resource_needs_is_taken(clinician, patient_record):
    body = {**diagnosis_body(patient_record.patient), "notes": "x"}
    nested = body
    for _ in range(MAX_DEPTH - 2):  # ignored unknown-field content still parses; the view refuses it
        nested["extra"] = {}
        nested = nested["extra"]

    response = clinician.post(f"{API}diagnoses/", data=json.dumps(body), content_type="application/json")

    assert response.status_code == 400
    assert "extra" in response.json()  # the view's own answer: the parser let it through


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=BoUnDaRy"]
)
def test_a_form_body_is_a_415(clinician, patient_record, content_type):
    counts = Patient.objects.count()

    response = clinician.post(f"{API}patients/", data="mrn=X1&given_name=Ada", content_type=content_type)

    assert response.status_code == 415, response.content
    assert Patient.objects.count() == counts


def test_the_schema_says_request_bodies_are_json_only(clinician):
    schema = clinician.get("/api/schema/", {"format": "json"}).json()
    media_types = {
        media
        for path in schema["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "requestBody" in operation
        for media in operation["requestBody"]["content"]
    }

    assert media_types == {"application/json"}
