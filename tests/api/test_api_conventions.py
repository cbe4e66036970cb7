"""The conventions of API.md that every resource follows, tested on the clinical record's resources.

Roles, cursor pages, ``updated_since``, strict parameters and bodies, the error format,
``Idempotency-Key``, ``ETag``/``If-Match``, throttling, a fixed number of queries per list, and the
schema and its documentation served without a CDN.
"""

import base64
import re
from datetime import UTC, timedelta
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache, caches
from django.core.cache.backends.redis import RedisCache
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.api import nest_field_errors
from clinic.api_auth import ClientRateThrottle
from clinic.roles import Role
from patients import codes
from patients.models import Diagnosis, ImagingStudy, Patient, Treatment
from patients.services import imaging_study_record
from tests.api.conftest import (
    API,
    diagnosis_body,
    imaging_body,
    medication_body,
    patient_body,
)
from tests.factories import PatientFactory, diagnosis_for, treatment_for

RESOURCES = ("patients", "diagnoses", "imaging-studies", "treatments")
CLINICAL = ("diagnoses", "imaging-studies", "treatments")
MEDICATION, TOXIN, MVD = (
    codes.TreatmentKind.MEDICATION,
    codes.TreatmentKind.BOTULINUM_TOXIN,
    codes.TreatmentKind.MVD,
)


def detail(resource, obj):
    return f"{API}{resource}/{obj.uuid}/"


# --- roles ------------------------------------------------------------------------------------------


def record_of(record, resource):
    return {
        "patients": record.patient,
        "diagnoses": record.diagnosis,
        "imaging-studies": record.imaging_study,
        "treatments": record.medication,
    }[resource]


def write_bodies(record, resource):
    """(POST body, PUT body, PATCH body) that a clinician's request succeeds with."""
    patient, diagnosis = record.patient, record.diagnosis
    if resource == "patients":
        put = patient_body(mrn=patient.mrn, given_name="Renamed")
        return patient_body(), put, {"phone": "+49 30 555"}
    if resource == "diagnoses":
        return diagnosis_body(patient), diagnosis_body(patient, side="left"), {"notes": "Reviewed."}
    if resource == "imaging-studies":
        return imaging_body(patient), imaging_body(patient, modality="ct"), {"report": "Normal."}
    return (
        medication_body(diagnosis),
        medication_body(
            diagnosis, started_on="2024-01-15", medication={"drug": "carbamazepine", "daily_dose_mg": 300}
        ),
        {"notes": "Tolerated."},
    )


ALLOWED = {
    # role: (reads, writes) as resources
    Role.CLINICIAN: (set(RESOURCES), set(RESOURCES)),
    Role.NURSE: (set(RESOURCES), set()),
    Role.FRONT_DESK: ({"patients"}, {"patients"}),
    Role.INTEGRATION_READ: (set(RESOURCES), set()),
    Role.LAB: (set(), set()),  # API.md v2: lab results only
}


@pytest.mark.parametrize("resource", RESOURCES)
@pytest.mark.parametrize("role", list(Role))
def test_each_role_reads_and_writes_what_api_md_gives_it(api_as, patient_record, role, resource):
    client = api_as(role)
    reads, writes = ALLOWED[role]
    obj = record_of(patient_record, resource)
    post, put, patch = write_bodies(patient_record, resource)

    read = 200 if resource in reads else 403
    assert client.get(f"{API}{resource}/").status_code == read
    assert client.get(detail(resource, obj)).status_code == read
    assert client.head(detail(resource, obj)).status_code == read

    may_write = resource in writes
    responses = {
        "POST": client.post(f"{API}{resource}/", post, format="json"),
        "PUT": client.put(detail(resource, obj), put, format="json"),
        "PATCH": client.patch(detail(resource, obj), patch, format="json"),
        "DELETE": client.delete(detail(resource, obj)),
    }
    expected = {
        "POST": 201 if may_write else 403,
        "PUT": 200 if may_write else 403,
        "PATCH": 200 if may_write else 403,
        # Patients are archived by DELETE, by clinicians only (issue 20); nothing else answers it.
        "DELETE": (204 if role == Role.CLINICIAN else 403)
        if resource == "patients"
        else (405 if may_write else 403),
    }
    assert {method: r.status_code for method, r in responses.items()} == expected, {
        method: r.content[:300] for method, r in responses.items()
    }


def test_a_front_desk_token_reading_a_diagnosis_gets_403(api_as, patient_record):
    response = api_as(Role.FRONT_DESK).get(detail("diagnoses", patient_record.diagnosis))
    assert response.status_code == 403
    assert "notes" not in response.json() and "kind" not in response.json()


def test_the_front_desk_sees_patients_without_their_hla_fields(api_as, patient_record):
    front_desk, clinician = api_as(Role.FRONT_DESK), api_as(Role.CLINICIAN)
    path = detail("patients", patient_record.patient)

    hidden = front_desk.get(path).json()
    listed = front_desk.get(f"{API}patients/").json()["results"][0]
    shown = clinician.get(path).json()

    for row in (hidden, listed):
        assert "at_risk_hla_b1502" not in row and "hla_b1502_result" not in row
        assert row["mrn"] == patient_record.patient.mrn and row["email"] == patient_record.patient.email
    assert shown["at_risk_hla_b1502"] is True and shown["hla_b1502_result"] == "negative"
    assert set(shown) - set(hidden) == {"at_risk_hla_b1502", "hla_b1502_result"}


def test_the_front_desk_may_not_write_hla_fields(api_as, patient_record):
    front_desk = api_as(Role.FRONT_DESK)
    patient = patient_record.patient
    before = Patient.objects.get(pk=patient.pk)

    patched = front_desk.patch(
        detail("patients", patient), {"hla_b1502_result": "positive", "phone": "1"}, format="json"
    )
    put = front_desk.put(
        detail("patients", patient), patient_body(mrn=patient.mrn, at_risk_hla_b1502=False), format="json"
    )
    created = front_desk.post(f"{API}patients/", patient_body(hla_b1502_result="positive"), format="json")

    assert patched.status_code == put.status_code == created.status_code == 400
    assert patched.json() == {"hla_b1502_result": ["Your role may not change this."]}
    assert put.json() == {"at_risk_hla_b1502": ["Your role may not change this."]}
    assert created.json() == {"hla_b1502_result": ["Your role may not change this."]}
    after = Patient.objects.get(pk=patient.pk)
    assert (after.hla_b1502_result, after.at_risk_hla_b1502, after.phone, after.updated_at) == (
        before.hla_b1502_result,
        before.at_risk_hla_b1502,
        before.phone,
        before.updated_at,
    )
    assert Patient.objects.count() == 1
    # Contact data is the front desk's to change, and the answer still hides the HLA fields.
    changed = front_desk.patch(detail("patients", patient), {"phone": "+49 30 1"}, format="json")
    assert changed.status_code == 200
    assert changed.json()["phone"] == "+49 30 1" and "hla_b1502_result" not in changed.json()


# --- cursor pages -----------------------------------------------------------------------------------


def make_patients(count):
    """``count`` valid patients in one insert: the page tests need hundreds and no rules."""
    now = timezone.now()
    return Patient.objects.bulk_create(
        Patient(
            mrn=f"BULK{i:06d}",
            given_name="Page",
            family_name=f"Tester{i:04d}",
            date_of_birth="1980-01-01",
            sex=codes.Sex.MALE,
            created_at=now,
            updated_at=now,
        )
        for i in range(count)
    )


def test_page_size_is_at_most_500(clinician, db):
    make_patients(502)

    default = clinician.get(f"{API}patients/").json()
    at_most = clinician.get(f"{API}patients/", {"page_size": 500}).json()
    above = clinician.get(f"{API}patients/", {"page_size": 501})

    assert len(default["results"]) == 50
    assert len(at_most["results"]) == 500
    assert len(clinician.get(at_most["next"]).json()["results"]) == 2
    # API.md: "page_size up to 500": more asked is pages of 500, as sync clients have always had.
    assert above.status_code == 200
    assert len(above.json()["results"]) == 500


@pytest.mark.parametrize("page_size", ["0", "-3", "abc", "1.5", "null"])
def test_a_page_size_that_is_not_a_positive_integer_is_a_400(clinician, db, page_size):
    # Issue 20: it once fell back to the default page, silently.
    response = clinician.get(f"{API}patients/", {"page_size": page_size})
    assert response.status_code == 400
    assert response.json() == {"page_size": ["Give a whole number of rows from 1 (at most 500 a page)."]}


def test_next_and_previous_links_walk_every_row_once(clinician, db):
    patients = make_patients(7)

    pages, url = [], f"{API}patients/?page_size=3"
    while url:
        page = clinician.get(url).json()
        assert set(page) == {"next", "previous", "results"}
        pages.append(page)
        url = page["next"]

    seen = [row["id"] for page in pages for row in page["results"]]
    assert [len(page["results"]) for page in pages] == [3, 3, 1]
    assert sorted(seen) == sorted(str(patient.uuid) for patient in patients)
    assert pages[0]["previous"] is None
    # The links keep the page size and are absolute.
    assert parse_qs(urlsplit(pages[0]["next"]).query)["page_size"] == ["3"]
    assert pages[1]["next"].startswith("http://testserver/api/v1/patients/")
    back = clinician.get(pages[2]["previous"]).json()
    assert [row["id"] for row in back["results"]] == [row["id"] for row in pages[1]["results"]]


def test_filters_carry_into_the_links(clinician, db):
    make_patients(5)
    PatientFactory(family_name="Tester0001")  # a second one of this name, not bulk-made

    first = clinician.get(f"{API}patients/", {"family_name": "tester0001", "page_size": 1}).json()
    second = clinician.get(first["next"]).json()

    assert parse_qs(urlsplit(first["next"]).query)["family_name"] == ["tester0001"]
    assert {first["results"][0]["family_name"], second["results"][0]["family_name"]} == {"Tester0001"}
    assert second["next"] is None


@pytest.mark.parametrize(
    "cursor",
    [
        "not-base64!",
        base64.b64encode(b"p=abc").decode(),
        base64.b64encode(b"p=").decode(),
        base64.b64encode(b"o=x").decode(),
        base64.b64encode(b"r=2&p=1e3").decode(),
        base64.b64encode("p=²".encode()).decode(),
    ],
)
def test_a_crafted_cursor_is_a_404_not_a_500(clinician, patient_record, cursor):
    response = clinician.get(f"{API}patients/", {"cursor": cursor})
    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor"}


# --- updated_since and the query string ---------------------------------------------------------


@pytest.mark.parametrize("resource", RESOURCES)
def test_updated_since_takes_a_date_time_with_an_offset(clinician, patient_record, resource):
    obj = record_of(patient_record, resource)
    obj.refresh_from_db()
    changed = obj.updated_at
    before = changed - timedelta(seconds=1)
    after = changed + timedelta(seconds=1)

    def ids(since):
        response = clinician.get(f"{API}{resource}/", {"updated_since": since})
        assert response.status_code == 200, response.content
        return {row["id"] for row in response.json()["results"]}

    assert str(obj.uuid) in ids(before.isoformat())
    assert str(obj.uuid) not in ids(after.isoformat())
    # The same instant written with another offset, and in UTC with Z, means the same.
    utc = before.astimezone(UTC)
    assert str(obj.uuid) in ids(utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"))
    plus_five = before.astimezone(timezone.get_fixed_timezone(5 * 60))
    assert str(obj.uuid) in ids(plus_five.isoformat())
    assert str(obj.uuid) not in ids(after.astimezone(timezone.get_fixed_timezone(-7 * 60)).isoformat())


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2024-05-01T08:00:00", "UTC offset"),
        ("2024-05-01", "UTC offset"),
        ("yesterday", "ISO 8601"),
        ("2024-13-01T08:00:00Z", "ISO 8601"),
        ("2024-05-01T08:00:00+25:00", "ISO 8601"),
        # An unencoded '+' arrives as a space.
        ("2024-05-01T08:00:00 02:00", "%2B"),
    ],
)
@pytest.mark.parametrize("resource", RESOURCES)
def test_a_naive_or_malformed_updated_since_is_a_400(clinician, db, resource, value, message):
    response = clinician.get(f"{API}{resource}/", {"updated_since": value})
    assert response.status_code == 400
    [text] = response.json()["updated_since"]
    assert message in text


@pytest.mark.parametrize("resource", RESOURCES)
def test_an_unknown_query_parameter_is_a_400(clinician, patient_record, resource):
    obj = record_of(patient_record, resource)
    listed = clinician.get(f"{API}{resource}/", {"page_size": 5, "sort": "name", "updatedsince": "x"})
    fetched = clinician.get(detail(resource, obj), {"fields": "id"})
    # A list's filters are not parameters of one record.
    filtered_detail = clinician.get(detail(resource, obj), {"cursor": "x"})
    patched = clinician.patch(detail(resource, obj) + "?dry_run=1", {}, format="json")

    assert listed.status_code == 400
    unknown = ["Unknown query parameter."]
    assert listed.json() == {"sort": unknown, "updatedsince": unknown}
    assert fetched.status_code == filtered_detail.status_code == patched.status_code == 400
    assert fetched.json() == {"fields": ["Unknown query parameter."]}


def test_an_unknown_parameter_is_refused_before_anything_is_written(clinician, patient_record):
    response = clinician.post(
        f"{API}diagnoses/?validate_only=1", diagnosis_body(patient_record.patient), format="json"
    )
    assert response.status_code == 400
    assert Diagnosis.objects.count() == 1


@pytest.mark.parametrize(
    ("resource", "query"),
    [
        ("patients", {"archived": "maybe"}),
        ("diagnoses", {"patient": "not-a-uuid"}),
        ("diagnoses", {"kind": "tertiary"}),
        ("diagnoses", {"status": "deleted"}),
        ("imaging-studies", {"patient": "123"}),
        ("treatments", {"kind": "surgery"}),
        ("treatments", {"status": "done"}),
    ],
)
def test_a_filter_value_it_cannot_read_is_a_400(clinician, patient_record, resource, query):
    response = clinician.get(f"{API}{resource}/", query)
    assert response.status_code == 400
    assert list(response.json()) == list(query)


# --- bodies, ids and the error format -------------------------------------------------------------


def test_an_unknown_body_field_is_a_400_at_any_depth(clinician, patient_record):
    top = clinician.post(f"{API}patients/", patient_body(nickname="Addy"), format="json")
    read_only = clinician.post(f"{API}patients/", patient_body(archived=True, id=str(uuid4())), format="json")
    nested = clinician.post(
        f"{API}treatments/",
        medication_body(
            patient_record.diagnosis, medication={"drug": "baclofen", "daily_dose_mg": 30, "colour": "red"}
        ),
        format="json",
    )
    injection = clinician.post(
        f"{API}treatments/",
        {
            **medication_body(patient_record.diagnosis, kind="botulinum_toxin"),
            "medication": None,
            "botulinum_toxin": {
                "product": "onabotulinumtoxinA",
                "injections": [{"muscle": "frontalis", "units": 5, "depth": "deep"}],
            },
        },
        format="json",
    )

    assert top.status_code == read_only.status_code == nested.status_code == injection.status_code == 400
    assert top.json() == {"nickname": ["Unknown field."]}
    assert read_only.json() == {"archived": ["Unknown field."], "id": ["Unknown field."]}
    assert nested.json() == {"medication": {"colour": ["Unknown field."]}}
    # DRF names list items by their index, as the services do (botulinum_toxin.injections.0.units).
    assert injection.json() == {"botulinum_toxin": {"injections": {"0": {"depth": ["Unknown field."]}}}}
    assert Patient.objects.count() == 1 and Treatment.objects.count() == 3


@pytest.mark.parametrize("bad_id", ["not-a-uuid", "12345", "1d7fc96d-cd36-4c5a-8f70-de223c54c75", "%00"])
@pytest.mark.parametrize("resource", RESOURCES)
def test_a_malformed_id_in_the_path_is_a_404(clinician, patient_record, resource, bad_id):
    path = f"{API}{resource}/{bad_id}/"
    assert clinician.get(path).status_code == 404
    assert clinician.patch(path, {"notes": "x"}, format="json").status_code == 404
    assert clinician.put(path, {}, format="json").status_code == 404


@pytest.mark.parametrize("resource", RESOURCES)
def test_a_well_formed_id_of_nothing_is_a_404(clinician, db, resource):
    response = clinician.get(f"{API}{resource}/{uuid4()}/")
    assert response.status_code == 404
    assert set(response.json()) == {"detail"}


@pytest.mark.parametrize(
    ("resource", "body_of", "field"),
    [
        ("diagnoses", lambda r: {**diagnosis_body(r.patient), "patient": "not-a-uuid"}, "patient"),
        ("diagnoses", lambda r: {**diagnosis_body(r.patient), "patient": str(uuid4())}, "patient"),
        ("diagnoses", lambda r: {**diagnosis_body(r.patient), "patient": {"id": "x"}}, "patient"),
        ("imaging-studies", lambda r: imaging_body(r.patient, diagnosis="d1a9"), "diagnosis"),
        ("imaging-studies", lambda r: imaging_body(r.patient, diagnosis=str(uuid4())), "diagnosis"),
        ("treatments", lambda r: {**medication_body(r.diagnosis), "diagnosis": 12}, "diagnosis"),
        ("treatments", lambda r: {**medication_body(r.diagnosis), "diagnosis": ["x"]}, "diagnosis"),
        ("treatments", lambda r: {**medication_body(r.diagnosis), "patient": ""}, "patient"),
    ],
)
def test_a_malformed_or_unknown_id_in_a_body_is_a_400_on_its_field(
    clinician, patient_record, resource, body_of, field
):
    response = clinician.post(f"{API}{resource}/", body_of(patient_record), format="json")
    assert response.status_code == 400
    assert list(response.json()) == [field]
    # On a change as well.
    obj = record_of(patient_record, resource)
    patched = clinician.patch(detail(resource, obj), {field: body_of(patient_record)[field]}, format="json")
    assert patched.status_code == 400
    assert list(patched.json()) == [field]


def test_a_malformed_redo_of_is_a_400_on_the_nested_field(clinician, patient_record):
    body = {
        **medication_body(patient_record.diagnosis, kind="mvd", started_on="2024-06-01"),
        "medication": None,
        "mvd": {"technique": "transposition", "redo_of": "zzz"},
    }
    response = clinician.post(f"{API}treatments/", body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["mvd"] and list(response.json()["mvd"]) == ["redo_of"]


@pytest.mark.parametrize("body", [[], "text", 7, [{"kind": "primary"}]])
def test_a_body_that_is_not_an_object_is_a_400(clinician, patient_record, body):
    response = clinician.post(f"{API}diagnoses/", body, format="json")
    assert response.status_code == 400
    patched = clinician.patch(detail("diagnoses", patient_record.diagnosis), body, format="json")
    assert patched.status_code == 400


def test_a_service_rule_comes_back_as_field_messages_nested_like_the_body(clinician, patient_record):
    response = clinician.post(
        f"{API}treatments/",
        medication_body(
            patient_record.diagnosis,
            started_on="1960-01-01",
            medication={"drug": "carbamazepine", "daily_dose_mg": 5000},
        ),
        format="json",
    )

    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {"started_on", "medication", "error_codes"}
    assert errors["started_on"] == ["This date is before the patient's date of birth."]
    assert list(errors["medication"]) == ["daily_dose_mg"]
    assert "1200" in errors["medication"]["daily_dose_mg"][0]
    # Beside the messages, each one's code, nested the same way.
    assert errors["error_codes"] == {
        "started_on": ["before_birth"],
        "medication": {"daily_dose_mg": ["dose_ceiling"]},
    }


def test_messages_on_a_list_and_on_its_items_are_both_reported(clinician, patient_record):
    """A duplicate muscle (on the list) and a dose of 0 (on an item) together, not a 500."""
    body = {
        **medication_body(patient_record.diagnosis, kind="botulinum_toxin", started_on="2024-09-01"),
        "medication": None,
        "botulinum_toxin": {
            "product": "onabotulinumtoxinA",
            "injections": [{"muscle": "frontalis", "units": 0}, {"muscle": "frontalis", "units": 5}],
        },
    }
    response = clinician.post(f"{API}treatments/", body, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "botulinum_toxin": {
            "injections": {
                "0": {"units": ["Units must be more than 0."]},
                "non_field_errors": ["Each muscle is listed once per session."],
            }
        },
        "error_codes": {
            "botulinum_toxin": {"injections": {"0": {"units": ["range"]}, "non_field_errors": ["duplicate"]}}
        },
    }


def test_service_messages_nest_by_their_dotted_names_and_keep_every_message():
    assert nest_field_errors({"__all__": ["x"], "a.b": ["y"], "a.b.c": ["z"]}) == {
        "non_field_errors": ["x"],
        "a": {"b": {"non_field_errors": ["y"], "c": ["z"]}},
    }
    assert nest_field_errors({"a.b.c": ["z"], "a.b": ["y"], "a": ["w"]}) == {
        "a": {"b": {"c": ["z"], "non_field_errors": ["y"]}, "non_field_errors": ["w"]}
    }


@pytest.mark.parametrize("resource", CLINICAL)
def test_delete_on_a_clinical_record_is_a_405_and_deletes_nothing(clinician, patient_record, resource):
    obj = record_of(patient_record, resource)
    response = clinician.delete(detail(resource, obj))
    assert response.status_code == 405
    assert "DELETE" not in response["Allow"]
    assert type(obj).objects.filter(pk=obj.pk).exists()
    assert clinician.delete(f"{API}{resource}/").status_code == 405


# --- Idempotency-Key ------------------------------------------------------------------------------


def test_a_retried_post_with_the_same_key_and_body_creates_one_object(clinician, patient_record):
    body = diagnosis_body(patient_record.patient)

    first = clinician.post(f"{API}diagnoses/", body, format="json", HTTP_IDEMPOTENCY_KEY="visit-42")
    retry = clinician.post(f"{API}diagnoses/", body, format="json", HTTP_IDEMPOTENCY_KEY="visit-42")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert Diagnosis.objects.filter(uuid=first.json()["id"]).exists()
    assert Diagnosis.objects.count() == 2  # the fixture's and this one


def test_a_retried_patient_is_not_refused_as_a_duplicate_mrn(clinician, db):
    body = patient_body(mrn="IDEM-1")
    first = clinician.post(f"{API}patients/", body, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    retry = clinician.post(f"{API}patients/", body, format="json", HTTP_IDEMPOTENCY_KEY="p-1")
    fresh = clinician.post(f"{API}patients/", body, format="json", HTTP_IDEMPOTENCY_KEY="p-2")

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    assert fresh.status_code == 400 and "mrn" in fresh.json()
    assert Patient.objects.filter(mrn="IDEM-1").count() == 1


def test_the_same_key_with_another_body_is_a_422(clinician, patient_record):
    body = diagnosis_body(patient_record.patient)
    clinician.post(f"{API}diagnoses/", body, format="json", HTTP_IDEMPOTENCY_KEY="k")

    other = clinician.post(
        f"{API}diagnoses/", {**body, "side": "bilateral"}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    study = imaging_body(patient_record.patient)
    elsewhere = clinician.post(f"{API}imaging-studies/", study, format="json", HTTP_IDEMPOTENCY_KEY="k")

    assert other.status_code == elsewhere.status_code == 422
    assert other.json() == {"detail": "This Idempotency-Key was used with another request body."}
    assert Diagnosis.objects.count() == 2
    assert ImagingStudy.objects.count() == 1


def test_the_key_belongs_to_one_client(api_as, patient_record):
    one, two = api_as(Role.CLINICIAN), api_as(Role.CLINICIAN)
    body = diagnosis_body(patient_record.patient)

    first = one.post(f"{API}diagnoses/", body, format="json", HTTP_IDEMPOTENCY_KEY="shared")
    second = two.post(f"{API}diagnoses/", body, format="json", HTTP_IDEMPOTENCY_KEY="shared")

    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert Diagnosis.objects.count() == 3


def test_a_refused_post_does_not_use_up_its_key(clinician, patient_record):
    body = diagnosis_body(patient_record.patient)
    wrong = {**body, "diagnosed_on": "1900-01-01"}
    refused = clinician.post(f"{API}diagnoses/", wrong, format="json", HTTP_IDEMPOTENCY_KEY="fix-me")
    corrected = clinician.post(f"{API}diagnoses/", body, format="json", HTTP_IDEMPOTENCY_KEY="fix-me")

    assert refused.status_code == 400
    assert corrected.status_code == 201
    assert Diagnosis.objects.count() == 2


def test_without_a_key_each_post_creates(clinician, patient_record):
    body = diagnosis_body(patient_record.patient)
    assert clinician.post(f"{API}diagnoses/", body, format="json").status_code == 201
    assert clinician.post(f"{API}diagnoses/", body, format="json").status_code == 201
    assert Diagnosis.objects.count() == 3


# --- ETag and If-Match ----------------------------------------------------------------------------


def test_reads_and_writes_carry_an_etag_that_changes_with_the_record(clinician, patient_record):
    path = detail("diagnoses", patient_record.diagnosis)
    first = clinician.get(path)
    again = clinician.get(path)
    etag = first["ETag"]

    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    assert again["ETag"] == etag

    changed = clinician.patch(path, {"notes": "Seen again."}, format="json", HTTP_IF_MATCH=etag)
    assert changed.status_code == 200
    assert changed["ETag"] != etag
    assert clinician.get(path)["ETag"] == changed["ETag"]
    created = clinician.post(f"{API}diagnoses/", diagnosis_body(patient_record.patient), format="json")
    assert created["ETag"] == clinician.get(f"{API}diagnoses/{created.json()['id']}/")["ETag"]


def test_a_read_of_the_version_the_client_holds_is_304_without_a_body(clinician, patient_record):
    path = detail("diagnoses", patient_record.diagnosis)
    etag = clinician.get(path)["ETag"]

    held = clinician.get(path, HTTP_IF_NONE_MATCH=etag)
    assert (held.status_code, held["ETag"], held.content) == (304, etag, b"")
    assert clinician.get(path, HTTP_IF_NONE_MATCH='"another"').status_code == 200
    clinician.patch(path, {"notes": "Seen again."}, format="json")
    assert clinician.get(path, HTTP_IF_NONE_MATCH=etag).status_code == 200


@pytest.mark.parametrize("method", ["put", "patch"])
@pytest.mark.parametrize("resource", RESOURCES)
def test_a_stale_if_match_gets_412_and_the_row_is_unchanged(clinician, patient_record, resource, method):
    obj = record_of(patient_record, resource)
    path = detail(resource, obj)
    _post, put, patch = write_bodies(patient_record, resource)
    body = put if method == "put" else patch
    stale = clinician.get(path)["ETag"]
    # Someone else changes the record in between.
    assert clinician.patch(path, patch, format="json").status_code == 200
    stored = type(obj).objects.get(pk=obj.pk)
    current = clinician.get(path)

    response = getattr(clinician, method)(path, body, format="json", HTTP_IF_MATCH=stale)

    assert response.status_code == 412
    assert "ETag" in response.json()["detail"]
    after = type(obj).objects.get(pk=obj.pk)
    assert after.updated_at == stored.updated_at
    assert clinician.get(path).json() == current.json()

    ok = getattr(clinician, method)(path, body, format="json", HTTP_IF_MATCH=current["ETag"])
    assert ok.status_code == 200, ok.content
    assert ok["ETag"] not in (stale, current["ETag"])


def test_if_match_accepts_a_star_and_a_list_of_tags(clinician, patient_record):
    path = detail("patients", patient_record.patient)
    star = clinician.patch(path, {"phone": "1"}, format="json", HTTP_IF_MATCH="*")
    listed = clinician.patch(path, {"phone": "2"}, format="json", HTTP_IF_MATCH=f'"0000", {star["ETag"]}')
    weak = clinician.patch(path, {"phone": "3"}, format="json", HTTP_IF_MATCH=f"W/{listed['ETag']}")

    assert (star.status_code, listed.status_code, weak.status_code) == (200, 200, 412)
    assert Patient.objects.get(pk=patient_record.patient.pk).phone == "2"


def test_a_detail_change_of_a_treatment_changes_its_etag(clinician, patient_record):
    path = detail("treatments", patient_record.medication)
    etag = clinician.get(path)["ETag"]
    changed = clinician.patch(path, {"medication": {"daily_dose_mg": 600}}, format="json", HTTP_IF_MATCH=etag)
    assert changed.status_code == 200
    assert changed.json()["medication"]["daily_dose_mg"] == 600
    stale = clinician.patch(path, {"medication": {"daily_dose_mg": 800}}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert clinician.get(path).json()["medication"]["daily_dose_mg"] == 600


# --- throttling -------------------------------------------------------------------------------------


@pytest.fixture
def low_rate(settings):
    """Three requests a minute per client, counted under a key prefix no other run shares."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "3/min"}}
    default = {**settings.CACHES["default"], "KEY_PREFIX": f"throttle-test-{uuid4().hex}"}
    settings.CACHES = {**settings.CACHES, "default": default}


def window_key(client) -> str:
    return f"throttle_client_window_{client.api_client.user_id}"


def test_a_client_over_its_rate_gets_429_and_another_client_does_not(low_rate, api_as, patient_record):
    busy, other = api_as(Role.INTEGRATION_READ), api_as(Role.INTEGRATION_READ)
    path = detail("patients", patient_record.patient)

    statuses = [busy.get(path).status_code for _ in range(3)]
    throttled = busy.get(path)

    assert statuses == [200, 200, 200]
    assert throttled.status_code == 429
    assert other.get(path).status_code == 200
    # The counters live in the shared cache (Redis), so every web process sees them: one per
    # client for the window (the refused request counted too), expiring with it.
    shared = caches["default"]
    assert isinstance(shared, RedisCache)
    assert (cache.get(window_key(busy)), cache.get(window_key(other))) == (4, 1)
    window_left = shared._cache.get_client().ttl(shared.make_and_validate_key(window_key(busy)))
    assert 0 < window_left <= 60
    assert 0 < int(throttled["Retry-After"]) <= window_left + 1


def test_a_list_left_by_drfs_own_throttle_is_no_counter(low_rate, api_as, patient_record):
    """Deployed over the old code, a client's key from DRF's sliding log holds a list of times."""
    client = api_as(Role.INTEGRATION_READ)
    cache.set(f"throttle_client_{client.api_client.user_id}", [1.0, 2.0], 60)

    assert client.get(detail("patients", patient_record.patient)).status_code == 200
    assert cache.get(f"throttle_client_{client.api_client.user_id}") == [1.0, 2.0]


@pytest.fixture
def file_cache(settings, tmp_path):
    """``make run`` has no Redis: the counters live in the file cache."""
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "2/min"}}
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(tmp_path),
        }
    }


def test_the_embedded_file_cache_throttles_too(file_cache, api_as, patient_record):
    busy, other = api_as(Role.INTEGRATION_READ), api_as(Role.INTEGRATION_READ)
    path = detail("patients", patient_record.patient)

    answers = [busy.get(path) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert 0 < int(answers[-1]["Retry-After"]) <= 60
    assert other.get(path).status_code == 200
    assert caches["default"].get(window_key(busy))[1] == 3


def test_in_the_file_cache_a_window_ends_on_time_whatever_was_refused(
    file_cache, api_as, patient_record, monkeypatch
):
    clock = [1_000_000.0]
    monkeypatch.setattr(ClientRateThrottle, "timer", lambda self: clock[0])
    client = api_as(Role.INTEGRATION_READ)
    path = detail("patients", patient_record.patient)

    first = [client.get(path).status_code for _ in range(2)]
    clock[0] += 45
    refused = client.get(path)
    clock[0] += 14  # one second of the window left
    still = client.get(path)
    clock[0] += 1
    again = [client.get(path).status_code for _ in range(3)]

    assert first == [200, 200]
    assert (refused.status_code, int(refused["Retry-After"])) == (429, 15)
    assert (still.status_code, int(still["Retry-After"])) == (429, 1)
    assert again == [200, 200, 429]


# --- a fixed number of queries per list -----------------------------------------------------------


def queries_for(client, url):
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    assert response.status_code == 200
    return len(captured), response.json()["results"]


def make_rows(resource, count):
    """``count`` rows of ``resource`` with every relation its list shows."""
    for i in range(count):
        patient = PatientFactory()
        if resource == "patients":
            continue
        diagnosis = diagnosis_for(patient, muscles=["frontalis", "zygomaticus"])
        if resource == "imaging-studies":
            imaging_study_record(
                patient=patient,
                diagnosis=diagnosis if i % 2 else None,
                performed_on=diagnosis.diagnosed_on,
                modality="mri",
                sequences=["ciss", "tof_mra"],
                offending_vessels=["aica", "pica"],
            )
        if resource == "treatments":
            # The last three made (the first page) are an MVD, a toxin session and a medication.
            kind = (MVD, TOXIN, MEDICATION)[i % 3]
            extra = {}
            if kind == MVD:
                first = treatment_for(diagnosis, kind, started_on=diagnosis.diagnosed_on)
                extra["mvd"] = {
                    "technique": "transposition",
                    "offending_vessels": ["aica", "vein"],
                    "redo_of": first,
                    "complications": [{"kind": "csf_leak", "onset_on": "2024-01-20"}],
                }
            treatment_for(diagnosis, kind, **extra)


@pytest.mark.parametrize("resource", ["patients", "diagnoses", "imaging-studies"])
def test_a_list_takes_as_many_queries_for_50_rows_as_for_1(
    clinician, db, resource, django_assert_num_queries
):
    make_rows(resource, 50)
    clinician.get(f"{API}{resource}/")  # the client's first request also notes when it was used

    one, rows = queries_for(clinician, f"{API}{resource}/?page_size=1")
    assert len(rows) == 1
    with django_assert_num_queries(one):
        response = clinician.get(f"{API}{resource}/?page_size=50")
    assert len(response.json()["results"]) == 50


def test_a_treatment_list_takes_as_many_queries_for_many_rows_as_for_one_of_each_kind(
    clinician, db, django_assert_num_queries
):
    """One of each kind, because a kind absent from a page has no details to fetch at all."""
    make_rows("treatments", 36)
    clinician.get(f"{API}treatments/")

    few, rows = queries_for(clinician, f"{API}treatments/?page_size=3")
    assert {row["kind"] for row in rows} == {"medication", "botulinum_toxin", "mvd"}
    assert any(row["mvd"] and row["mvd"]["redo_of"] and row["mvd"]["complications"] for row in rows)
    with django_assert_num_queries(few):
        response = clinician.get(f"{API}treatments/?page_size=48")
    assert len(response.json()["results"]) == 48


# --- the schema and its documentation -----------------------------------------------------------


CDN = re.compile(r"cdn|unpkg|jsdelivr|cloudflare|googleapis|gstatic", re.IGNORECASE)


def test_every_read_that_answers_304_says_so_and_no_other_read_claims_it(
    integration, clinician, patient_record
):
    schema = integration.get("/api/schema/", {"format": "json"}).json()
    claimed = {
        path
        for path, item in schema["paths"].items()
        if "get" in item
        and "If-None-Match" in {p["name"] for p in item["get"].get("parameters", []) if p["in"] == "header"}
    }
    documented = {
        path for path, item in schema["paths"].items() if "304" in item.get("get", {}).get("responses", {})
    }
    assert claimed == documented
    assert {f"/api/v1/{resource}/{{id}}/" for resource in RESOURCES} <= claimed
    assert "/api/v1/visits/{id}/" in claimed and "/api/v1/contact-attempts/{id}/" in claimed
    assert not [path for path in claimed if not path.endswith("{id}/") and not path.startswith("/fhir/")]
    # A claimed read really answers 304; a visit's own page says so since its schema is its own.
    visit = patient_record.patient.visits.first()
    path = f"{API}visits/{visit.uuid}/"
    assert clinician.get(path, HTTP_IF_NONE_MATCH="*").status_code == 304


def test_the_schema_is_served_and_describes_the_record_resources(integration):
    response = integration.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for resource in RESOURCES:
        assert f"/api/v1/{resource}/" in schema["paths"]
        assert f"/api/v1/{resource}/{{id}}/" in schema["paths"]
    assert "delete" in schema["paths"]["/api/v1/patients/{id}/"]
    assert "delete" not in schema["paths"]["/api/v1/diagnoses/{id}/"]
    assert schema["components"]["securitySchemes"]["apiToken"]["name"] == "Authorization"
    parameters = {p["name"] for p in schema["paths"]["/api/v1/treatments/"]["get"]["parameters"]}
    assert {"cursor", "page_size", "updated_since", "patient", "kind", "status"} <= parameters
    # Every operation documents its errors and the headers it honours.
    for resource in RESOURCES:
        listed = schema["paths"][f"/api/v1/{resource}/"]
        one = schema["paths"][f"/api/v1/{resource}/{{id}}/"]
        assert set(listed["get"]["responses"]) == {"200", "400", "401", "403", "404", "429"}
        assert set(listed["post"]["responses"]) == {"201", "400", "401", "403", "422", "429"}
        assert set(one["get"]["responses"]) == {"200", "304", "400", "401", "403", "404", "429"}
        assert "If-None-Match" in {p["name"] for p in one["get"]["parameters"] if p["in"] == "header"}
        for method in ("put", "patch"):
            assert set(one[method]["responses"]) == {"200", "400", "401", "403", "404", "412", "429"}
            assert "If-Match" in {p["name"] for p in one[method]["parameters"] if p["in"] == "header"}
        assert {p["name"] for p in listed["post"]["parameters"] if p["in"] == "header"} == {"Idempotency-Key"}
    assert set(schema["paths"]["/api/v1/patients/{id}/"]["delete"]["responses"]) >= {"204", "404"}
    assert not CDN.search(response.content.decode())


def test_the_docs_are_served_without_a_cdn_and_their_assets_from_static(db, settings, tmp_path):
    # Production serves what collectstatic gathered (the Dockerfile runs it); do the same here.
    settings.STATIC_ROOT = tmp_path / "static"
    call_command("collectstatic", "--noinput", verbosity=0)
    browser = Client()  # a new client loads WhiteNoise with this STATIC_ROOT
    browser.force_login(get_user_model().objects.create_user("reader", is_staff=True))

    response = browser.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert not CDN.search(html)
    # Nothing from another host at all: it would learn who reads the docs, and when.
    assert not re.search(r"(?:src|href)=\"(?:https?:)?//", html)
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    # The page's own script comes from the page itself (no inline script: the CSP refuses those).
    assert "/api/docs/?script=" in assets
    assets.remove("/api/docs/?script=")
    assert len(assets) >= 3  # the icon, the style sheet and the scripts
    # Before the static files: closing a streamed file ends the test's database connection (it
    # signals the end of a request), and the page's script asks the session who is signed in.
    script = browser.get("/api/docs/?script=")
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert '"/api/schema/"' in script.content.decode()
    assert not CDN.search(script.content.decode())
    for asset in assets:
        assert asset.startswith("/static/drf_spectacular_sidecar/swagger-ui-dist/"), asset
        served = browser.get(asset)
        assert served.status_code == 200, asset
        assert b"".join(served.streaming_content)
        served.close()
