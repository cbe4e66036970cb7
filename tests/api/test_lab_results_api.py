"""Lab results over the API (API.md v2, issue 19): ``lab-results/`` written by the lab system (the
``lab`` role, which reaches nothing else), clinicians and nurses; the laboratory-monitoring flag
clears in the request that records the result; a refusal is a 400 naming the field."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from clinic.roles import Role, group_for
from followups import services
from followups.codes import AssessmentStatus, FlagCode, LabTest
from followups.models import LabResult
from patients import codes
from patients.services import patient_archive
from tests.api.conftest import API, token_client
from tests.factories import PatientFactory, diagnosis_for, treatment_for

LAB_RESULTS = f"{API}lab-results/"
FIELDS = {
    "id",
    "patient",
    "test",
    "taken_on",
    "value",
    "unit",
    "abnormal",
    "status",
    "created_at",
    "updated_at",
}


def today() -> date:
    return timezone.localdate()


def days(n: int) -> timedelta:
    return timedelta(days=n)


def on_drug(drug: str, **patient_fields):
    """A patient ten days into an active course of ``drug``, with no lab result yet."""
    patient = PatientFactory(**patient_fields)
    diagnosis = diagnosis_for(patient, diagnosed_on=today() - days(30))
    treatment_for(
        diagnosis,
        codes.TreatmentKind.MEDICATION,
        started_on=today() - days(10),
        medication={"drug": drug, "daily_dose_mg": "600"},
    )
    return patient


def monitoring_due(patient) -> bool:
    return patient.flags.filter(code=FlagCode.LAB_MONITORING_DUE).exists()


def sodium(of, **overrides) -> dict:
    body = {"patient": str(of.uuid), "test": "sodium", "taken_on": today().isoformat(), "value": "138.0"}
    body.update(overrides)
    return body


@pytest.fixture
def lab(api_as):
    return api_as(Role.LAB)


@pytest.fixture
def oxcarbazepine_patient(db):
    patient = on_drug(codes.Drug.OXCARBAZEPINE)
    assert monitoring_due(patient)
    return patient


# --- the monitoring flag ------------------------------------------------------------------------------


def test_a_lab_client_records_a_sodium_and_the_monitoring_flag_clears_in_that_request(
    lab, clinician, oxcarbazepine_patient
):
    patient = oxcarbazepine_patient
    response = lab.post(LAB_RESULTS, sodium(patient, value=131.5, abnormal=True), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == FIELDS
    assert (body["patient"], body["test"], body["taken_on"]) == (
        str(patient.uuid),
        "sodium",
        today().isoformat(),
    )
    assert (float(body["value"]), body["unit"], body["abnormal"], body["status"]) == (
        131.5,
        "mmol/L",
        True,
        "final",
    )
    assert response["ETag"]
    assert not monitoring_due(patient)
    flags = clinician.get(f"{API}patients/{patient.uuid}/flags/").json()
    assert FlagCode.LAB_MONITORING_DUE not in {flag["code"] for flag in flags}
    assert LabResult.objects.get(uuid=body["id"]).patient == patient


def test_the_result_and_the_flags_are_one_transaction(lab, oxcarbazepine_patient, monkeypatch):
    """The flags are recomputed inside the service's transaction: when that fails, no result stays."""

    def broken(**kwargs):
        raise RuntimeError("flags store down")

    monkeypatch.setattr(services, "flags_sync", broken)
    lab.raise_request_exception = True
    with pytest.raises(RuntimeError):
        lab.post(LAB_RESULTS, sodium(oxcarbazepine_patient), format="json")
    assert not LabResult.objects.filter(patient=oxcarbazepine_patient).exists()
    assert monitoring_due(oxcarbazepine_patient)


def test_only_the_test_the_drug_asks_for_clears_the_flag(lab, db):
    patient = on_drug(codes.Drug.CARBAMAZEPINE)
    assert monitoring_due(patient)

    assert lab.post(LAB_RESULTS, sodium(patient), format="json").status_code == 201
    assert monitoring_due(patient), "a sodium is not the blood count carbamazepine asks for"

    blood_count = {"patient": str(patient.uuid), "test": "blood_count", "taken_on": today().isoformat()}
    response = lab.post(LAB_RESULTS, {**blood_count, "abnormal": False}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["value"], response.json()["unit"]) == (None, None)
    assert not monitoring_due(patient)


def test_a_retracted_result_raises_the_flag_again_and_changes_no_more(lab, oxcarbazepine_patient):
    created = lab.post(LAB_RESULTS, sodium(oxcarbazepine_patient), format="json")
    url = f"{LAB_RESULTS}{created.json()['id']}/"

    stale = lab.patch(url, {"status": "entered_in_error"}, format="json", HTTP_IF_MATCH='"0"')
    assert stale.status_code == 412
    assert not monitoring_due(oxcarbazepine_patient)

    edited = lab.patch(url, {"value": "140.0"}, format="json", HTTP_IF_MATCH=created["ETag"])
    assert edited.status_code == 400
    assert "retract it" in edited.json()["value"][0]

    retracted = lab.patch(url, {"status": "entered_in_error"}, format="json", HTTP_IF_MATCH=created["ETag"])
    assert retracted.status_code == 200, retracted.content
    assert retracted.json()["status"] == "entered_in_error"
    assert retracted["ETag"] != created["ETag"]
    assert monitoring_due(oxcarbazepine_patient)

    revived = lab.patch(url, {"status": "final"}, format="json")
    assert revived.status_code == 400
    assert "stays retracted" in revived.json()["status"][0]


# --- the lab role reaches lab results and nothing else ------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", f"{API}patients/"),
        ("get", f"{API}patients/{{patient}}/"),
        ("get", f"{API}patients/{{patient}}/flags/"),
        ("post", f"{API}patients/"),
        ("get", f"{API}diagnoses/"),
        ("get", f"{API}treatments/"),
        ("get", f"{API}visits/"),
        ("get", f"{API}assessments/"),
        ("post", f"{API}assessments/"),
        ("get", f"{API}worklists/flagged/"),
        ("get", "/fhir/Patient/{patient}"),
        ("get", "/fhir/Observation?patient={patient}"),
        ("get", "/fhir/Patient/{patient}/$everything"),
    ],
)
def test_the_lab_role_is_refused_everything_but_lab_results(method, path, lab, oxcarbazepine_patient):
    response = getattr(lab, method)(path.format(patient=oxcarbazepine_patient.uuid), {}, format="json")
    assert response.status_code == 403, (path, response.content)


def test_a_staff_user_in_the_lab_group_records_results_and_reads_no_patient(oxcarbazepine_patient):
    user = get_user_model().objects.create_user("lab.tech", password="unused-password-1")
    user.groups.add(group_for(Role.LAB))
    staff = APIClient()
    staff.force_login(user)

    assert staff.post(LAB_RESULTS, sodium(oxcarbazepine_patient), format="json").status_code == 201
    assert staff.get(LAB_RESULTS).status_code == 200
    assert staff.get(f"{API}patients/{oxcarbazepine_patient.uuid}/").status_code == 403
    assert not monitoring_due(oxcarbazepine_patient)


def test_create_api_client_makes_a_lab_client(oxcarbazepine_patient):
    out = io.StringIO()
    call_command("create_api_client", "Central laboratory", "--role", "lab", stdout=out)
    lab = token_client(out.getvalue().strip().splitlines()[-1])

    assert lab.get(f"{API}patients/").status_code == 403
    assert lab.post(LAB_RESULTS, sodium(oxcarbazepine_patient), format="json").status_code == 201


def test_who_else_reads_and_writes_lab_results(nurse, front_desk, integration, oxcarbazepine_patient):
    body = sodium(oxcarbazepine_patient)
    assert nurse.post(LAB_RESULTS, body, format="json").status_code == 201
    assert front_desk.get(LAB_RESULTS).status_code == 403
    assert front_desk.post(LAB_RESULTS, body, format="json").status_code == 403
    assert integration.get(LAB_RESULTS).status_code == 200
    assert integration.post(LAB_RESULTS, body, format="json").status_code == 403


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"taken_on": "2999-01-01"}, "taken_on", "in the future"),
        ({"taken_on": "1900-01-01"}, "taken_on", "before the patient's date of birth"),
        ({"taken_on": "2024-13-01"}, "taken_on", "Date has wrong format"),
        ({"value": "12.0"}, "value", "from 90 to 200"),
        ({"value": "1380"}, "value", "less than or equal to 1000"),
        ({"value": "-1"}, "value", "greater than or equal to 0"),
        ({"value": None}, "value", "Give the sodium value"),
        ({"value": "NaN"}, "value", "valid number"),
        ({"test": "blood_count", "value": "4.5"}, "value", "without a value"),
        ({"test": "potassium"}, "test", "not a valid choice"),
        ({"status": "entered_in_error"}, "status", "A new result is final"),
        ({"patient": "3f6d2c1e-9b7a-4e52-8d0c-5a1b2c3d4e5f"}, "patient", "does not exist"),
        ({"patient": "not-a-uuid"}, "patient", "UUID"),
        ({"unit": "mmol/L"}, "unit", "Unknown field"),
        ({"abnormal": "maybe"}, "abnormal", "valid boolean"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(changes, field, words, lab, oxcarbazepine_patient):
    response = lab.post(LAB_RESULTS, sodium(oxcarbazepine_patient, **changes), format="json")
    assert response.status_code == 400, response.content
    messages = response.json()[field]
    assert any(words.lower() in message.lower() for message in messages), messages
    assert not LabResult.objects.exists()
    assert monitoring_due(oxcarbazepine_patient)


def test_a_result_for_an_archived_patient_is_refused(lab, oxcarbazepine_patient):
    patient_archive(patient=oxcarbazepine_patient)
    response = lab.post(LAB_RESULTS, sodium(oxcarbazepine_patient), format="json")
    assert response.status_code == 400
    assert response.json()["patient"] == ["This patient is archived."]


def test_a_missing_field_is_named(lab, oxcarbazepine_patient):
    response = lab.post(LAB_RESULTS, {"patient": str(oxcarbazepine_patient.uuid)}, format="json")
    assert response.status_code == 400
    assert set(response.json()) >= {"test", "taken_on"}


# --- retries ------------------------------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_records_the_result_once(lab, oxcarbazepine_patient):
    body = sodium(oxcarbazepine_patient)
    first = lab.post(LAB_RESULTS, body, format="json", HTTP_IDEMPOTENCY_KEY="order-4711-na")
    again = lab.post(LAB_RESULTS, body, format="json", HTTP_IDEMPOTENCY_KEY="order-4711-na")

    assert (first.status_code, again.status_code) == (201, 201)
    assert {**again.json(), "value": None} == {**first.json(), "value": None}
    assert float(again.json()["value"]) == float(first.json()["value"]) == 138.0
    assert LabResult.objects.filter(patient=oxcarbazepine_patient).count() == 1

    other = lab.post(
        LAB_RESULTS, {**body, "value": "139.0"}, format="json", HTTP_IDEMPOTENCY_KEY="order-4711-na"
    )
    assert other.status_code == 422
    assert LabResult.objects.filter(patient=oxcarbazepine_patient).count() == 1


# --- lists --------------------------------------------------------------------------------------------


@pytest.fixture
def results(db):
    """Two patients' results: Ada's sodium and blood count (one retracted), Bob's sodium."""
    ada = on_drug(codes.Drug.OXCARBAZEPINE, given_name="Ada")
    bob = on_drug(codes.Drug.OXCARBAZEPINE, given_name="Bob")
    record = services.lab_result_record
    rows = {
        "ada_sodium": record(patient=ada, test=LabTest.SODIUM, taken_on=today() - days(3), value="136"),
        "ada_count": record(
            patient=ada, test=LabTest.BLOOD_COUNT, taken_on=today() - days(2), abnormal=False
        ),
        "bob_sodium": record(patient=bob, test=LabTest.SODIUM, taken_on=today() - days(1), value="129.5"),
    }
    rows["ada_count"] = services.lab_result_retract(result=rows["ada_count"])
    return {"ada": ada, "bob": bob, **rows}


def listed(client, **query) -> list[str]:
    response = client.get(LAB_RESULTS, query)
    assert response.status_code == 200, response.content
    return sorted(row["id"] for row in response.json()["results"])


def ids(*rows) -> list[str]:
    return sorted(str(row.uuid) for row in rows)


def test_the_list_filters_by_patient_test_status_and_updated_since(lab, results):
    assert listed(lab) == ids(results["ada_sodium"], results["ada_count"], results["bob_sodium"])
    assert listed(lab, patient=str(results["ada"].uuid)) == ids(results["ada_sodium"], results["ada_count"])
    assert listed(lab, test="sodium") == ids(results["ada_sodium"], results["bob_sodium"])
    assert listed(lab, patient=str(results["ada"].uuid), test="sodium") == ids(results["ada_sodium"])
    assert listed(lab, status=AssessmentStatus.ENTERED_IN_ERROR) == ids(results["ada_count"])

    later = LabResult.objects.get(pk=results["bob_sodium"].pk).updated_at
    LabResult.objects.filter(pk=results["bob_sodium"].pk).update(updated_at=later + timedelta(hours=1))
    since = (later + timedelta(minutes=30)).isoformat()
    assert listed(lab, updated_since=since) == ids(results["bob_sodium"])


def test_the_list_is_paged_by_cursor_and_refuses_what_it_does_not_read(lab, results):
    first = lab.get(LAB_RESULTS, {"page_size": 2}).json()
    assert len(first["results"]) == 2 and first["next"]
    second = lab.get(first["next"]).json()
    assert len(second["results"]) == 1 and second["next"] is None
    seen = {row["id"] for row in first["results"] + second["results"]}
    assert seen == set(ids(results["ada_sodium"], results["ada_count"], results["bob_sodium"]))

    refused = lab.get(LAB_RESULTS, {"test": "potassium", "mrn": "X1"})
    assert refused.status_code == 400
    assert set(refused.json()) >= {"mrn"}


def test_a_result_is_read_with_its_etag(lab, results):
    response = lab.get(f"{LAB_RESULTS}{results['bob_sodium'].uuid}/")
    assert response.status_code == 200
    assert response.json()["value"] in ("129.5", 129.5)
    assert response["ETag"]
    assert lab.get(f"{LAB_RESULTS}{results['bob'].uuid}/").status_code == 404


def test_a_replayed_answer_has_the_types_of_the_first(lab, oxcarbazepine_patient):
    body = sodium(oxcarbazepine_patient)
    first = lab.post(LAB_RESULTS, body, format="json", HTTP_IDEMPOTENCY_KEY="order-4712-na")
    again = lab.post(LAB_RESULTS, body, format="json", HTTP_IDEMPOTENCY_KEY="order-4712-na")
    assert again.json() == first.json()
