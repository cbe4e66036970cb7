"""The call list and the lost-to-follow-up list over the API (API.md "Added in v2": ``worklists/
call-list/`` and ``worklists/lost-to-follow-up/``; DOMAIN.md section 9).

Rows come in the selector's order (reachable first, then high risk, then the longest overdue), a
page at a time by number, in the envelope of every list; the front desk never sees a visit's
purpose; a page costs the same queries for 10 rows as for 500.
"""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone

from clinic.roles import Role
from followups.calls.follow_up_end import follow_up_end
from followups.calls.services import contact_attempt_record
from followups.codes import ContactChannel, ContactOutcome, FlagCode, VisitKind, VisitStatus
from followups.flags_store import flags_sync
from followups.models import ContactAttempt, PatientFlag, Visit
from followups.visit_moves import visit_move
from patients.codes import FollowUpEndReason
from patients.models import Patient
from patients.services import patient_archive
from tests.api.conftest import API
from tests.factories import PatientFactory
from tests.followups.conftest import at_clinic

CALL_LIST = f"{API}worklists/call-list/"
LOST = f"{API}worklists/lost-to-follow-up/"
LISTS = (CALL_LIST, LOST)
# Words no other field holds: a front desk's answer must not contain them anywhere.
SECRET_PURPOSE = "Palsy review after redo decompression"


def today() -> date:
    return timezone.localdate()


def days(n: int) -> timedelta:
    return timedelta(days=n)


def due_visit(patient, *, start: date, end: date, purpose="Review", kind=VisitKind.REVIEW) -> Visit:
    """A planned visit with the window ``start``..``end``, written as a row (planning is not the
    subject here): overdue once its window has closed. The patient's flags are then stored as a
    refresh stores them: the lists read the stored flags."""
    visit = Visit.objects.create(
        patient=patient,
        purpose=purpose,
        visit_kind=kind,
        scheduled_for=at_clinic(start + (end - start) / 2),
        window_start=start,
        window_end=end,
        status=VisitStatus.PLANNED,
        source="manual",
    )
    flags_sync(patient=patient)
    return visit


def overdue_patient(closed_days_ago: int, **fields) -> tuple[Patient, Visit]:
    """A patient whose only visit's window closed ``closed_days_ago`` days ago, unbooked."""
    patient = PatientFactory(phone="+49 30 1234567", **fields)
    end = today() - days(closed_days_ago)
    return patient, due_visit(patient, start=end - days(14), end=end)


def rows_of(client, path, **params) -> list[dict]:
    response = client.get(path, params)
    assert response.status_code == 200, response.content[:500]
    return response.json()["results"]


def walk(client, path, **params) -> list[dict]:
    """Every row of a list, following ``next`` links from the first page."""
    found, url = [], f"{path}?{'&'.join(f'{k}={v}' for k, v in params.items())}"
    while url:
        body = client.get(url).json()
        found += body["results"]
        url = body["next"]
    return found


def unanswered(patient, visit, times: int) -> None:
    for _ in range(times):
        contact_attempt_record(
            patient=patient, visit=visit, channel=ContactChannel.PHONE, outcome=ContactOutcome.NO_ANSWER
        )


@pytest.fixture
def ward(db):
    """Five patients the call list orders: one high-risk, two overdue 30 and 10 days, one half through
    an open window, and one unreachable (three unanswered calls) though overdue longest."""
    at_risk, at_risk_visit = overdue_patient(5)
    PatientFlag.objects.create(
        patient=at_risk, code=FlagCode.RECURRENCE_AFTER_MVD, detail="Spasms back.", since=today() - days(9)
    )
    longest, _ = overdue_patient(30, email_reminders=True)
    shorter, _ = overdue_patient(10)
    half = PatientFactory(phone="+49 30 7654321")
    half_visit = due_visit(half, start=today() - days(10), end=today() + days(4))
    unreachable, unreachable_visit = overdue_patient(60)
    unanswered(unreachable, unreachable_visit, 3)
    return {
        "at_risk": (at_risk, at_risk_visit),
        "longest": longest,
        "shorter": shorter,
        "half": (half, half_visit),
        "unreachable": unreachable,
    }


# --- order and content --------------------------------------------------------------------------


def test_the_call_list_answers_its_rows_in_the_selectors_order(clinician, ward):
    rows = rows_of(clinician, CALL_LIST)

    assert [row["patient"]["id"] for row in rows] == [
        str(ward["at_risk"][0].uuid),
        str(ward["longest"].uuid),
        str(ward["shorter"].uuid),
        str(ward["half"][0].uuid),
        str(ward["unreachable"].uuid),
    ]
    assert [(r["reason"], r["days_overdue"], r["high_risk"], r["unreachable"]) for r in rows] == [
        ("window_closed", 5, True, False),
        ("window_closed", 30, False, False),
        ("window_closed", 10, False, False),
        ("not_booked", 0, False, False),
        ("window_closed", 60, False, True),
    ]


def test_a_row_shows_the_patient_the_visit_due_and_the_last_attempt(clinician, ward):
    patient, visit = ward["half"]
    contact_attempt_record(
        patient=patient, visit=visit, channel=ContactChannel.SMS, outcome=ContactOutcome.LEFT_MESSAGE
    )
    longest = ward["longest"]

    rows = {row["patient"]["id"]: row for row in rows_of(clinician, CALL_LIST)}

    row = rows[str(patient.uuid)]
    assert row["patient"] == {
        "id": str(patient.uuid),
        "given_name": patient.given_name,
        "family_name": patient.family_name,
        "phone": "+49 30 7654321",
        "email_reminders": False,
    }
    assert rows[str(longest.uuid)]["patient"]["email_reminders"] is True
    assert row["visit"]["id"] == str(visit.uuid)
    assert {k: row["visit"][k] for k in ("visit_kind", "status", "window_start", "window_end", "due_on")} == {
        "visit_kind": "review",
        "status": "planned",
        "window_start": visit.window_start.isoformat(),
        "window_end": visit.window_end.isoformat(),
        "due_on": visit.due_on.isoformat(),
    }
    assert row["last_attempt"]["channel"] == "sms" and row["last_attempt"]["outcome"] == "left_message"
    assert rows[str(longest.uuid)]["last_attempt"] is None


def test_the_lost_list_holds_only_patients_without_a_visit_attended_for_the_days_asked(clinician, db):
    lost, _ = overdue_patient(380)  # its window opened 394 days ago: due for over a year
    recent, _ = overdue_patient(40)  # due 54 days ago: lost after 30 days, not after 365
    ended, _ = overdue_patient(400)
    follow_up_end(patient=ended, reason=FollowUpEndReason.MOVED_AWAY)

    default = [row["patient"]["id"] for row in rows_of(clinician, LOST)]
    thirty = [row["patient"]["id"] for row in rows_of(clinician, LOST, days=30)]

    assert default == [str(lost.uuid)]
    assert thirty == [str(lost.uuid), str(recent.uuid)]
    assert rows_of(clinician, LOST)[0]["days_overdue"] == 380


@pytest.mark.parametrize("value", ["29", "3651", "abc", "1e3", "-30", "00000000365", "٣٦٥"])
def test_the_lost_list_refuses_days_it_cannot_take(clinician, db, value):
    response = clinician.get(LOST, {"days": value})
    assert response.status_code == 400
    assert list(response.json()) == ["days"]


def test_an_ended_or_archived_patient_is_on_no_list(clinician, ward):
    longest = ward["longest"]
    follow_up_end(patient=longest, reason=FollowUpEndReason.DECLINED_FOLLOW_UP)
    patient_archive(patient=ward["shorter"])

    listed = {row["patient"]["id"] for row in rows_of(clinician, CALL_LIST)}

    assert str(longest.uuid) not in listed and str(ward["shorter"].uuid) not in listed
    assert len(listed) == 3


def test_a_booked_visit_takes_the_patient_off_the_call_list(clinician, ward):
    patient, visit = ward["half"]
    visit_move(visit=visit, to=VisitStatus.BOOKED, scheduled_for=at_clinic(today() + days(2)))

    assert str(patient.uuid) not in {row["patient"]["id"] for row in rows_of(clinician, CALL_LIST)}


# --- the visit's purpose is for clinical roles only (issue 20) ----------------------------------


@pytest.fixture
def secret(db):
    """A patient lost to follow-up (so on both lists) whose visit's purpose says why."""
    patient = PatientFactory(phone="+49 30 1234567")
    end = today() - days(370)
    due_visit(patient, start=end - days(14), end=end, purpose=SECRET_PURPOSE, kind=VisitKind.INJECTION)
    return patient


@pytest.mark.parametrize("path", LISTS)
def test_the_front_desk_sees_the_kind_of_clinic_never_the_purpose(front_desk, secret, path):
    response = front_desk.get(path)

    assert response.status_code == 200
    [row] = response.json()["results"]
    assert row["patient"]["id"] == str(secret.uuid)
    assert row["visit"]["visit_kind"] == "injection"
    assert "purpose" not in row["visit"]
    assert SECRET_PURPOSE.encode() not in response.content
    assert b"Palsy" not in response.content


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.NURSE, Role.INTEGRATION_READ])
def test_clinical_roles_see_the_purpose(api_as, secret, path, role):
    [row] = rows_of(api_as(role), path)
    assert row["visit"]["purpose"] == SECRET_PURPOSE


@pytest.mark.parametrize("path", LISTS)
def test_every_role_that_reads_visits_reads_the_lists_and_none_writes_them(api_as, anonymous, db, path):
    for role in Role:
        # The lab role (API.md v2) reads lab results only.
        assert api_as(role).get(path).status_code == (403 if role == Role.LAB else 200), role
    assert api_as(Role.CLINICIAN).post(path, {}, format="json").status_code == 405
    assert anonymous.get(path).status_code == 401


# --- pages --------------------------------------------------------------------------------------


def test_pages_walk_every_row_once_in_order_with_links_both_ways(clinician, ward):
    whole = [row["patient"]["id"] for row in rows_of(clinician, CALL_LIST)]

    walked = [row["patient"]["id"] for row in walk(clinician, CALL_LIST, page_size=2)]
    second = clinician.get(CALL_LIST, {"page_size": 2, "page": 2}).json()
    last = clinician.get(CALL_LIST, {"page_size": 2, "page": 3}).json()

    assert walked == whole and len(whole) == 5
    assert parse_qs(urlsplit(second["previous"]).query) == {"page_size": ["2"]}
    assert parse_qs(urlsplit(second["next"]).query) == {"page_size": ["2"], "page": ["3"]}
    assert parse_qs(urlsplit(last["previous"]).query) == {"page_size": ["2"], "page": ["2"]}
    assert last["next"] is None and len(last["results"]) == 1
    first = clinician.get(CALL_LIST, {"page_size": 2}).json()
    assert first["previous"] is None


def test_a_page_past_the_end_is_empty(clinician, ward):
    body = clinician.get(CALL_LIST, {"page": 9}).json()
    assert body["results"] == [] and body["next"] is None


@pytest.mark.parametrize("page", ["0", "-1", "abc", "1.5", "100001", "9" * 5000])
@pytest.mark.parametrize("path", LISTS)
def test_a_page_that_is_no_page_number_is_a_400_naming_it(clinician, db, path, page):
    # Issue 20: a malformed query parameter is a 400 with the parameter named.
    response = clinician.get(path, {"page": page})
    assert response.status_code == 400
    assert response.json() == {"page": ["Give a page number from 1 to 100000."]}


@pytest.mark.parametrize("path", LISTS)
def test_a_cursor_or_an_unknown_parameter_is_a_400(clinician, db, path):
    assert clinician.get(path, {"cursor": "cD0x"}).status_code == 400
    response = clinician.get(path, {"sort": "name"})
    assert response.status_code == 400
    assert response.json() == {"sort": ["Unknown query parameter."]}


# --- queries ------------------------------------------------------------------------------------

# Measured: the client's key with its role, the page of patients with everything the row shows,
# their visits, and the audit rows: 4, whatever the page's length.
MOST_QUERIES = 4


def lost_patients(count: int) -> None:
    """``count`` patients lost to follow-up (and so on the call list too), written in bulk, a third
    of them with an attempt and a high-risk flag, so that every part of a row is read. The rows
    bypass the services: each patient's flags (overdue, lost) are then stored as a refresh stores
    them, and the high-risk flags written after, planted rather than derived."""
    first = Patient.objects.count()
    patients = Patient.objects.bulk_create(
        Patient(
            mrn=f"BULK{first + n:07d}",
            given_name="Ada",
            family_name=f"Bulk{n}",
            date_of_birth=date(1960, 1, 1),
            sex="female",
            phone="+49 30 1",
        )
        for n in range(count)
    )
    end = today() - days(370)
    Visit.objects.bulk_create(
        Visit(
            patient=patient,
            purpose="Review",
            scheduled_for=at_clinic(end - days(7)),
            window_start=end - days(30),
            window_end=end - days(n % 20),
            status=VisitStatus.PLANNED,
            source="manual",
        )
        for n, patient in enumerate(patients)
    )
    for patient in patients:
        flags_sync(patient=patient)
    PatientFlag.objects.bulk_create(
        PatientFlag(patient=patient, code=FlagCode.CONSIDER_MVD_EVALUATION, detail="MVD?", since=today())
        for patient in patients[::3]
    )
    ContactAttempt.objects.bulk_create(
        ContactAttempt(
            patient=patient,
            at=timezone.now() - days(1),
            channel=ContactChannel.LETTER,
            outcome=ContactOutcome.LEFT_MESSAGE,
        )
        for patient in patients[::3]
    )


@pytest.mark.parametrize("path", LISTS)
def test_a_page_costs_the_same_queries_for_10_rows_as_for_500(
    clinician, db, path, django_assert_max_num_queries
):
    lost_patients(10)
    clinician.get(path)  # a client's first request also notes when it was last used

    with django_assert_max_num_queries(MOST_QUERIES) as ten:
        rows = rows_of(clinician, path, page_size=500)
    assert len(rows) == 10
    assert any(row["last_attempt"] for row in rows) and any(row["high_risk"] for row in rows)

    lost_patients(490)
    with django_assert_max_num_queries(MOST_QUERIES) as five_hundred:
        rows = rows_of(clinician, path, page_size=500)
    assert len(rows) == 500
    assert len(five_hundred) == len(ten)
    assert [row["high_risk"] for row in rows] == sorted((row["high_risk"] for row in rows), reverse=True)


def test_a_page_size_is_taken(clinician, ward):
    assert len(rows_of(clinician, CALL_LIST, page_size="2")) == 2


@pytest.mark.parametrize("page_size", ["0", "-1", "x", "9" * 20])
def test_a_page_size_that_is_no_whole_number_from_1_is_a_400(clinician, ward, page_size):
    # Issue 20: it once fell back to the default page, silently.
    response = clinician.get(CALL_LIST, {"page_size": page_size})
    assert response.status_code == 400
    assert list(response.json()) == ["page_size"]
