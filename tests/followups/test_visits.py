"""The visit state machine through ``visit_move``, rebooking a missed visit, and the nightly close of
windows (visits_mark_missed_due). The dated guards, corrections and their codes are in
test_visit_moves.py; here every move of the table, allowed or not."""

from datetime import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from clinic.roles import Role
from followups import services as followups
from followups.codes import FlagCode, VisitSource
from followups.models import Visit
from followups.selectors import worklist_overdue
from followups.visit_moves import visit_move
from followups.visit_states import B, C, M, P, X
from tests.followups.conftest import (
    at_clinic,
    book,
    cancel,
    complete,
    days,
    flags_of,
    live,
    mark_missed,
    record_toxin,
    refused,
    unbook,
)

WHY = "Marked by mistake: the patient came."


@pytest.fixture
def session(recent_diagnosis, today):
    """A toxin session of today: a planned review at day 21 and a re-injection visit at day 84."""
    return record_toxin(recent_diagnosis, today)


@pytest.fixture
def visit(session):
    return live(session)[0]


def book_on(visit, *, day_offset=0, hour=11, **kwargs):
    """Book the visit on its protocol day (or ``day_offset`` days from it)."""
    start = visit.anchor_on + days(visit.protocol_day) if visit.anchor_on else visit.window_start
    return book(visit, at_clinic(start + days(day_offset), hour), **kwargs)


ACTIONS = {
    "book": lambda visit: book_on(visit, hour=10),
    "unbook": unbook,
    "complete": complete,
    "miss": mark_missed,
    "cancel": cancel,
    "correct": lambda visit: visit_move(visit=visit, to=B, role=Role.CLINICIAN, reason=WHY),
}
TARGET = {"book": B, "unbook": P, "complete": C, "miss": M, "cancel": X, "correct": B}
# The visit state machine (followups/visit_states.py), written out once more by hand. A correction
# is the move back to booked of a completed or missed visit; on a planned or booked visit the same
# move is a booking, so "correct" is tried on the states it corrects (and on a cancelled one).
ALLOWED = {
    P: {"book", "complete", "miss", "cancel"},
    B: {"book", "unbook", "complete", "miss", "cancel"},
    M: {"correct"},
    C: {"correct"},
    X: set(),
}
INVALID = "invalid_transition"
# Booking a completed or missed visit is a correction: refused without a clinician's or nurse's
# role and a reason, and at another time (a correction keeps the visit's time).
AS_CORRECTION = {
    "status": [("Only a clinician or a nurse corrects a visit's state.", "correction_not_allowed")],
    "reason": [("Say why the visit is corrected.", "reason_required")],
    "scheduled_for": [
        ("A correction keeps the visit's time: correct it first, then reschedule it.", INVALID)
    ],
}
REFUSALS = {
    (P, "unbook"): {"status": [("This visit is planned already.", INVALID)]},
    (M, "book"): AS_CORRECTION,
    (M, "unbook"): {"status": [("A missed visit can become: booked; not planned.", INVALID)]},
    (M, "complete"): {"status": [("A missed visit can become: booked; not completed.", INVALID)]},
    (M, "miss"): {"status": [("This visit is missed already.", INVALID)]},
    (M, "cancel"): {"status": [("A missed visit can become: booked; not cancelled.", INVALID)]},
    (C, "book"): AS_CORRECTION,
    (C, "unbook"): {"status": [("A completed visit can become: booked; not planned.", INVALID)]},
    (C, "complete"): {"status": [("This visit is completed already.", INVALID)]},
    (C, "miss"): {"status": [("A completed visit can become: booked; not missed.", INVALID)]},
    (C, "cancel"): {"status": [("A completed visit can become: booked; not cancelled.", INVALID)]},
    **{
        (X, action): {"status": [("A cancelled visit stays cancelled: book a new visit instead.", INVALID)]}
        for action in ACTIONS
    },
}


def visit_in(visit, status):
    """Bring a planned visit into ``status`` through visit_move."""
    path = {P: [], B: ["book"], C: ["complete"], M: ["miss"], X: ["cancel"]}[status]
    for action in path:
        ACTIONS[action](visit)
    visit.refresh_from_db()
    assert visit.status == status
    return visit


CASES = [
    (status, action)
    for status in (P, B, M, C, X)
    for action in ACTIONS
    if action != "correct" or status in (M, C, X)
]


def test_the_table_of_refusals_covers_every_forbidden_move():
    forbidden = {(status, action) for status, action in CASES if action not in ALLOWED[status]}
    assert forbidden == set(REFUSALS)


@pytest.mark.parametrize(("status", "action"), [case for case in CASES if case[1] in ALLOWED[case[0]]])
def test_an_allowed_move_changes_the_status_and_keeps_the_history(visit, status, action):
    visit = visit_in(visit, status)
    history = visit.history.count()

    moved = ACTIONS[action](visit)

    stored = Visit.objects.get(pk=visit.pk)
    assert stored.status == moved.status == TARGET[action]
    assert visit.history.count() == history + 1
    if action == "cancel":
        assert stored.cancel_reason == "The patient moved away."


@pytest.mark.parametrize(("status", "action"), sorted(REFUSALS))
def test_a_forbidden_move_is_refused_and_changes_nothing(visit, status, action):
    visit = visit_in(visit, status)
    before = Visit.objects.filter(pk=visit.pk).values().get()

    refused(lambda: ACTIONS[action](visit), REFUSALS[(status, action)])

    assert Visit.objects.filter(pk=visit.pk).values().get() == before


def test_booking_at_the_planned_time_keeps_the_sequence_and_each_change_of_time_increments_it(visit):
    planned_time = visit.scheduled_for

    booked = book(visit, planned_time)
    assert (booked.status, booked.sequence) == (B, 0)

    moved = book(visit, at_clinic(visit.window_start + days(2), 15))
    assert (moved.status, moved.sequence) == (B, 1)
    moved_again = book(visit, at_clinic(visit.window_end, 8))
    assert moved_again.sequence == 2
    same_time = book(visit, at_clinic(visit.window_end, 8))
    assert same_time.sequence == 2

    stored = Visit.objects.get(pk=visit.pk)
    assert (stored.scheduled_for, stored.sequence) == (at_clinic(visit.window_end, 8), 2)


def test_booking_a_planned_visit_at_another_time_counts_as_a_change_of_time(visit):
    booked = book_on(visit, day_offset=1)

    assert booked.sequence == 1
    assert Visit.objects.get(pk=visit.pk).scheduled_for == at_clinic(visit.window_start + days(8), 11)


def test_booking_without_a_time_books_the_planned_time(visit):
    booked = visit_move(visit=visit, to=B)

    stored = Visit.objects.get(pk=visit.pk)
    assert (booked.status, stored.status, stored.scheduled_for, stored.sequence) == (
        B,
        B,
        visit.scheduled_for,
        0,
    )


def test_unbooking_makes_the_visit_planned_again_at_the_time_agreed(visit):
    booked = book_on(visit, day_offset=2)

    unbooked = unbook(booked)

    stored = Visit.objects.get(pk=visit.pk)
    assert (unbooked.status, stored.status, stored.scheduled_for) == (P, P, booked.scheduled_for)


def test_a_time_without_an_offset_is_refused_and_a_move_the_state_machine_forbids_says_only_that(visit):
    naive = datetime(2030, 1, 1, 9)

    refused(
        lambda: book(visit, naive),
        {"scheduled_for": [("Give a date and time with its UTC offset.", "invalid_time")]},
    )

    # v2: a move that cannot be made at all is refused for that alone; its time is not judged.
    cancel(visit)
    refused(
        lambda: book(visit, naive),
        {"status": [("A cancelled visit stays cancelled: book a new visit instead.", INVALID)]},
    )


def test_a_refused_correction_reports_everything_wrong_with_it_at_once(visit):
    complete(visit)

    refused(
        lambda: visit_move(visit=visit, to=B, role=Role.FRONT_DESK, reason="  "),
        {
            "status": [("Only a clinician or a nurse corrects a visit's state.", "correction_not_allowed")],
            "reason": [("Say why the visit is corrected.", "reason_required")],
        },
    )


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_a_cancellation_says_why(visit, reason):
    refused(
        lambda: visit_move(visit=visit, to=X, reason=reason),
        {"cancel_reason": [("Say why the visit is cancelled.", "reason_required")]},
    )

    assert Visit.objects.get(pk=visit.pk).status == P


def test_a_service_works_from_a_stale_copy_of_the_visit(visit):
    stale = Visit.objects.get(pk=visit.pk)
    complete(visit)

    refused(
        lambda: cancel(stale, "Too late"),
        {"status": [("A completed visit can become: booked; not cancelled.", INVALID)]},
    )


# --- rebooking a missed visit ----------------------------------------------------------------------


def test_rebooking_a_missed_visit_books_a_linked_visit_and_takes_it_off_the_overdue_list(visit, today):
    patient = visit.patient
    mark_missed(visit)
    assert [v.pk for v in worklist_overdue()] == [visit.pk]
    assert [f.subject for f in flags_of(patient, FlagCode.OVERDUE_FOLLOW_UP)] == [str(visit.uuid)]

    when = at_clinic(today + days(3), 16)
    rebooked = followups.visit_rebook(visit=visit, scheduled_for=when)

    rebooked.refresh_from_db()
    assert (rebooked.status, rebooked.source, rebooked.scheduled_for) == (B, VisitSource.MANUAL, when)
    assert (rebooked.window_start, rebooked.window_end) == (today + days(3), today + days(3))
    assert (rebooked.treatment_id, rebooked.diagnosis_id, rebooked.purpose) == (
        visit.treatment_id,
        visit.diagnosis_id,
        visit.purpose,
    )
    assert rebooked.rebooked_from_id == visit.pk
    assert Visit.objects.get(pk=visit.pk).status == M
    assert list(worklist_overdue()) == []
    assert flags_of(patient, FlagCode.OVERDUE_FOLLOW_UP) == []


def test_a_missed_visit_is_rebooked_once(visit, today):
    mark_missed(visit)
    followups.visit_rebook(visit=visit, scheduled_for=at_clinic(today + days(3)))

    with pytest.raises(ValidationError) as error:
        followups.visit_rebook(visit=visit, scheduled_for=at_clinic(today + days(4)))

    assert error.value.message_dict == {"status": ["This missed visit was rebooked already."]}
    assert Visit.objects.filter(rebooked_from=visit).count() == 1


@pytest.mark.parametrize("status", [P, B, C, X])
def test_only_a_missed_visit_is_rebooked(visit, today, status):
    visit = visit_in(visit, status)
    count = Visit.objects.count()

    with pytest.raises(ValidationError) as error:
        followups.visit_rebook(visit=visit, scheduled_for=at_clinic(today + days(3)))

    assert error.value.message_dict == {
        "status": ["Only a missed visit is rebooked; book or reschedule this one."]
    }
    assert Visit.objects.count() == count


def test_a_missed_visit_of_an_archived_patient_is_not_rebooked(visit, today):
    from patients import services as record

    mark_missed(visit)
    record.patient_archive(patient=visit.patient)
    count = Visit.objects.count()

    with pytest.raises(ValidationError) as error:
        followups.visit_rebook(visit=visit, scheduled_for=at_clinic(today + days(3)))

    assert error.value.message_dict == {"patient": ["This patient is archived."]}
    assert Visit.objects.count() == count


# --- the nightly close of windows --------------------------------------------------------------------


def test_a_planned_visit_is_missed_the_day_after_its_window_closed(session, today):
    review, reinjection = live(session)
    assert review.window_end == today + days(28)

    assert followups.visits_mark_missed_due(today=today + days(28)) == 0
    assert Visit.objects.get(pk=review.pk).status == P

    assert followups.visits_mark_missed_due(today=today + days(29)) == 1
    assert Visit.objects.get(pk=review.pk).status == M
    assert Visit.objects.get(pk=reinjection.pk).status == P
    # Once missed, it is not counted again.
    assert followups.visits_mark_missed_due(today=today + days(29)) == 0


def test_a_booked_visit_is_missed_once_its_window_closed_and_its_appointment_passed(session, today):
    review, reinjection = live(session)
    book_on(review, day_offset=-1)  # inside its window (today + 20)
    # The window ends on day 105: a later appointment is booked only when the caller confirms it.
    book(reinjection, at_clinic(today + days(110)), confirm_outside_window=True)

    assert followups.visits_mark_missed_due(today=today + days(29)) == 1
    assert Visit.objects.get(pk=review.pk).status == M

    # The re-injection visit's window closed on day 105, but the appointment is still ahead.
    assert followups.visits_mark_missed_due(today=today + days(106)) == 0
    assert followups.visits_mark_missed_due(today=today + days(110)) == 0
    assert Visit.objects.get(pk=reinjection.pk).status == B
    assert followups.visits_mark_missed_due(today=today + days(111)) == 1
    assert Visit.objects.get(pk=reinjection.pk).status == M


def test_marking_a_visit_missed_at_night_is_kept_in_its_history(session, today):
    review, _ = live(session)
    history = review.history.count()

    followups.visits_mark_missed_due(today=today + days(29))

    latest = review.history.latest()
    assert review.history.count() == history + 1
    assert (latest.status, latest.history_change_reason) == (M, "window closed")


def test_completed_and_cancelled_visits_are_never_marked_missed(session, today):
    review, reinjection = live(session)
    complete(review)
    cancel(reinjection, "Stopping injections")

    assert followups.visits_mark_missed_due(today=today + days(400)) == 0
    assert {v.status for v in Visit.objects.filter(treatment=session)} == {C, X}


def test_a_manual_visit_in_the_past_is_missed_too(patient, today):
    manual = followups.visit_create(
        patient=patient, purpose="Phone check", scheduled_for=at_clinic(today - days(2))
    )
    assert (manual.window_start, manual.window_end, manual.status) == (today - days(2), today - days(2), B)

    assert followups.visits_mark_missed_due(today=today) == 1

    assert Visit.objects.get(pk=manual.pk).status == M
    assert [f.subject for f in flags_of(patient, FlagCode.OVERDUE_FOLLOW_UP)] == [str(manual.uuid)]


def test_closing_windows_counts_every_patient_and_handles_each_patient_once(make_patient, today):
    patients = [make_patient()[0] for _ in range(2)]
    for patient in patients:
        for offset in (2, 3, 4):
            followups.visit_create(
                patient=patient, purpose=f"Check {offset}", scheduled_for=at_clinic(today - days(offset))
            )
    lone, _ = make_patient()
    followups.visit_create(patient=lone, purpose="Check", scheduled_for=at_clinic(today - days(2)))

    with CaptureQueriesContext(connection) as queries:
        assert followups.visits_mark_missed_due(today=today) == 7

    assert Visit.objects.filter(status=M).count() == 7
    # Each patient is locked, marked and has their flags refreshed once, not once per visit.
    locks = [
        q["sql"]
        for q in queries.captured_queries
        if 'FROM "patients_patient"' in q["sql"] and "FOR UPDATE" in q["sql"]
    ]
    assert len(locks) == 3
