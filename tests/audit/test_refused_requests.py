"""Refused requests for a patient's data are in the audit trail: who, what, when, how it ended.

Views record what they answered (status < 400); the middleware records 401, 403 and 404 on a
patient's resource, naming the patient when the path does, and nothing else.
"""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from clinic.models import AuditEvent
from clinic.roles import Role
from tests.factories import PatientFactory, diagnosis_for

API = "/api/v1/"
FHIR = "/fhir/"
NOBODY = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def diagnosis(db):
    return diagnosis_for(PatientFactory())


def refusals() -> list[tuple]:
    """The rows of refused requests, oldest first, as (channel, resource, object, patient, status)."""
    rows = AuditEvent.objects.filter(status__gte=400).order_by("id")
    return [(e.channel, e.resource, e.object_id, e.patient_id, e.status) for e in rows]


def test_an_anonymous_read_of_a_patient_is_recorded_with_the_patient(diagnosis):
    patient = diagnosis.patient
    response = APIClient().get(f"{API}patients/{patient.uuid}/", REMOTE_ADDR="192.0.2.7")

    assert response.status_code == 401
    [event] = AuditEvent.objects.all()
    assert (event.actor, event.actor_id, event.action, event.method) == ("anonymous", None, "read", "GET")
    assert (event.path, event.remote_addr) == (f"{API}patients/{patient.uuid}/", "192.0.2.7")
    assert refusals() == [("api", "patient", str(patient.uuid), patient.uuid, 401)]


def test_a_role_refused_a_record_is_recorded_under_the_record_s_patient(api_as, diagnosis):
    front_desk = api_as(Role.FRONT_DESK)
    path = f"{API}diagnoses/{diagnosis.uuid}/"

    assert front_desk.get(path).status_code == 403
    assert front_desk.patch(path, {"side": "left"}, format="json").status_code == 403

    assert refusals() == [("api", "diagnosis", str(diagnosis.uuid), diagnosis.patient.uuid, 403)] * 2
    assert [e.action for e in AuditEvent.objects.order_by("id")] == ["read", "update"]
    assert {e.actor_id for e in AuditEvent.objects.all()} == {front_desk.user.pk}


def test_a_refused_list_is_one_row_without_a_patient(api_as, diagnosis):
    assert APIClient().get(f"{API}diagnoses/").status_code == 401
    assert api_as(Role.FRONT_DESK).get(f"{API}diagnoses/").status_code == 403

    assert refusals() == [("api", "diagnosis", "", None, 401), ("api", "diagnosis", "", None, 403)]


def test_a_refused_list_names_the_patient_it_was_filtered_to(api_as, diagnosis):
    front_desk = api_as(Role.FRONT_DESK)
    assert front_desk.get(f"{API}diagnoses/", {"patient": str(diagnosis.patient.uuid)}).status_code == 403
    assert front_desk.get(f"{API}diagnoses/", {"patient": "not-an-id"}).status_code == 403

    assert [row[3] for row in refusals()] == [diagnosis.patient.uuid, None]


# With how many of the three paths a route takes (a path no route takes names nothing).
@pytest.mark.parametrize(
    ("named", "routed"),
    [
        (NOBODY, 3),
        ("not-a-uuid", 2),
        ("\u00b2", 2),
        ("%00", 2),
        ("1" * 300, 2),
        ("0.5", 0),
        ("Patient%2F..%2F", 0),
    ],
)
def test_a_404_names_no_patient_and_never_fails(api_as, diagnosis, named, routed):
    clinician = api_as(Role.CLINICIAN)
    for path in (f"{API}patients/{named}/", f"{API}diagnoses/{named}/", f"{API}patients/{named}/outcomes/"):
        response = clinician.get(path)
        assert response.status_code == 404, path
    assert [row[3:] for row in refusals()] == [(None, 404)] * routed


def test_a_404_on_a_record_s_path_is_recorded_as_that_resource(api_as, db):
    assert api_as(Role.CLINICIAN).get(f"{API}treatments/{NOBODY}/").status_code == 404
    assert refusals() == [("api", "treatment", NOBODY, None, 404)]


def test_the_clinic_s_week_and_paths_that_name_nothing_are_not_a_patient_s(api_as, db):
    client = APIClient()
    for path in ("session-templates/", "sessions/", "slots/", "no-such-thing/", f"slots/{NOBODY}/"):
        assert client.get(API + path).status_code in (401, 404), path
    assert client.get("/api/schema/").status_code in (200, 401, 403)
    assert Client().get("/no/such/page/").status_code == 404

    assert refusals() == []


def test_answered_requests_are_left_to_the_views(api_as, diagnosis):
    clinician = api_as(Role.CLINICIAN)
    assert clinician.get(f"{API}diagnoses/{diagnosis.uuid}/").status_code == 200
    assert clinician.post(f"{API}diagnoses/", {"kind": "primary"}, format="json").status_code == 400

    # The view's one row of the read; the 400 is a refusal of the input, not of access.
    assert [(e.status, e.patient_id) for e in AuditEvent.objects.all()] == [(200, diagnosis.patient.uuid)]


def test_a_refused_row_costs_a_fixed_handful_of_queries(api_as, diagnosis):
    front_desk = api_as(Role.FRONT_DESK)
    front_desk.get(f"{API}diagnoses/{diagnosis.uuid}/")  # warm: the client's key and groups are cached

    with CaptureQueriesContext(connection) as refused_row:
        front_desk.get(f"{API}diagnoses/{diagnosis.uuid}/")
    with CaptureQueriesContext(connection) as refused_list:
        front_desk.get(f"{API}diagnoses/", {"page_size": 500})
    # The list's refusal reads no rows; the row's costs one look-up of its patient.
    assert len(refused_row.captured_queries) <= len(refused_list.captured_queries) + 1
    assert AuditEvent.objects.filter(status=403).count() == 3


# --- FHIR ---------------------------------------------------------------------------------------


def test_fhir_refusals_name_the_patient_of_the_path_or_of_the_search(api_as, diagnosis):
    patient = diagnosis.patient
    front_desk = api_as(Role.FRONT_DESK)

    assert APIClient().get(f"{FHIR}Patient/{patient.uuid}").status_code == 401
    assert front_desk.get(f"{FHIR}Patient/{patient.uuid}/$everything").status_code == 403
    assert front_desk.get(f"{FHIR}Condition", {"patient": f"Patient/{patient.uuid}"}).status_code == 403
    assert front_desk.get(f"{FHIR}Condition/{diagnosis.uuid}").status_code == 403
    assert api_as(Role.CLINICIAN).get(f"{FHIR}Patient/{NOBODY}").status_code == 404

    assert refusals() == [
        ("fhir", "Patient", str(patient.uuid), patient.uuid, 401),
        ("fhir", "Patient", str(patient.uuid), patient.uuid, 403),
        ("fhir", "Condition", "", patient.uuid, 403),
        ("fhir", "Condition", str(diagnosis.uuid), None, 403),
        ("fhir", "Patient", NOBODY, None, 404),
    ]


def test_fhir_s_metadata_and_the_clinic_s_sessions_are_nobody_s(db):
    client = APIClient()
    for path in ("metadata", "Slot", f"Slot/{NOBODY}", "Schedule", "NoSuchType"):
        assert client.get(FHIR + path).status_code in (200, 401, 404), path
    assert refusals() == []


# --- admin --------------------------------------------------------------------------------------


def test_the_admin_records_a_page_refused_to_a_role_under_the_row_s_patient(staff_as, diagnosis):
    front_desk = staff_as(Role.FRONT_DESK)

    assert front_desk.get(f"/admin/patients/diagnosis/{diagnosis.pk}/change/").status_code == 403
    assert front_desk.get("/admin/patients/diagnosis/").status_code == 403
    assert front_desk.get(f"/admin/patients/diagnosis/{diagnosis.pk}/history/").status_code == 403

    assert refusals() == [
        ("admin", "diagnosis", str(diagnosis.pk), diagnosis.patient.uuid, 403),
        ("admin", "diagnosis", "", None, 403),
        ("admin", "diagnosis", str(diagnosis.pk), diagnosis.patient.uuid, 403),
    ]
    assert {e.actor for e in AuditEvent.objects.filter(status=403)} == {front_desk.user.username}


def test_the_admin_records_a_404_on_a_patient_s_history(staff_as, diagnosis):
    clinician = staff_as(Role.CLINICIAN)
    patient = diagnosis.patient

    assert clinician.get(f"/admin/patients/patient/{patient.pk}/history/999999/").status_code == 404
    assert clinician.get("/admin/patients/patient/0/history/").status_code == 404

    assert refusals() == [
        ("admin", "patient", str(patient.pk), patient.uuid, 404),
        ("admin", "patient", "0", None, 404),
    ]


def test_admin_pages_that_are_nobody_s_record_nothing(staff_as, db):
    front_desk = staff_as(Role.FRONT_DESK)
    for path in ("/admin/clinic/auditevent/", "/admin/followups/protocol/add/", "/admin/nothing/here/"):
        assert front_desk.get(path).status_code in (302, 403, 404), path
    assert refusals() == []


def test_a_refusal_row_holds_ids_only(staff_as, db):
    patient = PatientFactory(given_name="Zelda", family_name="Quux", mrn="SECRET-MRN-77")
    staff_as(Role.FRONT_DESK).get(f"/admin/patients/diagnosis/?q={patient.mrn}")
    APIClient().get(f"{API}patients/", {"search": patient.family_name})

    rows = AuditEvent.objects.filter(status__gte=400)
    assert rows.count() == 2
    text = " ".join(str(value) for event in rows for value in vars(event).values())
    assert [s for s in ("Zelda", "Quux", "SECRET-MRN-77") if s in text] == []
