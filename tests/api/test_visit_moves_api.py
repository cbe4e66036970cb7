"""The visit move endpoints of API.md "Added in v2" (POST visits/{id}/book|unbook|complete|missed|
cancel|correct/) and PATCH, through ``visit_move`` and its guards (DOMAIN.md section 2).

Each answers the visit (200) or a 400 with the message on the field at fault and its code under
``error_codes``; a refused move changes nothing. The API has no clock of its own to set, so the
visits here sit where the guards need them: a toxin session of today plans its review two weeks
ahead, and a visit booked by hand two days ago has passed.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import formats, timezone
from django.utils.dateparse import parse_datetime

from clinic.roles import Role
from followups import booking
from followups import codes as codes_f
from followups import services as followups
from followups.models import SessionTemplate, SessionTemplateKind, Slot, Visit
from followups.visit_moves import visit_move
from followups.visit_states import B, C, M, P, X
from patients import codes
from tests.api.conftest import API
from tests.factories import PatientFactory, diagnosis_for, treatment_for

WHY = "Marked by mistake: the patient came."
MOVES = ("book", "unbook", "complete", "missed", "cancel", "correct")


def today() -> date:
    return timezone.localdate()


def days(n: int) -> timedelta:
    return timedelta(days=n)


def at(on: date, hour: int = 11, minute: int = 0) -> datetime:
    return datetime.combine(on, time(hour, minute), tzinfo=ZoneInfo(settings.CLINIC_TIME_ZONE))


def day(on: date) -> str:
    return formats.date_format(on, "j F Y")


def move_url(visit, move: str = "") -> str:
    return f"{API}visits/{visit.uuid}/" + (f"{move}/" if move else "")


def refusal(field: str, message: str, code: str) -> dict:
    return {field: [message], "error_codes": {field: [code]}}


def row(visit) -> dict:
    return Visit.objects.filter(pk=visit.pk).values().get()


def history_count(visit) -> int:
    return Visit.history.filter(id=visit.pk).count()


def refused(client, visit, move: str, body: dict | None, expected: dict, method: str = "post"):
    """A move that must be refused: a 400 with exactly ``expected``, and the visit unchanged."""
    before, history = row(visit), history_count(visit)
    path = move_url(visit, move)
    response = getattr(client, method)(path, body or {}, format="json")
    assert response.status_code == 400, response.content
    assert response.json() == expected
    assert (row(visit), history_count(visit)) == (before, history)
    return response


def moved(client, visit, move: str, body: dict | None = None, method: str = "post") -> dict:
    response = getattr(client, method)(move_url(visit, move), body or {}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def ada(db):
    return PatientFactory(given_name="Ada", family_name="Lovelace")


@pytest.fixture
def session(ada):
    """A toxin session of today: its review is due on day 21, within days 14 to 28."""
    diagnosis = diagnosis_for(ada, diagnosed_on=today() - days(30))
    return treatment_for(diagnosis, codes.TreatmentKind.BOTULINUM_TOXIN, started_on=today())


@pytest.fixture
def review(session) -> Visit:
    visit = Visit.objects.filter(treatment=session).order_by("scheduled_for").first()
    assert (visit.status, visit.window_start, visit.window_end) == (P, today() + days(14), today() + days(28))
    return visit


@pytest.fixture
def passed(ada) -> Visit:
    """A visit booked by hand for two days ago: it can be completed or missed now."""
    return followups.visit_create(patient=ada, purpose="Review", scheduled_for=at(today() - days(2)))


def outside(on: date, visit) -> str:
    return (
        f"{day(on)} is outside the visit's window ({day(visit.window_start)} to {day(visit.window_end)}). "
        "Confirm to book it outside the window anyway."
    )


# --- book ----------------------------------------------------------------------------------------


def test_book_answers_the_visit_booked_at_the_time_inside_its_window(front_desk, review):
    when = at(review.window_end, 16)

    body = moved(front_desk, review, "book", {"scheduled_for": when.isoformat()})

    assert (body["id"], body["status"], body["sequence"]) == (str(review.uuid), "booked", 1)
    assert parse_datetime(body["scheduled_for"]) == when
    assert Visit.objects.get(pk=review.pk).status == B


def test_book_outside_the_window_is_a_400_until_confirmed(front_desk, review):
    on = review.window_end + days(1)
    when = at(on, 9).isoformat()

    refused(
        front_desk,
        review,
        "book",
        {"scheduled_for": when},
        refusal("scheduled_for", outside(on, review), "outside_window"),
    )
    refused(
        front_desk,
        review,
        "book",
        {"scheduled_for": when, "confirm_outside_window": False},
        refusal("scheduled_for", outside(on, review), "outside_window"),
    )
    body = moved(front_desk, review, "book", {"scheduled_for": when, "confirm_outside_window": True})

    assert body["status"] == "booked"
    assert parse_datetime(body["scheduled_for"]) == at(on, 9)


def test_book_reschedules_a_booked_visit_through_the_same_guards(nurse, review):
    moved(nurse, review, "book", {"scheduled_for": at(review.window_start, 9).isoformat()})
    early = review.window_start - days(2)

    refused(
        nurse,
        review,
        "book",
        {"scheduled_for": at(early).isoformat()},
        refusal("scheduled_for", outside(early, review), "outside_window"),
    )
    body = moved(nurse, review, "book", {"scheduled_for": at(review.window_start + days(3)).isoformat()})

    assert (body["status"], body["sequence"]) == ("booked", 2)


def test_book_before_the_treatment_is_refused_even_when_confirmed(clinician, review):
    before = today() - days(1)

    refused(
        clinician,
        review,
        "book",
        {"scheduled_for": at(before).isoformat(), "confirm_outside_window": True},
        refusal(
            "scheduled_for",
            f"This visit cannot be booked before {day(today())}, the day its follow-up starts.",
            "before_treatment",
        ),
    )


def test_book_needs_a_time_with_its_offset(front_desk, review):
    naive = front_desk.post(move_url(review, "book"), {"scheduled_for": "2031-01-01T09:00:00"}, format="json")

    assert (naive.status_code, list(naive.json())) == (400, ["scheduled_for"])
    assert Visit.objects.get(pk=review.pk).status == P


@pytest.mark.parametrize(
    ("move", "body", "field"),
    [
        ("book", {}, "non_field_errors"),
        ("book", {"confirm_outside_window": True}, "non_field_errors"),
        ("cancel", {}, "reason"),
        ("correct", {"reason": WHY}, "status"),
        ("correct", {"status": "booked"}, "reason"),
    ],
)
def test_a_move_s_required_fields_are_required(clinician, passed, move, body, field):
    # What each endpoint's schema marks required (VisitCancelIn, VisitCorrectIn; a slot or a time
    # for VisitBookIn): a body without it is a 400 on that very field, never a move made with a
    # default.
    if move == "correct":
        visit_move(visit=passed, to=C)
    before, history = row(passed), history_count(passed)

    response = clinician.post(move_url(passed, move), body, format="json")

    assert response.status_code == 400, response.content
    errors = response.json()
    errors.pop("error_codes", None)
    assert list(errors) == [field]
    assert (row(passed), history_count(passed)) == (before, history)


# --- unbook --------------------------------------------------------------------------------------


def test_unbook_answers_the_visit_planned_again_and_a_planned_one_is_a_400(front_desk, review):
    when = at(review.window_start + days(1), 10)
    moved(front_desk, review, "book", {"scheduled_for": when.isoformat()})

    body = moved(front_desk, review, "unbook")

    assert body["status"] == "planned"
    assert parse_datetime(body["scheduled_for"]) == when
    refused(
        front_desk,
        review,
        "unbook",
        None,
        refusal("status", "This visit is planned already.", "invalid_transition"),
    )


def test_a_move_that_asks_nothing_takes_no_body(front_desk, review):
    response = front_desk.post(move_url(review, "unbook"), {"status": "planned"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"status": ["Unknown field."]}


# --- complete --------------------------------------------------------------------------------------


def test_complete_a_visit_still_ahead_is_a_400(nurse, review):
    refused(
        nurse,
        review,
        "complete",
        None,
        refusal(
            "status",
            f"This visit is still ahead: it can be completed from {day(review.window_start)} on.",
            "still_ahead",
        ),
    )


def test_complete_on_the_visit_s_day_answers_it_completed(nurse, ada):
    # Tonight: on its day, before its hour.
    tonight = followups.visit_create(patient=ada, purpose="Review", scheduled_for=at(today(), 23, 30))

    body = moved(nurse, tonight, "complete")

    assert body["status"] == "completed"
    assert Visit.objects.get(pk=tonight.pk).status == C


def test_complete_a_passed_visit(front_desk, passed):
    assert moved(front_desk, passed, "complete")["status"] == "completed"


# --- missed ----------------------------------------------------------------------------------------


def test_missed_before_the_appointment_is_a_400(front_desk, ada):
    ahead = followups.visit_create(patient=ada, purpose="Review", scheduled_for=at(today() + days(2), 11))

    refused(
        front_desk,
        ahead,
        "missed",
        None,
        refusal(
            "status",
            f"The appointment at 11:00 on {day(today() + days(2))} has not passed yet.",
            "not_yet_passed",
        ),
    )


def test_missed_while_a_planned_visit_s_window_is_open_is_a_400(front_desk, review):
    refused(
        front_desk,
        review,
        "missed",
        None,
        refusal(
            "status",
            f"The visit can still take place until {day(review.window_end)}: "
            "it is missed only once its window has closed.",
            "not_yet_passed",
        ),
    )


def test_missed_after_the_appointment_answers_it_missed(front_desk, passed):
    body = moved(front_desk, passed, "missed")

    assert body["status"] == "missed"
    assert Visit.objects.get(pk=passed.pk).status == M


# --- cancel --------------------------------------------------------------------------------------


def test_cancel_with_a_reason_answers_it_cancelled_and_it_stays_cancelled(front_desk, clinician, review):
    body = moved(front_desk, review, "cancel", {"reason": "  The patient moved away. "})

    assert (body["status"], body["cancel_reason"]) == ("cancelled", "The patient moved away.")
    stays = refusal(
        "status", "A cancelled visit stays cancelled: book a new visit instead.", "invalid_transition"
    )
    refused(front_desk, review, "cancel", {"reason": "Again"}, stays)
    refused(
        front_desk,
        review,
        "book",
        {"scheduled_for": at(review.window_start).isoformat(), "confirm_outside_window": True},
        stays,
    )
    refused(clinician, review, "correct", {"status": "booked", "reason": WHY}, stays)


def test_cancel_with_a_blank_reason_is_a_400(front_desk, review):
    refused(front_desk, review, "cancel", {"reason": "   "}, {"reason": ["This field may not be blank."]})


def test_cancel_with_too_long_a_reason_is_a_400(front_desk, review):
    refused(
        front_desk,
        review,
        "cancel",
        {"reason": "x" * 201},
        {"reason": ["Ensure this field has no more than 200 characters."]},
    )


# --- correct -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.NURSE])
@pytest.mark.parametrize("wrong", [C, M])
def test_correct_answers_the_visit_booked_again_and_the_history_keeps_both(api_as, passed, role, wrong):
    visit_move(visit=passed, to=wrong)

    body = moved(api_as(role), passed, "correct", {"status": "booked", "reason": WHY})

    assert body["status"] == "booked"
    assert parse_datetime(body["scheduled_for"]) == passed.scheduled_for
    latest, before = Visit.history.filter(id=passed.pk).order_by("-history_date", "-history_id")[:2]
    assert (before.status, latest.status) == (wrong, B)
    assert latest.history_change_reason == WHY


@pytest.mark.parametrize("wrong", [C, M])
def test_the_front_desk_may_not_correct(front_desk, passed, wrong):
    visit_move(visit=passed, to=wrong)

    refused(
        front_desk,
        passed,
        "correct",
        {"status": "booked", "reason": WHY},
        refusal("status", "Only a clinician or a nurse corrects a visit's state.", "correction_not_allowed"),
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "booked", "reason": " "}, {"reason": ["This field may not be blank."]}),
        ({"status": "planned", "reason": WHY}, {"status": ['"planned" is not a valid choice.']}),
        (
            {"status": "booked", "reason": "x" * 101},
            {"reason": ["Ensure this field has no more than 100 characters."]},
        ),
    ],
)
def test_correct_needs_status_booked_and_a_reason(nurse, passed, body, expected):
    visit_move(visit=passed, to=C)

    refused(nurse, passed, "correct", body, expected)


def test_correct_refuses_a_visit_measured_at(clinician, passed):
    followups.assessment_record(
        patient=passed.patient, visit=passed, assessed_on=today() - days(2), spasms_per_day=3
    )
    assert Visit.objects.get(pk=passed.pk).status == C

    refused(
        clinician,
        passed,
        "correct",
        {"status": "booked", "reason": WHY},
        refusal(
            "status",
            "Measurements were recorded at this visit: retract them (or record them without the visit) "
            "before correcting it.",
            "measured_at_visit",
        ),
    )


def test_correct_refuses_a_missed_visit_that_was_rebooked(clinician, passed):
    visit_move(visit=passed, to=M)
    followups.visit_rebook(visit=passed, scheduled_for=at(today() + days(5)))

    refused(
        clinician,
        passed,
        "correct",
        {"status": "booked", "reason": WHY},
        refusal(
            "status",
            f"This missed visit was rebooked for {day(today() + days(5))}: change that visit instead.",
            "already_rebooked",
        ),
    )


def test_correct_keeps_a_reason_of_any_length_the_endpoint_takes(clinician, passed):
    # The endpoint takes up to 100 characters, and the history keeps the reason (it was a 500).
    visit_move(visit=passed, to=C)
    reason = "The nurse ticked the wrong visit; the patient was seen on the day as planned, all fine."
    assert 80 < len(reason) <= 100

    body = moved(clinician, passed, "correct", {"status": "booked", "reason": reason})

    assert body["status"] == "booked"
    assert reason in Visit.history.filter(id=passed.pk).latest().history_change_reason


@pytest.mark.parametrize("status", [P, B])
def test_correct_is_refused_for_a_visit_that_is_neither_completed_nor_missed(clinician, review, status):
    # A correction undoes a wrong completed or missed (DOMAIN.md 2); on a planned or booked visit
    # there is nothing to correct, and the endpoint must not book it instead.
    if status == B:
        visit_move(visit=review, to=B, scheduled_for=at(review.window_start, 9))

    response = clinician.post(move_url(review, "correct"), {"status": "booked", "reason": WHY}, format="json")

    assert response.status_code == 400, response.content
    assert response.json()["error_codes"] == {"status": ["invalid_transition"]}
    assert Visit.objects.get(pk=review.pk).status == status


def test_book_does_not_correct_a_completed_visit(front_desk, clinician, passed):
    # Booking a completed visit again is a correction: the book endpoint (which takes no reason)
    # never makes one.
    visit_move(visit=passed, to=C)
    body = {"scheduled_for": at(today() + days(3)).isoformat(), "confirm_outside_window": True}

    for client in (front_desk, clinician):
        response = client.post(move_url(passed, "book"), body, format="json")
        assert response.status_code == 400, response.content
    assert Visit.objects.get(pk=passed.pk).status == C


# --- PATCH goes through the same guards --------------------------------------------------------------


def test_patch_completed_on_a_visit_still_ahead_is_the_same_400(nurse, review):
    refused(
        nurse,
        review,
        "",
        {"status": "completed"},
        refusal(
            "status",
            f"This visit is still ahead: it can be completed from {day(review.window_start)} on.",
            "still_ahead",
        ),
        method="patch",
    )


def test_patch_missed_before_the_appointment_is_the_same_400(front_desk, ada):
    ahead = followups.visit_create(patient=ada, purpose="Review", scheduled_for=at(today() + days(2), 11))

    refused(
        front_desk,
        ahead,
        "",
        {"status": "missed"},
        refusal(
            "status",
            f"The appointment at 11:00 on {day(today() + days(2))} has not passed yet.",
            "not_yet_passed",
        ),
        method="patch",
    )


def test_patch_books_outside_the_window_only_when_confirmed(front_desk, review):
    on = review.window_start - days(1)
    change = {"scheduled_for": at(on).isoformat()}

    refused(
        front_desk,
        review,
        "",
        change,
        refusal("scheduled_for", outside(on, review), "outside_window"),
        method="patch",
    )
    refused(
        front_desk,
        review,
        "",
        {**change, "status": "booked"},
        refusal("scheduled_for", outside(on, review), "outside_window"),
        method="patch",
    )
    body = moved(front_desk, review, "", {**change, "confirm_outside_window": True}, method="patch")

    assert body["status"] == "booked"


def test_patch_never_books_a_protocol_visit_before_its_treatment(front_desk, review):
    refused(
        front_desk,
        review,
        "",
        {"scheduled_for": at(today() - days(3)).isoformat(), "confirm_outside_window": True},
        refusal(
            "scheduled_for",
            f"This visit cannot be booked before {day(today())}, the day its follow-up starts.",
            "before_treatment",
        ),
        method="patch",
    )


def test_patch_corrects_for_a_nurse_and_not_for_the_front_desk(nurse, front_desk, passed):
    visit_move(visit=passed, to=M)
    change = {"status": "booked", "reason": WHY}

    refused(
        front_desk,
        passed,
        "",
        change,
        refusal("status", "Only a clinician or a nurse corrects a visit's state.", "correction_not_allowed"),
        method="patch",
    )
    refused(
        nurse,
        passed,
        "",
        {"status": "booked"},
        refusal("reason", "Say why the visit is corrected.", "reason_required"),
        method="patch",
    )
    body = moved(nurse, passed, "", change, method="patch")

    assert body["status"] == "booked"
    assert Visit.history.filter(id=passed.pk).latest().history_change_reason == WHY


# --- If-Match, roles, unknown visits -----------------------------------------------------------------


def test_a_move_honours_if_match(front_desk, review):
    etag = front_desk.get(move_url(review))["ETag"]
    moved(front_desk, review, "book", {"scheduled_for": at(review.window_start, 9).isoformat()})
    before = row(review)

    stale = front_desk.post(move_url(review, "unbook"), {}, format="json", HTTP_IF_MATCH=etag)

    assert stale.status_code == 412
    assert row(review) == before
    current = front_desk.get(move_url(review))["ETag"]
    fresh = front_desk.post(move_url(review, "unbook"), {}, format="json", HTTP_IF_MATCH=current)
    assert fresh.status_code == 200, fresh.content
    assert fresh["ETag"] not in (etag, current)
    assert fresh.json()["status"] == "planned"


@pytest.mark.parametrize("move", MOVES)
def test_integration_read_makes_no_move(integration, passed, move):
    before = row(passed)

    response = integration.post(move_url(passed, move), {"reason": WHY}, format="json")

    assert response.status_code == 403
    assert row(passed) == before


@pytest.mark.parametrize("move", MOVES)
def test_a_move_of_an_unknown_visit_is_a_404(clinician, move):
    response = clinician.post(f"{API}visits/{uuid.uuid4()}/{move}/", {}, format="json")

    assert response.status_code == 404


@pytest.mark.parametrize("move", MOVES)
def test_a_move_is_a_post(clinician, passed, move):
    assert clinician.get(move_url(passed, move)).status_code == 405


@pytest.mark.parametrize("status", [None, P, X])
def test_patch_takes_a_correction_s_reason_only_with_status_booked(nurse, review, status):
    body = {"reason": WHY, **({"status": status} if status else {})}
    if status == X:
        body["cancel_reason"] = "The patient moved away."
    refused(
        nurse,
        review,
        "",
        body,
        {
            "reason": [
                "A reason here corrects a completed or missed visit: give it with status booked "
                "(a cancellation's reason is cancel_reason)."
            ]
        },
        method="patch",
    )


# --- booking into a clinic session's slot (DOMAIN.md section 12) ---------------------------------


@pytest.fixture
def review_slot(review) -> Slot:
    """A one-place slot of a review clinic on the first day of the review's window."""
    SessionTemplate.objects.all().delete()
    clinic = SessionTemplate.objects.create(
        label="Reviews",
        weekday=review.window_start.weekday(),
        starts_at=time(10),
        ends_at=time(10, 20),
        slot_minutes=20,
        valid_from=today(),
    )
    SessionTemplateKind.objects.create(template=clinic, visit_kind=codes_f.VisitKind.REVIEW)
    booking.sessions_generate()
    return Slot.objects.get(session__on=review.window_start)


def test_book_takes_a_slot_and_answers_the_visit_at_its_time(front_desk, review, review_slot):
    body = moved(front_desk, review, "book", {"slot": str(review_slot.uuid)})

    assert (body["status"], body["slot"], body["visit_kind"]) == ("booked", str(review_slot.uuid), "review")
    assert parse_datetime(body["scheduled_for"]) == review_slot.starts_at
    assert Slot.objects.get(pk=review_slot.pk).booked == 1


def test_a_full_slot_is_a_409_and_nothing_changes(front_desk, review, review_slot):
    Slot.objects.filter(pk=review_slot.pk).update(booked=1)
    before = row(review)

    response = front_desk.post(move_url(review, "book"), {"slot": str(review_slot.uuid)}, format="json")

    assert response.status_code == 409, response.content
    assert response.json() == {
        "slot": ["This slot has just been taken: choose another."],
        "error_codes": {"slot": ["slot_full"]},
    }
    assert row(review) == before


@pytest.mark.parametrize("body", [{}, "both"])
def test_book_wants_a_slot_or_a_time_one_of_the_two(front_desk, review, review_slot, body):
    if body == "both":
        body = {"slot": str(review_slot.uuid), "scheduled_for": review_slot.starts_at.isoformat()}
    response = front_desk.post(move_url(review, "book"), body, format="json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Give a slot or a scheduled_for, one of the two."]}
    assert Slot.objects.get(pk=review_slot.pk).booked == 0


def test_slot_suggestions_list_the_free_slots_of_the_window_for_the_front_desk(
    front_desk, review, review_slot
):
    response = front_desk.get(move_url(review, "slot-suggestions"))

    assert response.status_code == 200, response.content
    rows = response.json()
    inside = Slot.objects.filter(session__on__range=(review.window_start, review.window_end))
    assert [row["id"] for row in rows] == [str(slot.uuid) for slot in inside.order_by("starts_at")]
    assert rows[0] == {
        "id": str(review_slot.uuid),
        "session": str(review_slot.session.uuid),
        "label": "Reviews",
        "starts_at": rows[0]["starts_at"],
        "capacity": 1,
        "booked": 0,
        "free": 1,
        "inside_window": True,
    }
    assert parse_datetime(rows[0]["starts_at"]) == review_slot.starts_at
    for slot in inside:
        Slot.objects.filter(pk=slot.pk).update(booked=slot.capacity)
    # Full inside: the next review clinic after the window is offered, marked as outside it.
    after = front_desk.get(move_url(review, "slot-suggestions")).json()
    assert after and not any(row["inside_window"] for row in after)
    assert all(parse_datetime(row["starts_at"]).date() > review.window_end for row in after)
