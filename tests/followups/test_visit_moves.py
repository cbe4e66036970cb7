"""The guards of ``visit_move`` (DOMAIN.md section 2, v2), each at its boundary and with its code.

The clock of a dated guard is the move's ``now``: each test sets it from the visit's own dates, so
"the day before" and "the day of" are exact whatever day the suite runs. Every refusal is checked
through ``refused``: exactly these messages and codes, and nothing written.
"""

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.utils import formats, timezone

from clinic.roles import Role, group_for
from followups import services as followups
from followups.codes import AssessmentStatus, VisitMoveError
from followups.models import Assessment, Visit
from followups.visit_moves import (
    CANCEL_REASON_MAX_LENGTH,
    CORRECTION_REASON_MAX_LENGTH,
    visit_move,
    visit_move_errors,
    visits_move_bulk,
)
from followups.visit_states import B, C, M, P, X
from patients import services as record
from tests.followups.conftest import (
    at_clinic,
    book,
    cancel,
    complete,
    days,
    live,
    mark_missed,
    record_mvd,
    record_toxin,
    refused,
    unbook,
)

E = VisitMoveError
WHY = "Marked by mistake: the patient came."


def day(on) -> str:
    return formats.date_format(on, "j F Y")


def outside(on, visit) -> str:
    return (
        f"{day(on)} is outside the visit's window ({day(visit.window_start)} to {day(visit.window_end)}). "
        "Confirm to book it outside the window anyway."
    )


def still_ahead(on) -> str:
    return f"This visit is still ahead: it can be completed from {day(on)} on."


def clinic_time(on, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(on, time(hour, minute), tzinfo=ZoneInfo(settings.CLINIC_TIME_ZONE))


def minute_before(on) -> datetime:
    """23:59 on the day before ``on`` at the clinic."""
    return clinic_time(on - timedelta(days=1), 23, 59)


def stored(visit) -> Visit:
    return Visit.objects.get(pk=visit.pk)


@pytest.fixture
def session(recent_diagnosis, today):
    """A toxin session of today: a review due on day 21 (window days 14 to 28), a re-injection visit
    due on day 84 (window days 84 to 105)."""
    return record_toxin(recent_diagnosis, today)


@pytest.fixture
def review(session):
    return live(session)[0]


@pytest.fixture
def staff(db):
    """``staff(role)``: a staff user in the role's group (None: a user in no role group)."""

    def make(role: Role | None):
        user = get_user_model().objects.create_user(
            username=f"{role.value if role else 'nobody'}-{get_user_model().objects.count()}",
            password="pw",
            is_staff=True,
        )
        if role is not None:
            user.groups.add(group_for(role))
        return user

    return make


def test_the_fixture_visit_is_a_planned_review_with_its_window(review, today):
    assert (review.status, review.window_start, review.window_end) == (P, today + days(14), today + days(28))
    assert (review.anchor_on, review.protocol_day) == (today, 21)


# --- booking -----------------------------------------------------------------------------------


@pytest.mark.parametrize("edge", ["window_start", "window_end"])
def test_a_visit_is_booked_on_either_edge_of_its_window(review, edge):
    when = at_clinic(getattr(review, edge), 8)

    booked = book(review, when)

    assert (booked.status, stored(review).status, stored(review).scheduled_for) == (B, B, when)


@pytest.mark.parametrize("offset", [-1, +1])
def test_a_time_outside_the_window_is_refused_unless_confirmed(review, offset):
    on = review.window_start - days(1) if offset < 0 else review.window_end + days(1)
    when = at_clinic(on, 10)

    refused(lambda: book(review, when), {"scheduled_for": [(outside(on, review), E.OUTSIDE_WINDOW)]})
    assert stored(review).status == P

    booked = book(review, when, confirm_outside_window=True)

    assert (booked.status, stored(review).scheduled_for, stored(review).sequence) == (B, when, 1)


def test_the_window_is_judged_on_the_appointment_s_day_at_the_clinic(review):
    # 23:30 on the window's last day at the clinic is already the next day in Auckland, and 00:30 on
    # the day after at the clinic is still the last day in UTC: the clinic's day counts.
    last_evening = clinic_time(review.window_end, 23, 30)
    day_after = clinic_time(review.window_end + days(1), 0, 30)

    refused(
        lambda: book(review, day_after.astimezone(UTC)),
        {"scheduled_for": [(outside(review.window_end + days(1), review), E.OUTSIDE_WINDOW)]},
    )
    booked = book(review, last_evening.astimezone(ZoneInfo("Pacific/Auckland")))

    assert (booked.status, stored(review).scheduled_for) == (B, last_evening)


def test_a_booked_visit_is_rescheduled_inside_its_window_and_outside_only_when_confirmed(review):
    book(review, at_clinic(review.window_start, 9))
    inside = at_clinic(review.window_end, 15)

    moved = book(review, inside)
    assert (moved.status, moved.scheduled_for, moved.sequence) == (B, inside, 2)

    later = review.window_end + days(3)
    refused(
        lambda: book(review, at_clinic(later)),
        {"scheduled_for": [(outside(later, review), E.OUTSIDE_WINDOW)]},
    )
    assert (stored(review).scheduled_for, stored(review).sequence) == (inside, 2)

    moved = book(review, at_clinic(later), confirm_outside_window=True)
    assert (moved.status, moved.scheduled_for, moved.sequence) == (B, at_clinic(later), 3)


def test_a_protocol_visit_is_never_booked_before_its_treatment_even_when_confirmed(recent_diagnosis, today):
    surgery = record_mvd(recent_diagnosis, today)
    day_10 = live(surgery)[0]
    assert (day_10.protocol_day, day_10.anchor_on, day_10.window_start) == (10, today, today + days(7))
    before = f"This visit cannot be booked before {day(today)}, the day its follow-up starts."

    for confirm in (False, True):
        refused(
            lambda confirm=confirm: book(
                day_10, at_clinic(today - days(1), 16), confirm_outside_window=confirm
            ),
            {"scheduled_for": [(before, E.BEFORE_TREATMENT)]},
        )
    # The last minute of the day before, not a minute after midnight.
    refused(
        lambda: book(day_10, minute_before(today), confirm_outside_window=True),
        {"scheduled_for": [(before, E.BEFORE_TREATMENT)]},
    )

    booked = book(day_10, clinic_time(today, 0, 1), confirm_outside_window=True)
    assert (booked.status, stored(day_10).status) == (B, B)


def test_a_booked_protocol_visit_is_not_rescheduled_before_its_treatment(review, today):
    book(review, at_clinic(review.window_start))
    before = f"This visit cannot be booked before {day(today)}, the day its follow-up starts."

    refused(
        lambda: book(review, at_clinic(today - days(2)), confirm_outside_window=True),
        {"scheduled_for": [(before, E.BEFORE_TREATMENT)]},
    )
    assert stored(review).scheduled_for == at_clinic(review.window_start)


def test_a_manual_visit_is_booked_outside_its_window_when_confirmed(patient, today):
    manual = followups.visit_create(
        patient=patient,
        purpose="Phone check",
        scheduled_for=at_clinic(today + days(5)),
        status=P,
    )

    refused(
        lambda: book(manual, at_clinic(today + days(2))),
        {"scheduled_for": [(outside(today + days(2), manual), E.OUTSIDE_WINDOW)]},
    )
    assert book(manual, at_clinic(today + days(2)), confirm_outside_window=True).status == B


@pytest.mark.parametrize(
    ("when", "message", "code"),
    [
        (datetime(2030, 1, 1, 9), "Give a date and time with its UTC offset.", E.INVALID_TIME),
        ("2030-01-01T09:00:00+01:00", "Give a date and time with its UTC offset.", E.INVALID_TIME),
        (
            at_clinic(timezone.localdate() + days(3660)),
            "This is more than ten years ahead.",
            E.TOO_FAR_AHEAD,
        ),
    ],
)
def test_a_booking_needs_an_aware_time_within_ten_years(review, when, message, code):
    refused(lambda: book(review, when, confirm_outside_window=True), {"scheduled_for": [(message, code)]})


# --- giving up a booking ---------------------------------------------------------------------------


def test_unbooking_makes_a_booked_visit_planned_at_its_time_and_a_planned_one_cannot_be(review):
    when = at_clinic(review.window_start + days(2), 14)
    book(review, when)

    unbooked = unbook(review)

    assert (unbooked.status, stored(review).status, stored(review).scheduled_for) == (P, P, when)
    refused(lambda: unbook(review), {"status": [("This visit is planned already.", E.INVALID_TRANSITION)]})


# --- completing --------------------------------------------------------------------------------------


def test_a_planned_visit_is_completed_from_its_window_start(review):
    first_day = review.window_start

    refused(
        lambda: complete(review, now=minute_before(first_day)),
        {"status": [(still_ahead(first_day), E.STILL_AHEAD)]},
    )
    assert stored(review).status == P

    done = complete(review, now=clinic_time(first_day, 0, 1))

    assert (done.status, stored(review).status) == (C, C)


def test_a_booked_visit_is_completed_from_its_appointment_s_day_not_its_window_start(review):
    appointment = review.window_start + days(5)
    book(review, at_clinic(appointment, 15))

    # The window opened days ago, but the appointment is tomorrow.
    refused(
        lambda: complete(review, now=minute_before(appointment)),
        {"status": [(still_ahead(appointment), E.STILL_AHEAD)]},
    )
    assert stored(review).status == B

    # On the day, even before the hour of the appointment.
    done = complete(review, now=at_clinic(appointment, 8))

    assert done.status == C


def test_a_booked_visit_s_day_is_its_appointment_s_day_at_the_clinic(review):
    # Just after midnight at the clinic is still the day before in UTC: the clinic's day counts.
    appointment = review.window_start + days(3)
    book(review, clinic_time(appointment, 0, 30))

    refused(
        lambda: complete(review, now=minute_before(appointment)),
        {"status": [(still_ahead(appointment), E.STILL_AHEAD)]},
    )
    assert complete(review, now=clinic_time(appointment, 0, 40)).status == C


def test_a_booked_visit_before_its_window_is_completed_on_its_appointment_s_day(review):
    early = review.window_start - days(4)
    book(review, at_clinic(early, 10), confirm_outside_window=True)

    assert complete(review, now=at_clinic(early, 9)).status == C


# --- missed ------------------------------------------------------------------------------------------


def test_a_booked_visit_is_missed_only_after_its_appointment(review):
    when = at_clinic(review.window_start + days(2), 10)
    book(review, when)
    local = timezone.localtime(when)
    message = f"The appointment at {local:%H:%M} on {day(local.date())} has not passed yet."

    refused(
        lambda: mark_missed(review, now=when - timedelta(minutes=1)),
        {"status": [(message, E.NOT_YET_PASSED)]},
    )
    assert stored(review).status == B

    # After its time, even while its window is still open.
    missed = mark_missed(review, now=when + timedelta(minutes=1))

    assert (missed.status, stored(review).status) == (M, M)


def test_a_planned_visit_is_missed_only_once_its_window_has_closed(review):
    last_day = review.window_end
    message = (
        f"The visit can still take place until {day(last_day)}: it is missed only once its window has closed."
    )

    refused(
        lambda: mark_missed(review, now=clinic_time(last_day, 23, 59)),
        {"status": [(message, E.NOT_YET_PASSED)]},
    )
    assert stored(review).status == P

    missed = mark_missed(review, now=clinic_time(last_day + days(1), 0, 1))

    assert missed.status == M


# --- cancelling ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [P, B])
def test_a_cancellation_needs_a_reason_and_keeps_it(review, status):
    if status == B:
        book(review, at_clinic(review.window_start))
    for reason in ("", "  ", None):
        refused(
            lambda reason=reason: visit_move(visit=review, to=X, reason=reason),
            {"cancel_reason": [("Say why the visit is cancelled.", E.REASON_REQUIRED)]},
        )

    cancelled = cancel(review, "  The patient moved away. ")

    assert (stored(review).status, stored(review).cancel_reason) == (X, "The patient moved away.")
    assert cancelled.status == X


def test_a_cancellation_reason_is_kept_short(review):
    refused(
        lambda: cancel(review, "x" * (CANCEL_REASON_MAX_LENGTH + 1)),
        {"cancel_reason": [("Keep the reason to 200 characters.", E.REASON_TOO_LONG)]},
    )
    assert cancel(review, "x" * CANCEL_REASON_MAX_LENGTH).cancel_reason == "x" * CANCEL_REASON_MAX_LENGTH


def test_a_cancelled_visit_stays_cancelled_even_for_a_clinician_with_a_reason(review, staff):
    cancel(review)
    clinician = staff(Role.CLINICIAN)
    stays = [("A cancelled visit stays cancelled: book a new visit instead.", E.INVALID_TRANSITION)]

    for to in (P, B, C, M, X):
        refused(
            lambda to=to: visit_move(
                visit=review,
                to=to,
                by=clinician,
                reason=WHY,
                scheduled_for=at_clinic(review.window_start),
                now=at_clinic(review.window_end + days(30)),
            ),
            {"status": stays},
        )


# --- corrections -----------------------------------------------------------------------------------


@pytest.fixture
def passed_visit(patient, today):
    """A visit booked by hand for two days ago: completed or missed with the real clock."""
    return followups.visit_create(patient=patient, purpose="Review", scheduled_for=at_clinic(today - days(2)))


def history_of(visit) -> list[tuple[str, str | None]]:
    """The visit's history, oldest first: (status, reason of the change)."""
    return [
        (row.status, row.history_change_reason)
        for row in visit.history.order_by("history_date", "history_id")
    ]


@pytest.mark.parametrize("role", [Role.CLINICIAN, Role.NURSE])
@pytest.mark.parametrize("wrong", [C, M])
def test_a_clinician_or_nurse_corrects_a_completed_or_missed_visit_back_to_booked(
    passed_visit, staff, role, wrong
):
    visit_move(visit=passed_visit, to=wrong)
    before = history_of(passed_visit)

    corrected = visit_move(visit=passed_visit, to=B, by=staff(role), reason=f"  {WHY}  ")

    now = stored(passed_visit)
    assert (corrected.status, now.status) == (B, B)
    # Back to booked at its time: a correction is not a reschedule.
    assert (now.scheduled_for, now.sequence) == (passed_visit.scheduled_for, passed_visit.sequence)
    # The history keeps both states, and why it was corrected.
    assert history_of(passed_visit) == [*before, (B, WHY)]
    assert before[-1][0] == wrong


def test_a_corrected_visit_moves_on_as_a_booked_one(passed_visit, staff):
    mark_missed(passed_visit)
    visit_move(visit=passed_visit, to=B, by=staff(Role.NURSE), reason=WHY)

    complete(passed_visit)

    assert [status for status, _ in history_of(passed_visit)] == [B, M, B, C]


def test_a_superuser_corrects_as_a_clinician(passed_visit):
    admin = get_user_model().objects.create_superuser(username="root", password="pw")
    complete(passed_visit)

    assert visit_move(visit=passed_visit, to=B, by=admin, reason=WHY).status == B


@pytest.mark.parametrize("who", [Role.FRONT_DESK, Role.INTEGRATION_READ, None, "system"])
@pytest.mark.parametrize("wrong", [C, M])
def test_only_a_clinician_or_nurse_corrects(passed_visit, staff, who, wrong):
    visit_move(visit=passed_visit, to=wrong)
    by = None if who == "system" else staff(who)

    refused(
        lambda: visit_move(visit=passed_visit, to=B, by=by, reason=WHY),
        {"status": [("Only a clinician or a nurse corrects a visit's state.", E.CORRECTION_NOT_ALLOWED)]},
    )
    assert stored(passed_visit).status == wrong


def test_a_front_desk_role_given_for_the_caller_is_refused_too(passed_visit):
    complete(passed_visit)

    refused(
        lambda: visit_move(visit=passed_visit, to=B, role=Role.FRONT_DESK, reason=WHY),
        {"status": [("Only a clinician or a nurse corrects a visit's state.", E.CORRECTION_NOT_ALLOWED)]},
    )


@pytest.mark.parametrize("wrong", [C, M])
def test_a_correction_says_why(passed_visit, staff, wrong):
    visit_move(visit=passed_visit, to=wrong)
    nurse = staff(Role.NURSE)

    for reason in ("", "   ", None):
        refused(
            lambda reason=reason: visit_move(visit=passed_visit, to=B, by=nurse, reason=reason),
            {"reason": [("Say why the visit is corrected.", E.REASON_REQUIRED)]},
        )
    refused(
        lambda: visit_move(
            visit=passed_visit, to=B, by=nurse, reason="x" * (CORRECTION_REASON_MAX_LENGTH + 1)
        ),
        {"reason": [("Keep the reason to 100 characters.", E.REASON_TOO_LONG)]},
    )
    assert stored(passed_visit).status == wrong


def test_a_correction_reason_of_the_longest_length_allowed_is_kept_in_the_history(passed_visit, staff):
    # The service takes reasons up to CORRECTION_REASON_MAX_LENGTH characters, kept whole in the history.
    complete(passed_visit)
    reason = "r" * CORRECTION_REASON_MAX_LENGTH

    visit_move(visit=passed_visit, to=B, by=staff(Role.CLINICIAN), reason=reason)

    assert stored(passed_visit).status == B
    assert passed_visit.history.latest().history_change_reason == reason


def test_a_visit_with_measurements_recorded_at_it_is_not_corrected(passed_visit, staff, today):
    assessment = followups.assessment_record(
        patient=passed_visit.patient, visit=passed_visit, assessed_on=today - days(2), spasms_per_day=4
    )
    assert stored(passed_visit).status == C
    clinician = staff(Role.CLINICIAN)
    message = (
        "Measurements were recorded at this visit: retract them (or record them without the visit) "
        "before correcting it."
    )

    refused(
        lambda: visit_move(visit=passed_visit, to=B, by=clinician, reason=WHY),
        {"status": [(message, E.MEASURED_AT_VISIT)]},
    )

    followups.assessment_retract(assessment=assessment)
    assert Assessment.objects.get(pk=assessment.pk).status == AssessmentStatus.ENTERED_IN_ERROR
    assert visit_move(visit=passed_visit, to=B, by=clinician, reason=WHY).status == B


def test_a_missed_visit_that_was_rebooked_is_not_corrected(passed_visit, staff, today):
    mark_missed(passed_visit)
    rebooked_on = today + days(4)
    followups.visit_rebook(visit=passed_visit, scheduled_for=at_clinic(rebooked_on))

    refused(
        lambda: visit_move(visit=passed_visit, to=B, by=staff(Role.CLINICIAN), reason=WHY),
        {
            "status": [
                (
                    f"This missed visit was rebooked for {day(rebooked_on)}: change that visit instead.",
                    E.ALREADY_REBOOKED,
                )
            ]
        },
    )


def test_a_refused_correction_names_every_reason_at_once(passed_visit, staff):
    mark_missed(passed_visit)
    followups.visit_rebook(visit=passed_visit, scheduled_for=at_clinic(timezone.localdate() + days(4)))

    error = refused(
        lambda: visit_move(visit=passed_visit, to=B, by=staff(Role.FRONT_DESK), reason=""),
        {
            "status": [
                ("Only a clinician or a nurse corrects a visit's state.", E.CORRECTION_NOT_ALLOWED),
                (
                    "This missed visit was rebooked for "
                    f"{day(timezone.localdate() + days(4))}: change that visit instead.",
                    E.ALREADY_REBOOKED,
                ),
            ],
            "reason": [("Say why the visit is corrected.", E.REASON_REQUIRED)],
        },
    )
    assert set(error.message_dict) == {"status", "reason"}


# --- visit_move_errors: the same judgement, without moving ----------------------------------------


def test_visit_move_errors_is_empty_exactly_when_the_move_would_go(review):
    first_day = review.window_start

    assert not visit_move_errors(review, to=C, now=at_clinic(first_day, 8))
    ahead = visit_move_errors(review, to=C, now=minute_before(first_day))
    with pytest.raises(ValidationError) as error:
        ahead.raise_if_any()
    assert [e.code for e in error.value.error_dict["status"]] == [E.STILL_AHEAD]
    assert stored(review).status == P


# --- what the review found ------------------------------------------------------------------------


def test_a_planned_visit_completed_early_in_its_window_took_place_then(review):
    came = clinic_time(review.window_start, 10, 30)
    assert review.scheduled_for > came  # it aimed at day 21, the patient came on day 14

    complete(review, now=came)

    assert (stored(review).status, stored(review).scheduled_for) == (C, came)


def test_a_booked_visit_completed_keeps_its_appointment_time(review):
    when = at_clinic(review.window_start + days(2), 15)
    book(review, when)

    complete(review, now=clinic_time(review.window_start + days(2), 9))

    assert (stored(review).status, stored(review).scheduled_for) == (C, when)


def test_a_visit_of_an_archived_patient_does_not_move(review):
    record.patient_archive(patient=review.patient)
    review.refresh_from_db()
    assert review.status == X  # archiving cancelled it, through planning's bulk move

    manual = Visit.objects.create(
        patient=review.patient,
        purpose="Review",
        scheduled_for=review.scheduled_for,
        window_start=review.window_start,
        window_end=review.window_end,
        status=P,
        source="manual",
    )
    refused(
        lambda: visit_move(visit=manual, to=X, reason="No longer needed."),
        {"patient": [("This patient is archived: restore the patient first.", E.ARCHIVED)]},
    )


def test_the_system_s_bulk_moves_keep_to_the_state_machine(review):
    cancel(review)
    with pytest.raises(ValueError, match="A cancelled visit stays cancelled"):
        visits_move_bulk(moves=[(stored(review), "")], to=M, history_reason="window closed")
    assert stored(review).status == X


def test_a_bulk_cancellation_needs_its_reason_and_is_in_the_history(review):
    with pytest.raises(ValueError, match="needs its reason"):
        visits_move_bulk(moves=[(stored(review), "")], to=X, history_reason="planning")
    visits_move_bulk(moves=[(stored(review), "The course ended.")], to=X, history_reason="planning")

    latest = review.history.latest()
    assert (latest.status, latest.cancel_reason, latest.history_change_reason) == (
        X,
        "The course ended.",
        "planning",
    )
