"""Contact attempts over the API (API.md "Added in v2": ``contact-attempts/``; DOMAIN.md section 9).

Each outcome is recorded through the API and its effect read back where the clinic sees it: the
booking, the call list, the patient's flags, the visit, the end of follow-up. Refusals are 400s
naming the field and write nothing (a slot taken meanwhile is a 409); the roles are those of a
patient's contact data; an attempt is a record, never changed.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.roles import Role
from followups import booking
from followups.codes import VisitKind, VisitStatus
from followups.models import ContactAttempt, SessionTemplate, Slot, Visit
from patients.models import Patient
from tests.api.conftest import API
from tests.api.test_call_list_api import CALL_LIST, days, due_visit, overdue_patient, rows_of, today
from tests.factories import PatientFactory, session_template_row
from tests.followups.conftest import at_clinic

ATTEMPTS = f"{API}contact-attempts/"


def detail(attempt_id) -> str:
    return f"{ATTEMPTS}{attempt_id}/"


@pytest.fixture
def due(db):
    """A patient half through an open review window, unbooked: on the call list (not_booked)."""
    patient = PatientFactory(phone="+49 30 1234567", email_reminders=True)
    return patient, due_visit(patient, start=today() - days(10), end=today() + days(4))


@pytest.fixture
def slot(due) -> Slot:
    """A one-place review slot two days ahead, inside the due visit's window."""
    SessionTemplate.objects.all().delete()
    session_template_row(weekday=(today() + days(2)).weekday(), valid_from=today(), kinds=[VisitKind.REVIEW])
    booking.sessions_generate(today=today())
    return Slot.objects.filter(session__on=today() + days(2)).order_by("starts_at").first()


def body(patient, visit=None, **fields) -> dict:
    found = {"patient": str(patient.uuid), "channel": "phone", "outcome": "no_answer", **fields}
    if visit is not None:
        found["visit"] = str(visit.uuid)
    return found


def recorded(client, payload, status=201) -> dict:
    response = client.post(ATTEMPTS, payload, format="json")
    assert response.status_code == status, response.content[:500]
    return response.json()


def listed(client) -> set[str]:
    return {row["patient"]["id"] for row in rows_of(client, CALL_LIST)}


# --- recording and reading ------------------------------------------------------------------------


def test_the_front_desk_records_an_unanswered_call_and_reads_it_back(front_desk, due):
    patient, visit = due
    before = timezone.now()

    created = recorded(front_desk, body(patient, visit, note="  Rang eight times  "))

    attempt = ContactAttempt.objects.get()
    assert created == {
        "id": str(attempt.uuid),
        "patient": str(patient.uuid),
        "visit": str(visit.uuid),
        "at": created["at"],
        "channel": "phone",
        "outcome": "no_answer",
        "remind_on": None,
        "seen_on": None,
        "note": "Rang eight times",
        "by": front_desk.api_client.user.username,
        "created_at": created["created_at"],
    }
    assert before <= datetime.fromisoformat(created["at"]) <= timezone.now()
    read = front_desk.get(detail(attempt.uuid))
    assert read.status_code == 200 and read.json() == created
    assert read["ETag"]
    # Still on the list: one unanswered call changes nothing else.
    assert str(patient.uuid) in listed(front_desk)


def test_at_is_kept_as_given_and_shown_on_the_call_list(front_desk, due):
    patient, visit = due
    at = at_clinic(today() - days(1), 16)

    created = recorded(
        front_desk, body(patient, visit, at=at.isoformat(), channel="sms", outcome="left_message")
    )

    assert datetime.fromisoformat(created["at"]) == at
    [row] = [r for r in rows_of(front_desk, CALL_LIST) if r["patient"]["id"] == str(patient.uuid)]
    assert row["last_attempt"]["channel"] == "sms" and row["last_attempt"]["outcome"] == "left_message"
    assert datetime.fromisoformat(row["last_attempt"]["at"]) == at


def test_the_list_filters_by_patient_outcome_channel_and_visit(clinician, due):
    patient, visit = due
    other, other_visit = overdue_patient(3)
    recorded(clinician, body(patient, visit))
    recorded(clinician, body(patient, visit, channel="email", outcome="left_message"))
    recorded(clinician, body(other, other_visit, channel="letter", outcome="left_message"))

    def outcomes(**query):
        response = clinician.get(ATTEMPTS, query)
        assert response.status_code == 200, response.content
        return {(row["patient"], row["channel"]) for row in response.json()["results"]}

    mine, theirs = str(patient.uuid), str(other.uuid)
    assert outcomes(patient=mine) == {(mine, "email"), (mine, "phone")}
    assert outcomes(outcome="left_message") == {(mine, "email"), (theirs, "letter")}
    assert outcomes(channel="letter") == {(theirs, "letter")}
    assert outcomes(visit=str(other_visit.uuid)) == {(theirs, "letter")}
    assert outcomes(updated_since=(timezone.now() + days(1)).isoformat()) == set()
    assert clinician.get(ATTEMPTS, {"outcome": "maybe"}).status_code == 400
    assert clinician.get(ATTEMPTS, {"sort": "at"}).status_code == 400


# --- each outcome's effect ------------------------------------------------------------------------


def test_agreed_to_visit_books_the_slot_in_the_same_step(front_desk, due, slot):
    patient, visit = due
    assert str(patient.uuid) in listed(front_desk)

    recorded(front_desk, body(patient, visit, outcome="agreed_to_visit", slot=str(slot.uuid)))

    visit.refresh_from_db()
    assert (visit.status, visit.slot_id, visit.scheduled_for) == (VisitStatus.BOOKED, slot.pk, slot.starts_at)
    assert Slot.objects.get(pk=slot.pk).booked == 1
    assert str(patient.uuid) not in listed(front_desk)


def test_agreed_to_visit_books_a_free_time_too(front_desk, due):
    patient, visit = due
    when = at_clinic(today() + days(3), 11)

    recorded(front_desk, body(patient, visit, outcome="agreed_to_visit", scheduled_for=when.isoformat()))

    visit.refresh_from_db()
    assert (visit.status, visit.scheduled_for) == (VisitStatus.BOOKED, when)


def test_a_full_slot_is_a_409_and_nothing_is_written(front_desk, due, slot):
    patient, visit = due
    Slot.objects.filter(pk=slot.pk).update(booked=1)

    response = front_desk.post(
        ATTEMPTS, body(patient, visit, outcome="agreed_to_visit", slot=str(slot.uuid)), format="json"
    )

    assert response.status_code == 409, response.content
    assert response.json()["error_codes"] == {"slot": ["slot_full"]}
    assert not ContactAttempt.objects.exists()
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.PLANNED


def test_call_later_hides_the_patient_until_another_attempt(front_desk, due):
    patient, visit = due

    created = recorded(
        front_desk, body(patient, visit, outcome="call_later", remind_on=(today() + days(3)).isoformat())
    )

    assert created["remind_on"] == (today() + days(3)).isoformat()
    assert str(patient.uuid) not in listed(front_desk)
    # A call made meanwhile (the patient rang back, say) brings the patient back.
    recorded(front_desk, body(patient, visit, outcome="left_message", at=timezone.now().isoformat()))
    assert str(patient.uuid) in listed(front_desk)


def test_wrong_number_raises_the_contact_details_flag(front_desk, clinician, due):
    patient, visit = due

    recorded(front_desk, body(patient, visit, outcome="wrong_number"))

    flags = clinician.get(f"{API}patients/{patient.uuid}/flags/").json()
    assert "contact_details_invalid" in {flag["code"] for flag in flags}
    # The front desk puts it right by saving a new number: the flag clears.
    changed = front_desk.patch(f"{API}patients/{patient.uuid}/", {"phone": "+49 30 999"}, format="json")
    assert changed.status_code == 200
    flags = clinician.get(f"{API}patients/{patient.uuid}/flags/").json()
    assert "contact_details_invalid" not in {flag["code"] for flag in flags}


def test_seen_elsewhere_completes_the_visit_on_that_day(front_desk, due):
    patient, visit = due
    seen_on = today() - days(2)

    created = recorded(
        front_desk, body(patient, visit, outcome="already_seen_elsewhere", seen_on=seen_on.isoformat())
    )

    visit.refresh_from_db()
    assert created["seen_on"] == seen_on.isoformat()
    assert visit.status == VisitStatus.COMPLETED
    assert timezone.localdate(visit.scheduled_for) == seen_on
    assert str(patient.uuid) not in listed(front_desk)


@pytest.mark.parametrize("outcome", ["declined_follow_up", "moved_away", "deceased"])
def test_an_ending_outcome_ends_follow_up(front_desk, due, outcome):
    patient, visit = due

    recorded(front_desk, body(patient, visit, outcome=outcome))

    patient.refresh_from_db()
    assert (patient.follow_up_ended_on, patient.follow_up_end_reason) == (today(), outcome)
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.CANCELLED
    assert patient.email_reminders is (outcome != "deceased")
    assert str(patient.uuid) not in listed(front_desk)
    read = front_desk.get(f"{API}patients/{patient.uuid}/").json()
    assert read["follow_up_end_reason"] == outcome


def test_ending_follow_up_twice_is_refused_and_writes_nothing(front_desk, due):
    patient, visit = due
    recorded(front_desk, body(patient, visit, outcome="moved_away"))

    refused = recorded(front_desk, body(patient, outcome="declined_follow_up"), status=400)

    assert refused["error_codes"] == {"patient": ["already_ended"]}
    assert ContactAttempt.objects.count() == 1


# --- refusals -------------------------------------------------------------------------------------

UNKNOWN = "3f6d2c1e-9b7a-4e52-8d0c-5a1b2c3d4e5f"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"outcome": "call_later"}, "remind_on"),
        ({"outcome": "call_later", "remind_on": "PAST"}, "remind_on"),
        ({"outcome": "call_later", "remind_on": "TODAY"}, "remind_on"),
        ({"outcome": "no_answer", "remind_on": "AHEAD"}, "remind_on"),
        ({"outcome": "agreed_to_visit"}, "slot"),
        ({"outcome": "already_seen_elsewhere"}, "seen_on"),
        ({"outcome": "already_seen_elsewhere", "seen_on": "AHEAD"}, "seen_on"),
        ({"slot": UNKNOWN, "outcome": "agreed_to_visit"}, "slot"),
        ({"visit": UNKNOWN}, "visit"),
        ({"visit": "not-a-uuid"}, "visit"),
        ({"patient": UNKNOWN}, "patient"),
        ({"patient": 42}, "patient"),
        ({"channel": "pigeon"}, "channel"),
        ({"outcome": "maybe"}, "outcome"),
        ({"note": "\ud800"}, "detail"),  # refused as a body before any field is read
        ({"note": "x" * 501}, "note"),
        ({"at": "AHEAD"}, "at"),
        ({"at": "2026-01-01T10:00:00"}, "at"),
        ({"scheduled_for": "2026-01-01T10:00:00+01:00"}, "slot"),
        ({"by": "someone"}, "by"),
    ],
)
def test_a_bad_attempt_is_a_400_on_its_field_and_writes_nothing(front_desk, due, fields, field):
    patient, visit = due
    stand_ins = {
        "PAST": (today() - days(1)).isoformat(),
        "TODAY": today().isoformat(),
        "AHEAD": (today() + days(2)).isoformat(),
    }
    fields = {k: stand_ins.get(v, v) if isinstance(v, str) else v for k, v in fields.items()}
    if fields.get("at") == stand_ins["AHEAD"]:
        fields["at"] = (timezone.now() + days(1)).isoformat()
    payload = {**body(patient, visit), **fields}

    # A JSON string with a lone surrogate, as a client may send it (escaped).
    response = front_desk.post(ATTEMPTS, json.dumps(payload), content_type="application/json")

    assert response.status_code == 400, response.content[:500]
    assert field in response.json(), response.json()
    assert not ContactAttempt.objects.exists()
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.PLANNED
    assert Patient.objects.get(pk=patient.pk).follow_up_ended_on is None


def test_a_visit_of_another_patient_is_refused(front_desk, due):
    patient, _ = due
    _, their_visit = overdue_patient(3)

    refused = recorded(front_desk, body(patient, their_visit), status=400)

    assert refused["error_codes"] == {"visit": ["other_patient"]}
    assert not ContactAttempt.objects.exists()


def test_a_booking_the_visit_refuses_undoes_the_attempt(front_desk, db):
    patient, visit = overdue_patient(7)  # its window closed: a time after it needs confirming
    when = at_clinic(today() + days(5), 10)

    refused = recorded(
        front_desk,
        body(patient, visit, outcome="agreed_to_visit", scheduled_for=when.isoformat()),
        status=400,
    )

    assert "outside_window" in json.dumps(refused["error_codes"])
    assert not ContactAttempt.objects.exists()
    confirmed = body(
        patient, visit, outcome="agreed_to_visit", scheduled_for=when.isoformat(), confirm_outside_window=True
    )
    recorded(front_desk, confirmed)
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.BOOKED


# --- roles and conventions ----------------------------------------------------------------------


def test_the_roles_of_contact_data(api_as, anonymous, due):
    patient, visit = due
    clients = {role: api_as(role) for role in Role}
    attempt = recorded(clients[Role.CLINICIAN], body(patient, visit))

    writes = {
        role: clients[role].post(ATTEMPTS, body(patient, visit), format="json").status_code for role in Role
    }
    reads = {role: clients[role].get(detail(attempt["id"])).status_code for role in Role}
    lists = {role: clients[role].get(ATTEMPTS).status_code for role in Role}

    assert writes == {
        Role.CLINICIAN: 201,
        Role.FRONT_DESK: 201,
        Role.NURSE: 403,
        Role.INTEGRATION_READ: 403,
        Role.LAB: 403,
    }
    # Every role but the lab's (API.md v2: lab results only) reads them.
    assert reads.pop(Role.LAB) == lists.pop(Role.LAB) == 403
    assert set(reads.values()) == set(lists.values()) == {200}
    assert anonymous.get(ATTEMPTS).status_code == 401
    assert ContactAttempt.objects.count() == 3


def test_an_attempt_is_never_changed_or_deleted(clinician, due):
    patient, visit = due
    attempt = recorded(clinician, body(patient, visit))

    for method in ("put", "patch", "delete"):
        response = getattr(clinician, method)(detail(attempt["id"]), {"note": "x"}, format="json")
        assert response.status_code == 405, method
    assert ContactAttempt.objects.get().note == ""


@pytest.mark.parametrize("bad_id", ["not-a-uuid", UNKNOWN])
def test_an_unknown_attempt_is_a_404(clinician, db, bad_id):
    assert clinician.get(detail(bad_id)).status_code == 404


def test_a_retried_post_with_the_same_key_records_one_attempt(front_desk, due):
    patient, visit = due
    payload = body(patient, visit, outcome="wrong_number")

    first = front_desk.post(ATTEMPTS, payload, format="json", HTTP_IDEMPOTENCY_KEY="call-17")
    again = front_desk.post(ATTEMPTS, payload, format="json", HTTP_IDEMPOTENCY_KEY="call-17")
    other = front_desk.post(
        ATTEMPTS, {**payload, "outcome": "no_answer"}, format="json", HTTP_IDEMPOTENCY_KEY="call-17"
    )

    assert (first.status_code, again.status_code, other.status_code) == (201, 201, 422)
    assert again.json() == first.json()
    assert ContactAttempt.objects.count() == 1


def test_a_page_of_attempts_costs_the_same_queries_for_1_as_for_50(clinician, due, django_assert_num_queries):
    patient, visit = due
    recorded(clinician, body(patient, visit))
    clinician.get(ATTEMPTS)  # a client's first request also notes when it was last used

    with CaptureQueriesContext(connection) as one:
        assert len(clinician.get(ATTEMPTS).json()["results"]) == 1
    one_row = len(one)  # now: the next request empties the log the capture reads
    assert one_row <= 3  # the client's key and role, the page (by, visit and patient joined), the audit
    for n in range(49):
        recorded(clinician, body(patient, visit, note=f"call {n}", at=at_clinic(today(), 8).isoformat()))
    with django_assert_num_queries(one_row):
        assert len(clinician.get(ATTEMPTS, {"page_size": 50}).json()["results"]) == 50
