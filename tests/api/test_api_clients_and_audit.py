"""API clients (the command, hashed keys, revocation, authentication) and the audit trail."""

from io import StringIO
from uuid import UUID

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from rest_framework.test import APIClient

from clinic.api_clients import api_client_create, api_client_for_key, api_client_revoke
from clinic.models import ApiClient, AuditEvent
from clinic.roles import Role, group_for, role_of
from tests.api.conftest import API, token_client
from tests.factories import PatientFactory, diagnosis_for

# --- create_api_client ----------------------------------------------------------------------------


def test_create_api_client_prints_a_working_key_as_its_last_line(db):
    out = StringIO()
    call_command("create_api_client", "scheduling", "--role", "front_desk", stdout=out)

    key = out.getvalue().strip().splitlines()[-1]
    client = ApiClient.objects.get(name="scheduling")
    assert role_of(client.user) == Role.FRONT_DESK
    assert client.revoked_at is None
    assert token_client(key).get(API + "patients/").status_code == 200
    # The front desk role came with it: clinical resources stay closed.
    assert token_client(key).get(API + "diagnoses/").status_code == 403


def test_the_key_is_stored_only_as_a_hash(db):
    out = StringIO()
    call_command("create_api_client", "ehr", "--role", "clinician", stdout=out)
    key = out.getvalue().strip().splitlines()[-1]
    client = ApiClient.objects.get(name="ehr")

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM clinic_apiclient WHERE id = %s", [client.pk])
        client_row = cursor.fetchone()
        cursor.execute("SELECT * FROM auth_user WHERE id = %s", [client.user_id])
        user_row = cursor.fetchone()
    stored = " ".join(str(value) for value in (*client_row, *user_row))
    secret = key.partition(".")[2]
    assert len(secret) >= 32
    assert key not in stored
    assert secret not in stored
    # The client's user cannot sign in with a password either.
    assert not client.user.has_usable_password()
    # A key with the right prefix but another secret is refused: the hash is what is compared.
    forged = key.partition(".")[0] + "." + "x" * len(secret)
    assert token_client(forged).get(API + "patients/").status_code == 401


@pytest.mark.parametrize(
    ("groups", "role"),
    [
        ([Role.FRONT_DESK], Role.FRONT_DESK),
        ([Role.INTEGRATION_READ, Role.NURSE], Role.NURSE),  # several: the first of Role's order
        ([], None),
    ],
)
def test_finding_a_client_by_its_key_answers_its_role_in_the_same_query(
    db, groups, role, django_assert_num_queries
):
    client, key = api_client_create(name="lab", role=Role.CLINICIAN)
    client.user.groups.set([group_for(g) for g in groups])
    api_client_for_key(key)  # the first use of the minute also writes last_used_at

    with django_assert_num_queries(1):
        found = api_client_for_key(key)
        assert role_of(found.user) == role
    # The same answer as asking the user's groups afresh.
    client.user.refresh_from_db()
    assert role_of(client.user) == role


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lab", "--role", "superuser"], "invalid choice"),
        (["lab"], "--role"),
        (["x" * 101, "--role", "nurse"], "1 to 100 characters"),
    ],
)
def test_create_api_client_refuses_bad_arguments_with_a_message(db, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("create_api_client", *args, stdout=StringIO())
    assert not ApiClient.objects.exists()


def test_a_second_client_of_the_same_name_is_refused(db):
    call_command("create_api_client", "lab", "--role", "nurse", stdout=StringIO())
    with pytest.raises(CommandError, match="no other client has"):
        call_command("create_api_client", "lab", "--role", "clinician", stdout=StringIO())
    assert ApiClient.objects.count() == 1


def test_the_last_use_of_a_key_is_recorded(api_as):
    client = api_as(Role.NURSE)
    assert client.api_client.last_used_at is None
    client.get(API + "patients/")
    client.api_client.refresh_from_db()
    assert client.api_client.last_used_at is not None


# --- authentication -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Token",
        "Token ",
        "Token a b",
        "Token not-a-key",
        "Token 0123456789ab.secret",
        "Bearer whatever",
        "Basic dXNlcjpwYXNz",
        "Token abc\x00def",
    ],
)
def test_without_valid_credentials_every_resource_answers_401(patient_record, authorization):
    client = APIClient()
    if authorization is not None:
        client.credentials(HTTP_AUTHORIZATION=authorization)
    for path in (
        "patients/",
        f"patients/{patient_record.patient.uuid}/",
        "diagnoses/",
        "imaging-studies/",
        "treatments/",
    ):
        response = client.get(API + path)
        assert response.status_code == 401, (path, response.content)
        assert response["WWW-Authenticate"] == "Token"
    assert client.post(API + "patients/", {}, format="json").status_code == 401
    # Every attempt is recorded (clinic.audit_refused), as nobody's, and names the patient only where
    # the path does.
    rows = AuditEvent.objects.order_by("id")
    assert [(e.actor, e.actor_id, e.status) for e in rows] == [("anonymous", None, 401)] * 6
    assert [e.patient_id for e in rows] == [None, patient_record.patient.uuid, None, None, None, None]


def test_a_revoked_key_gets_401(api_as):
    client = api_as(Role.CLINICIAN)
    assert client.get(API + "patients/").status_code == 200

    api_client_revoke(client=client.api_client)

    response = client.get(API + "patients/")
    assert response.status_code == 401
    assert response.json() == {"detail": "This key is unknown or revoked."}
    # Revoking twice changes nothing.
    revoked_at = ApiClient.objects.get(pk=client.api_client.pk).revoked_at
    api_client_revoke(client=ApiClient.objects.get(pk=client.api_client.pk))
    assert ApiClient.objects.get(pk=client.api_client.pk).revoked_at == revoked_at


def test_a_key_is_revoked_in_the_admin(api_as, django_user_model):
    client = api_as(Role.INTEGRATION_READ)
    other = api_as(Role.INTEGRATION_READ)
    admin = django_user_model.objects.create_superuser("admin", "admin@clinic.invalid", "a-long-password-1")
    browser = Client()
    browser.force_login(admin)

    response = browser.post(
        "/admin/clinic/apiclient/",
        {"action": "revoke_selected", "_selected_action": [client.api_client.pk]},
    )

    assert response.status_code == 302
    assert ApiClient.objects.get(pk=client.api_client.pk).revoked_at is not None
    assert client.get(API + "patients/").status_code == 401
    assert other.get(API + "patients/").status_code == 200


def test_staff_sign_in_with_the_session_and_share_the_role_model(patient_record, django_user_model):
    nurse = django_user_model.objects.create_user("nurse.n", password="a-long-password-1", is_staff=True)
    nurse.groups.add(group_for(Role.NURSE))
    browser = APIClient()
    browser.force_login(nurse)
    assert browser.get(API + "diagnoses/").status_code == 200
    path = f"{API}diagnoses/{patient_record.diagnosis.uuid}/"
    assert browser.patch(path, {"notes": "x"}, format="json").status_code == 403

    nobody = django_user_model.objects.create_user("no.role", password="a-long-password-1", is_staff=True)
    browser.force_login(nobody)
    assert browser.get(API + "patients/").status_code == 403


# --- the audit trail ------------------------------------------------------------------------------


def events():
    return list(AuditEvent.objects.order_by("id"))


def test_reading_a_patient_records_who_which_patient_path_status_and_address(api_as, patient_record):
    client = api_as(Role.INTEGRATION_READ, name="ehr")
    patient = patient_record.patient
    path = f"{API}patients/{patient.uuid}/"

    assert client.get(path, REMOTE_ADDR="10.20.30.40").status_code == 200

    [event] = events()
    assert event.actor == "api:ehr"
    assert event.actor_id == client.api_client.user_id
    assert event.channel == "api"
    assert event.action == AuditEvent.Action.READ
    assert event.resource == "patient"
    assert event.method == "GET"
    assert event.object_id == str(patient.uuid)
    assert event.patient_id == patient.uuid
    assert event.path == path
    assert event.status == 200
    assert event.remote_addr == "10.20.30.40"
    assert event.at is not None


def test_a_list_records_one_row_per_patient_shown(clinician, db):
    patients = [PatientFactory() for _ in range(3)]

    response = clinician.get(API + "patients/", {"page_size": 2})
    shown = [UUID(row["id"]) for row in response.json()["results"]]
    assert len(shown) == 2
    assert [event.patient_id for event in events()] == shown
    assert {event.status for event in events()} == {200}

    clinician.get(response.json()["next"])
    assert {event.patient_id for event in events()} == {patient.uuid for patient in patients}
    assert AuditEvent.objects.count() == 3


def test_a_list_of_records_names_the_patient_of_each_row(clinician, patient_record):
    other_diagnosis = diagnosis_for(PatientFactory())

    clinician.get(API + "diagnoses/")

    recorded = {(event.object_id, event.patient_id) for event in events()}
    assert recorded == {
        (str(patient_record.diagnosis.uuid), patient_record.patient.uuid),
        (str(other_diagnosis.uuid), other_diagnosis.patient.uuid),
    }
    assert {event.resource for event in events()} == {"diagnosis"}


def test_an_empty_page_records_nothing(clinician, db):
    assert clinician.get(API + "patients/").json()["results"] == []
    assert not AuditEvent.objects.exists()


def test_every_write_is_recorded_with_its_action_and_status(clinician, patient_record):
    patient = patient_record.patient

    created = clinician.post(
        API + "diagnoses/",
        {"patient": str(patient.uuid), "kind": "primary", "side": "right", "diagnosed_on": "2023-05-02"},
        format="json",
    )
    changed = clinician.patch(f"{API}patients/{patient.uuid}/", {"phone": "+49 30 1234"}, format="json")
    retracted = clinician.patch(
        f"{API}treatments/{patient_record.medication.uuid}/", {"status": "entered_in_error"}, format="json"
    )
    archived = clinician.delete(f"{API}patients/{patient.uuid}/")

    assert [created.status_code, changed.status_code, retracted.status_code, archived.status_code] == [
        201,
        200,
        200,
        204,
    ]
    rows = [(e.action, e.resource, e.method, e.status, e.object_id, e.patient_id) for e in events()]
    assert rows == [
        ("create", "diagnosis", "POST", 201, created.json()["id"], patient.uuid),
        ("update", "patient", "PATCH", 200, str(patient.uuid), patient.uuid),
        ("update", "treatment", "PATCH", 200, str(patient_record.medication.uuid), patient.uuid),
        ("delete", "patient", "DELETE", 204, str(patient.uuid), patient.uuid),
    ]


def test_a_replayed_post_is_recorded_too(clinician, patient_record):
    body = {"patient": str(patient_record.patient.uuid), "kind": "primary", "side": "left"}
    body["diagnosed_on"] = "2023-06-01"
    first = clinician.post(API + "diagnoses/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")
    again = clinician.post(API + "diagnoses/", body, format="json", HTTP_IDEMPOTENCY_KEY="k-1")

    assert again.json() == first.json()
    assert [(e.object_id, e.status) for e in events()] == [(first.json()["id"], 201)] * 2


def test_the_proxys_hop_is_the_address_and_a_forged_header_neither_fails_nor_lands(
    clinician, patient_record, settings
):
    settings.NUM_PROXIES = 1  # behind compose's TLS proxy (tests/api/test_proxies.py: none)
    path = f"{API}patients/{patient_record.patient.uuid}/"
    # The proxy appends the address it saw; what the client put before it proves nothing.
    forwarded = clinician.get(path, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="1.2.3.4, 203.0.113.9")
    ipv6 = clinician.get(path, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="2001:db8::7")
    forged = clinician.get(path, REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="<script>, not-an-address")
    direct = clinician.get(path, REMOTE_ADDR="192.0.2.44")

    assert [r.status_code for r in (forwarded, ipv6, forged, direct)] == [200] * 4
    addresses = [event.remote_addr for event in events()]
    assert addresses == ["203.0.113.9", "2001:db8::7", "10.0.0.2", "192.0.2.44"]


def test_refused_requests_are_recorded_as_refused_and_failed_ones_are_not(api_as, patient_record):
    front_desk = api_as(Role.FRONT_DESK)
    clinician = api_as(Role.CLINICIAN)

    assert front_desk.get(f"{API}diagnoses/{patient_record.diagnosis.uuid}/").status_code == 403
    assert clinician.get(f"{API}diagnoses/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert clinician.post(API + "diagnoses/", {"kind": "primary"}, format="json").status_code == 400
    # The attempts (HIPAA 164.312(b)); a 400 refuses the input, not the access, and is not one.
    assert [(e.status, e.patient_id) for e in events()] == [(403, patient_record.patient.uuid), (404, None)]


def test_the_audit_table_refuses_update_and_delete_in_the_database(clinician, patient_record):
    clinician.get(f"{API}patients/{patient_record.patient.uuid}/")
    [event] = events()

    for statement in (
        "UPDATE clinic_auditevent SET actor = 'someone else' WHERE id = %s",
        "DELETE FROM clinic_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement, [event.pk])

    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).update(status=500)
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(pk=event.pk).delete()

    [unchanged] = events()
    assert (unchanged.actor, unchanged.status) == (event.actor, 200)
    # Appending still works.
    clinician.get(f"{API}patients/{patient_record.patient.uuid}/")
    assert AuditEvent.objects.count() == 2


def test_api_client_create_refuses_an_unknown_role_and_an_empty_name(db):
    with pytest.raises(ValidationError) as unknown:
        api_client_create(name="lab", role="admin")
    assert "role" in unknown.value.message_dict
    with pytest.raises(ValidationError) as empty:
        api_client_create(name="", role="nurse")
    assert "name" in empty.value.message_dict
    assert not ApiClient.objects.exists()
