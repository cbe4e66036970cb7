"""Flags over the API (API.md, v2): ``patients/{id}/flags/`` entries with id, since (a date),
acknowledged_by, acknowledged_at and note; ``POST flags/{id}/acknowledge/`` {note} for clinicians; the
flagged worklist without acknowledged flags."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clinic.models import AuditEvent
from clinic.roles import Role
from followups.codes import FlagCode, LabTest
from followups.flags_store import flags_sync
from followups.models import PatientFlag
from followups.services import lab_result_record
from patients import codes
from tests.api.conftest import API
from tests.factories import PatientFactory, diagnosis_for, treatment_for

FLAG_FIELDS = {"id", "code", "detail", "since", "acknowledged_by", "acknowledged_at", "note"}


def today() -> date:
    return timezone.localdate()


def days(n: int) -> timedelta:
    return timedelta(days=n)


def acknowledge_url(flag) -> str:
    return f"{API}flags/{flag if isinstance(flag, str) else flag.uuid}/acknowledge/"


def flags_url(patient) -> str:
    return f"{API}patients/{patient.uuid}/flags/"


@pytest.fixture
def ada(db):
    """Diagnosed 30 days ago without imaging (imaging_missing); a carbamazepine course of 10 days for
    at-risk ancestry without an HLA result nor a blood count (hla_b1502_missing, lab_monitoring_due)."""
    patient = PatientFactory(given_name="Ada", family_name="Lovelace", at_risk_hla_b1502=True)
    diagnosis = diagnosis_for(patient, diagnosed_on=today() - days(30))
    treatment_for(diagnosis, codes.TreatmentKind.MEDICATION, started_on=today() - days(10))
    assert {f.code for f in patient.flags.all()} == {
        FlagCode.IMAGING_MISSING,
        FlagCode.HLA_B1502_MISSING,
        FlagCode.LAB_MONITORING_DUE,
    }
    return patient


@pytest.fixture
def flag(ada) -> PatientFlag:
    return ada.flags.get(code=FlagCode.IMAGING_MISSING)


def entry(flag: PatientFlag) -> dict:
    flag = PatientFlag.objects.select_related("acknowledged_by").get(pk=flag.pk)
    return {
        "id": str(flag.uuid),
        "code": flag.code,
        "detail": flag.detail,
        "since": flag.since.isoformat(),
        "acknowledged_by": flag.acknowledged_by.get_username() if flag.acknowledged_by else None,
        "acknowledged_at": flag.acknowledged_at,
        "note": flag.note,
    }


def unacknowledged(flag: PatientFlag) -> bool:
    flag = PatientFlag.objects.get(pk=flag.pk)
    return (flag.acknowledged_by_id, flag.acknowledged_at, flag.note) == (None, None, "")


# --- patients/{id}/flags/ -------------------------------------------------------------------------


def test_a_patients_flags_carry_id_since_and_their_acknowledgement(clinician, ada):
    response = clinician.get(flags_url(ada))

    assert response.status_code == 200
    body = response.json()
    assert all(set(row) == FLAG_FIELDS for row in body)
    by_code = {row["code"]: row for row in body}
    course = ada.treatments.get()
    assert by_code[FlagCode.IMAGING_MISSING]["since"] == (today() - days(30)).isoformat()
    assert by_code[FlagCode.LAB_MONITORING_DUE]["since"] == course.started_on.isoformat()
    for row in body:
        flag = ada.flags.get(uuid=row["id"])
        assert row == entry(flag)
        assert (row["acknowledged_by"], row["acknowledged_at"], row["note"]) == (None, None, "")
        assert date.fromisoformat(row["since"]) == flag.since  # a date, not a date-time


def test_a_clinician_acknowledges_a_flag_and_gets_it_back(clinician, flag):
    before = timezone.now()

    response = clinician.post(acknowledge_url(flag), {"note": "MRI booked for next week."}, format="json")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == FLAG_FIELDS
    assert (body["id"], body["code"], body["since"], body["note"]) == (
        str(flag.uuid),
        FlagCode.IMAGING_MISSING,
        flag.since.isoformat(),
        "MRI booked for next week.",
    )
    assert body["acknowledged_by"] == clinician.api_client.user.get_username()
    acknowledged_at = parse_datetime(body["acknowledged_at"])
    assert acknowledged_at.utcoffset() is not None  # ISO 8601 with an offset
    assert before <= acknowledged_at <= timezone.now()
    stored = PatientFlag.objects.get(pk=flag.pk)
    assert (stored.acknowledged_by, stored.acknowledged_at, stored.note) == (
        clinician.api_client.user,
        acknowledged_at,
        "MRI booked for next week.",
    )


def test_the_patients_flags_show_the_acknowledgement(clinician, ada, flag):
    clinician.post(acknowledge_url(flag), {"note": "MRI booked."}, format="json")

    body = {row["id"]: row for row in clinician.get(flags_url(ada)).json()}

    assert len(body) == 3  # it stays on the patient's flags
    row = body[str(flag.uuid)]
    assert row == {**entry(flag), "acknowledged_at": row["acknowledged_at"]}
    assert (row["acknowledged_by"], row["note"]) == (clinician.api_client.user.get_username(), "MRI booked.")
    assert parse_datetime(row["acknowledged_at"]) == PatientFlag.objects.get(pk=flag.pk).acknowledged_at
    assert [r["acknowledged_by"] for i, r in body.items() if i != str(flag.uuid)] == [None, None]


def test_an_acknowledged_flag_leaves_the_flagged_worklist(clinician, integration, ada, flag):
    def listed(client, **params):
        response = client.get(f"{API}worklists/flagged/", params)
        assert response.status_code == 200
        return {(row["patient"]["id"], row["flag"]["id"]) for row in response.json()["results"]}

    everyone = {(str(ada.uuid), str(f.uuid)) for f in ada.flags.all()}
    assert listed(clinician) == everyone

    clinician.post(acknowledge_url(flag), {"note": "MRI booked."}, format="json")

    assert listed(clinician) == everyone - {(str(ada.uuid), str(flag.uuid))}
    assert listed(integration) == everyone - {(str(ada.uuid), str(flag.uuid))}
    assert listed(clinician, code=FlagCode.IMAGING_MISSING) == set()
    rows = clinician.get(f"{API}worklists/flagged/").json()["results"]
    assert all(set(row["flag"]) == FLAG_FIELDS and row["flag"]["acknowledged_by"] is None for row in rows)


def test_a_new_fact_brings_an_acknowledged_flag_back_to_the_worklist(clinician, ada):
    lab = ada.flags.get(code=FlagCode.LAB_MONITORING_DUE)
    clinician.post(acknowledge_url(lab), {"note": "Lab requested."}, format="json")

    # Judged 200 days on, the course has gone on without a blood count: the fact stands, the
    # acknowledgement holds.
    flags_sync(patient=ada, today=today() + days(200))
    assert str(lab.uuid) not in {
        r["flag"]["id"] for r in clinician.get(f"{API}worklists/flagged/").json()["results"]
    }

    # The lab system reports a blood count of 100 days ago.
    lab_result_record(patient=ada, test=LabTest.BLOOD_COUNT, taken_on=today() - days(100))

    # A blood count of 100 days ago: due again from 9 days ago, a new fact.
    [row] = [r for r in clinician.get(flags_url(ada)).json() if r["id"] == str(lab.uuid)]
    assert (row["since"], row["acknowledged_by"], row["acknowledged_at"], row["note"]) == (
        (today() - days(9)).isoformat(),
        None,
        None,
        "",
    )
    assert str(lab.uuid) in {
        r["flag"]["id"] for r in clinician.get(f"{API}worklists/flagged/").json()["results"]
    }


# --- who may acknowledge, and with what -----------------------------------------------------------


@pytest.mark.parametrize("role", [Role.NURSE, Role.FRONT_DESK, Role.INTEGRATION_READ])
def test_only_a_clinician_acknowledges_a_flag(api_as, flag, role):
    response = api_as(role).post(acknowledge_url(flag), {"note": "Seen."}, format="json")

    # Acknowledging writes the clinical record: clinicians only (clinic/roles.py).
    assert response.status_code == 403
    assert unacknowledged(flag)


def test_acknowledging_needs_credentials(anonymous, flag):
    assert anonymous.post(acknowledge_url(flag), {"note": "Seen."}, format="json").status_code == 401
    assert unacknowledged(flag)


@pytest.mark.parametrize("flag_id", [lambda: str(uuid.uuid4()), lambda: "not-a-uuid", lambda: "1"])
def test_acknowledging_an_unknown_flag_is_a_404(clinician, flag, flag_id):
    response = clinician.post(acknowledge_url(flag_id()), {"note": "Seen."}, format="json")

    assert response.status_code == 404
    assert unacknowledged(flag)


@pytest.mark.parametrize("body", [{}, {"note": ""}, {"note": "   "}, {"note": None}, {"note": "x" * 501}])
def test_acknowledging_without_a_note_is_a_400_on_the_note(clinician, flag, body):
    response = clinician.post(acknowledge_url(flag), body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["note"]
    assert unacknowledged(flag)


def test_acknowledging_refuses_a_field_it_does_not_take(clinician, flag):
    response = clinician.post(
        acknowledge_url(flag), {"note": "Seen.", "acknowledged_by": "someone-else"}, format="json"
    )

    assert response.status_code == 400
    assert unacknowledged(flag)


def test_a_flag_is_read_through_its_patient_not_on_its_own(clinician, flag):
    assert clinician.get(f"{API}flags/").status_code in (404, 405)
    assert clinician.get(f"{API}flags/{flag.uuid}/").status_code in (404, 405)
    assert clinician.get(acknowledge_url(flag)).status_code == 405
    assert clinician.patch(f"{API}flags/{flag.uuid}/", {"note": "x"}, format="json").status_code in (404, 405)
    assert unacknowledged(flag)


def test_an_acknowledgement_is_audited(clinician, flag):
    clinician.post(acknowledge_url(flag), {"note": "MRI booked."}, format="json")
    clinician.post(acknowledge_url(flag), {}, format="json")  # refused: not audited

    rows = list(
        AuditEvent.objects.filter(actor=clinician.api_client.user.username, resource="flag").values_list(
            "object_id", "patient_id", "method", "status"
        )
    )
    assert rows == [(str(flag.uuid), flag.patient.uuid, "POST", 200)]


def test_the_flagged_worklist_pages_through_the_flags_to_review_in_order(clinician, ada, flag):
    clinician.post(acknowledge_url(flag), {"note": "MRI booked."}, format="json")
    other = PatientFactory()
    diagnosis_for(other, diagnosed_on=today() - days(400))
    expected = list(
        PatientFlag.objects.filter(acknowledged_at__isnull=True)
        .order_by("since", "id")
        .values_list("uuid", flat=True)
    )
    assert len(expected) == 3

    seen, page = [], f"{API}worklists/flagged/?page_size=1"
    while page:
        response = clinician.get(page)
        assert response.status_code == 200, response.json()  # `since` is a date: so is the cursor
        seen += [row["flag"]["id"] for row in response.json()["results"]]
        page = response.json()["next"]

    assert seen == [str(u) for u in expected]
