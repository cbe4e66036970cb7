"""The call list (DOMAIN.md section 9, ``followups.calls.selectors``): who is on it and why, the
snooze of a call-later, "unreachable", its order, its rows, and its queries whatever its length.

Records are made through the services; only the list of 500 patients is written in bulk, for its size
(its flags then stored as a refresh stores them). The list reads the overdue visits the patients'
last refresh stored (issue 18): a list asked as of a later day is read after that day's night.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from followups import booking
from followups import services as followups
from followups.calls.follow_up_end import follow_up_end
from followups.calls.selectors import LastAttempt, call_list, call_rows
from followups.calls.services import contact_attempt_record, system_attempt_record
from followups.codes import (
    CallReason,
    ContactChannel,
    ContactOutcome,
    FlagCode,
    VisitKind,
    VisitSource,
    VisitStatus,
)
from followups.flags_store import flags_sync
from followups.models import ContactAttempt, PatientFlag, Slot, Visit
from followups.sessions import session_cancel
from followups.visit_moves import visit_move
from patients import codes
from patients import services as record
from patients.models import Patient
from tests.factories import PatientFactory, diagnosis_for, session_template_row, treatment_for
from tests.followups.conftest import (
    at_clinic,
    book,
    cancel,
    complete,
    days,
    flag_codes,
    mark_missed,
    night,
    record_log,
    record_mvd,
)
from tests.followups.test_flags import course_with_logs

PHONE = ContactChannel.PHONE
R = CallReason


# --- helpers -------------------------------------------------------------------------------------


def planned(patient, start: date, end: date, *, on: date | None = None, hour=11, purpose="Review"):
    """A planned visit (no appointment) with its window, aimed at ``on`` (its first day by default)."""
    return followups.visit_create(
        patient=patient,
        purpose=purpose,
        scheduled_for=at_clinic(on or start, hour),
        window_start=start,
        window_end=end,
        status=VisitStatus.PLANNED,
    )


def booked(patient, when: datetime, purpose="Review"):
    return followups.visit_create(patient=patient, purpose=purpose, scheduled_for=when)


def missed(patient, when: datetime, purpose="Review"):
    return mark_missed(booked(patient, when, purpose))


def listed(today=None, patients=None) -> list[int]:
    """The call list's patients, in its order (only ``patients`` when given)."""
    ids = [p.pk for p in call_list(today=today)]
    if patients is not None:
        wanted = {p.pk for p in patients}
        ids = [pk for pk in ids if pk in wanted]
    return ids


def row_of(patient, today=None):
    (row,) = [r for r in call_rows(call_list(today=today), today=today) if r.patient.pk == patient.pk]
    return row


def attempt(patient, outcome=ContactOutcome.NO_ANSWER, *, at=None, channel=PHONE, **more):
    return contact_attempt_record(patient=patient, channel=channel, outcome=outcome, at=at, **more)


def ago(**delta) -> datetime:
    return timezone.now() - timedelta(**delta)


@pytest.fixture
def overdue(db, today):
    """A patient whose review window closed 8 days ago, unbooked."""
    patient = PatientFactory(given_name="Olga", phone="+49 30 5550101")
    return patient, planned(patient, today - days(20), today - days(8))


# --- who is on the list, and why ---------------------------------------------------------------


def test_a_planned_visit_is_not_booked_until_its_window_closes_then_missed_from_its_end(db, today):
    """Not booked, 0 days, up to its window's last day; the night after, the nightly close marks it
    missed (its window closed, its day passed) and it is overdue from the window's end."""
    patient = PatientFactory()
    visit = planned(patient, today - days(10), today)

    on_last_day = row_of(patient, today)
    night(today + days(1))
    day_after = row_of(patient, today + days(1))
    night(today + days(7))
    week_after = row_of(patient, today + days(7))

    assert (on_last_day.visit, on_last_day.reason, on_last_day.days_overdue) == (visit, R.NOT_BOOKED, 0)
    assert (day_after.visit, day_after.reason, day_after.days_overdue) == (visit, R.MISSED, 1)
    assert (week_after.reason, week_after.days_overdue) == (R.MISSED, 7)
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.MISSED


def test_a_missed_visit_is_listed_from_its_appointment_s_local_day_until_rebooked(db, today):
    patient = PatientFactory()
    # Half past midnight in the clinic: the day before in UTC. Overdue counts from the local day.
    visit = missed(patient, at_clinic(today - days(6), 0) + timedelta(minutes=30))

    row = row_of(patient, today)
    assert (row.visit, row.reason, row.days_overdue) == (visit, R.MISSED, 6)

    followups.visit_rebook(visit=visit, scheduled_for=at_clinic(today + days(5)))

    assert listed(today, [patient]) == []


def test_a_visit_missed_inside_its_window_is_overdue_from_the_window_s_end_as_its_e_mail_says(db, today):
    """Missed on the day it aimed at, its window closing later: overdue from the window's end (the
    day the missed-visit e-mail counts from), not from the day it aimed at."""
    patient = PatientFactory()
    visit = planned(patient, today - days(20), today - days(4), on=today - days(12))
    visit_move(visit=visit, to=VisitStatus.MISSED)

    row = row_of(patient, today)

    assert (row.visit, row.reason, row.days_overdue) == (visit, R.MISSED, 4)


@pytest.mark.parametrize(
    ("start", "end", "on_list"),
    [
        (-5, 5, True),  # exactly half passed
        (-4, 5, False),  # not quite half
        (-4, 4, True),
        (0, 0, True),  # a one-day window, today
        (0, 1, False),
        (1, 10, False),  # not open yet
    ],
)
def test_an_unbooked_visit_is_listed_once_half_its_window_has_passed(db, today, start, end, on_list):
    patient = PatientFactory()
    visit = planned(patient, today + days(start), today + days(end))

    rows = [r for r in call_rows(call_list(today=today), today=today) if r.patient.pk == patient.pk]

    assert [(r.visit, r.reason, r.days_overdue) for r in rows] == (
        [(visit, R.NOT_BOOKED, 0)] if on_list else []
    )


@pytest.fixture
def review_session(no_templates, today):
    """A review session in five days; answers its first slot."""

    def slot():
        session_template_row(weekday=(today + days(5)).weekday(), valid_from=today, kinds=[VisitKind.REVIEW])
        booking.sessions_generate(today=today)
        return Slot.objects.filter(session__on=today + days(5)).order_by("starts_at").first()

    return slot


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (-1, 20),  # open, far from half passed
        (2, 20),  # booked ahead of its window, which has not opened yet (section 12: on the list at once)
    ],
)
def test_a_visit_sent_back_by_a_cancelled_session_is_listed_until_booked_again(
    db, today, review_session, start, end
):
    patient = PatientFactory()
    visit = planned(patient, today + days(start), today + days(end))
    slot = review_session()
    visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot, confirm_outside_window=True)
    assert listed(today, [patient]) == []

    session_cancel(session=slot.session, reason="Public holiday")

    row = row_of(patient, today)
    assert (row.visit, row.reason, row.days_overdue) == (visit, R.CLINIC_CANCELLED, 0)

    book(visit, at_clinic(today + days(6)), confirm_outside_window=True)

    assert listed(today, [patient]) == []


def test_booked_completed_and_cancelled_visits_put_no_one_on_the_list(db, today):
    ahead, done, called_off, nothing = (PatientFactory() for _ in range(4))
    book(planned(ahead, today - days(10), today + days(2)), at_clinic(today + days(1)))
    complete(planned(done, today - days(30), today - days(20)))
    cancel(planned(called_off, today - days(30), today - days(20)))

    assert listed(today, [ahead, done, called_off, nothing]) == []


def test_patients_whose_follow_up_ended_or_who_are_archived_are_never_listed(db, today):
    ended, archived, kept = (PatientFactory() for _ in range(3))
    visits = [planned(p, today - days(20), today - days(8)) for p in (ended, archived, kept)]
    late = missed(ended, at_clinic(today - days(4)))
    assert listed(today, [ended, archived, kept]) == [ended.pk, archived.pk, kept.pk]

    follow_up_end(patient=ended, reason=codes.FollowUpEndReason.MOVED_AWAY)
    record.patient_archive(patient=archived)
    # Whatever ending and archiving do to the visits, one left overdue keeps no one on the list.
    Visit.objects.filter(pk=visits[1].pk).update(status=VisitStatus.PLANNED, cancel_reason="")

    assert Visit.objects.get(pk=visits[0].pk).status == VisitStatus.PLANNED
    assert Visit.objects.get(pk=late.pk).status == VisitStatus.MISSED
    assert listed(today, [ended, archived, kept]) == [kept.pk]
    night(today + days(30))
    assert listed(today + days(30), [ended, archived, kept]) == [kept.pk]


def test_a_booking_ahead_or_a_later_attended_visit_takes_the_patient_off(db, today):
    """Overdue rule v2 (section 8): not once the patient attended a later visit or holds a booking."""
    booking_ahead, attended_later, attended_earlier = (PatientFactory() for _ in range(3))
    for patient in (booking_ahead, attended_later, attended_earlier):
        missed(patient, at_clinic(today - days(30)))
        planned(patient, today - days(25), today - days(15), on=today - days(20))
    ahead = booked(booking_ahead, at_clinic(today + days(3)))
    complete(booked(attended_later, at_clinic(today - days(5))))
    complete(booked(attended_earlier, at_clinic(today - days(40))))

    assert listed(today, [booking_ahead, attended_later, attended_earlier]) == [attended_earlier.pk]

    # The booking is given up: the patient is due again.
    visit_move(visit=ahead, to=VisitStatus.PLANNED)
    assert set(listed(today, [booking_ahead, attended_later])) == {booking_ahead.pk}


def test_one_row_per_patient_with_the_oldest_due_visit(db, today):
    patient = PatientFactory()
    planned(patient, today - days(6), today + days(4))  # not booked, half passed: 0 days
    planned(patient, today - days(20), today - days(9))  # 9 days overdue
    oldest = missed(patient, at_clinic(today - days(12)))  # 12 days overdue
    same_day = planned(patient, today - days(30), today - days(12))  # 12 days too, a later id

    rows = [r for r in call_rows(call_list(today=today), today=today) if r.patient.pk == patient.pk]
    assert [(r.visit, r.reason, r.days_overdue) for r in rows] == [(oldest, R.MISSED, 12)]

    complete(same_day)  # attended before the missed one: it stays due
    assert row_of(patient, today).visit == oldest
    # Seen elsewhere before the next visit due: the missed one is done, the next one is due still.
    attempt(patient, ContactOutcome.ALREADY_SEEN_ELSEWHERE, visit=oldest, seen_on=today - days(25))

    row = row_of(patient, today)
    assert (row.reason, row.days_overdue) == (R.WINDOW_CLOSED, 9)


def test_a_row_shows_the_visit_due_days_overdue_and_the_last_attempt(db, today):
    patient = PatientFactory(
        given_name="Rosa",
        phone="+49 30 5550199",
        email="rosa@patients.example",
        email_reminders=True,
    )
    visit = missed(patient, at_clinic(today - days(3)), purpose="Review after toxin")
    nobody = PatientFactory()
    planned(nobody, today - days(20), today - days(8))
    # The later attempt is written first: the last one is the latest by time, not by id.
    latest = attempt(patient, ContactOutcome.LEFT_MESSAGE, at=ago(hours=1), channel=ContactChannel.SMS)
    attempt(patient, ContactOutcome.NO_ANSWER, at=ago(days=2))

    row = row_of(patient, today)

    assert (row.patient.given_name, row.patient.phone, row.patient.email_reminders) == (
        "Rosa",
        "+49 30 5550199",
        True,
    )
    assert (row.visit, row.visit.purpose, row.reason, row.days_overdue) == (
        visit,
        "Review after toxin",
        R.MISSED,
        3,
    )
    assert (row.high_risk, row.unreachable) == (False, False)
    assert row.last_attempt == LastAttempt(latest.at, ContactChannel.SMS, ContactOutcome.LEFT_MESSAGE)
    assert row_of(nobody, today).last_attempt is None


# --- call later ----------------------------------------------------------------------------------


def test_call_later_hides_the_patient_until_the_day_given(overdue, today):
    patient, _ = overdue

    attempt(patient, ContactOutcome.CALL_LATER, remind_on=today + days(3))

    assert listed(today, [patient]) == []
    night(today + days(2))
    assert listed(today + days(2), [patient]) == []
    night(today + days(3))
    assert listed(today + days(3), [patient]) == [patient.pk]
    assert row_of(patient, today + days(3)).last_attempt.outcome == ContactOutcome.CALL_LATER


def test_an_attempt_after_the_call_later_brings_the_patient_back_an_earlier_one_does_not(overdue, today):
    patient, visit = overdue
    attempt(patient, ContactOutcome.CALL_LATER, at=ago(hours=2), remind_on=today + days(10))
    attempt(patient, ContactOutcome.NO_ANSWER, at=ago(hours=3))  # entered late, made before
    assert listed(today, [patient]) == []

    attempt(patient, ContactOutcome.LEFT_MESSAGE, at=ago(hours=1))

    row = row_of(patient, today)
    assert (row.visit, row.last_attempt.outcome) == (visit, ContactOutcome.LEFT_MESSAGE)


# --- unreachable ---------------------------------------------------------------------------------


@pytest.fixture
def two_overdue(db, today):
    """Two patients overdue: ``far`` for 100 days, ``near`` for 5."""
    far, near = PatientFactory(given_name="Far"), PatientFactory(given_name="Near")
    planned(far, today - days(110), today - days(100))
    planned(near, today - days(15), today - days(5))
    return far, near


def test_three_unanswered_attempts_within_30_days_make_the_patient_unreachable_and_last(two_overdue, today):
    far, near = two_overdue
    attempt(far, ContactOutcome.NO_ANSWER, at=ago(days=29))
    attempt(far, ContactOutcome.LEFT_MESSAGE, at=ago(days=10))
    assert listed(today, [far, near]) == [far.pk, near.pk]
    assert row_of(far, today).unreachable is False

    attempt(far, ContactOutcome.NO_ANSWER, at=ago(hours=1))

    assert listed(today, [far, near]) == [near.pk, far.pk]
    assert (row_of(far, today).unreachable, row_of(near, today).unreachable) == (True, False)


def test_the_missed_visit_e_mail_counts_as_an_unanswered_attempt(db, today):
    far = PatientFactory()
    visit = missed(far, at_clinic(today - days(40)))
    near = PatientFactory()
    planned(near, today - days(15), today - days(5))
    system_attempt_record(visit=visit, at=ago(days=20))
    attempt(far, at=ago(days=3))
    assert listed(today, [far, near]) == [far.pk, near.pk]

    attempt(far, at=ago(hours=1))

    assert listed(today, [far, near]) == [near.pk, far.pk]


def test_unanswered_attempts_older_than_30_days_do_not_count(two_overdue, today):
    far, near = two_overdue
    attempt(far, at=ago(days=31))
    attempt(far, at=ago(days=5))
    attempt(far, at=ago(hours=1))

    assert listed(today, [far, near]) == [far.pk, near.pk]
    assert row_of(far, today).unreachable is False


def test_an_answer_resets_the_count_and_three_more_unanswered_make_it_again(two_overdue, today):
    far, near = two_overdue
    for hours in (100, 90, 80):
        attempt(far, at=ago(hours=hours))
    assert row_of(far, today).unreachable is True

    # Someone answered (and asked to be called tomorrow); the calls made since count afresh.
    attempt(far, ContactOutcome.CALL_LATER, at=ago(hours=70), remind_on=today + days(1))
    assert listed(today, [far, near]) == [near.pk]
    attempt(far, at=ago(hours=60))
    attempt(far, at=ago(hours=50))
    assert row_of(far, today).unreachable is False

    attempt(far, ContactOutcome.LEFT_MESSAGE, at=ago(hours=40))

    assert listed(today, [far, near]) == [near.pk, far.pk]


def test_a_wrong_number_reached_no_one_and_leaves_the_patient_unreachable(two_overdue, today):
    far, near = two_overdue
    for hours in (100, 90, 80):
        attempt(far, at=ago(hours=hours))

    attempt(far, ContactOutcome.WRONG_NUMBER, at=ago(hours=70))

    assert row_of(far, today).unreachable is True
    assert listed(today, [far, near]) == [near.pk, far.pk]


# --- clinical risk first -------------------------------------------------------------------------


def _mvd_days_ago(n, **overrides):
    def make(diagnosis, today):
        record_mvd(diagnosis, today - days(n), **overrides)

    return make


def _recurrence(diagnosis, today):
    patient = diagnosis.patient
    record_log(patient, today - days(201), spasms_per_day=Decimal("20"))
    record_mvd(diagnosis, today - days(200))
    record_log(patient, today - days(150), spasms_per_day=Decimal("0"))
    record_log(patient, today - days(2), spasms_per_day=Decimal("4"))


def _palsy(diagnosis, today):
    record_mvd(diagnosis, today - days(200))
    record_log(diagnosis.patient, today - days(5), house_brackmann_grade=3)


def _no_benefit(diagnosis, today):
    course_with_logs(diagnosis, today - days(95), "20", "20", today)


def _mvd_stopped(diagnosis, today):
    treatment_for(diagnosis, codes.TreatmentKind.MVD, started_on=today - days(30), status="stopped")


@pytest.mark.parametrize(
    ("make", "flag", "high_risk"),
    [
        (_mvd_days_ago(30), None, True),
        (_mvd_days_ago(89, status=codes.TreatmentStatus.ACTIVE), None, True),
        (_mvd_days_ago(90), None, False),  # 90 days after: no longer the early period
        (_mvd_days_ago(200), None, False),
        (_mvd_stopped, None, False),
        (_recurrence, FlagCode.RECURRENCE_AFTER_MVD, True),
        (_palsy, FlagCode.FACIAL_PALSY_AFTER_MVD, True),
        (_no_benefit, FlagCode.CONSIDER_MVD_EVALUATION, True),
    ],
    ids=[
        "mvd_30_days_ago",
        "mvd_89_days_ago",
        "mvd_90_days_ago",
        "mvd_200_days_ago",
        "mvd_stopped",
        "recurrence",
        "palsy",
        "consider_mvd",
    ],
)
def test_clinical_risk_comes_before_days_overdue(make_patient, today, make, flag, high_risk):
    risky, diagnosis = make_patient(diagnosed_days_ago=400)
    make(diagnosis, today)
    mine = planned(risky, today - days(10), today - days(3))  # overdue 3 days
    plain = PatientFactory()
    planned(plain, today - days(210), today - days(200))  # overdue 200 days
    if flag:
        assert flag in flag_codes(risky)

    row = row_of(risky, today)

    assert (row.visit, row.days_overdue, row.high_risk) == (mine, 3, high_risk)
    assert listed(today, [risky, plain]) == ([risky.pk, plain.pk] if high_risk else [plain.pk, risky.pk])


def test_the_list_is_reachable_first_then_risk_then_longest_overdue_then_id(db, today):
    first_of_two, second_of_two, recent, risky, unreachable, open_window = (
        PatientFactory(given_name=name) for name in ("A", "B", "C", "D", "E", "F")
    )
    for patient in (first_of_two, second_of_two):
        planned(patient, today - days(60), today - days(50))
    planned(recent, today - days(20), today - days(10))
    for patient in (risky, unreachable):
        record_mvd(diagnosis_for(patient, diagnosed_on=today - days(100)), today - days(60))
    planned(risky, today - days(10), today - days(2))
    planned(unreachable, today - days(310), today - days(300))
    for hours in (3, 2, 1):
        attempt(unreachable, at=ago(hours=hours))
    planned(open_window, today - days(5), today + days(5))

    rows = call_rows(call_list(today=today), today=today)

    assert [(r.patient.given_name, r.high_risk, r.unreachable, r.days_overdue) for r in rows] == [
        ("D", True, False, 2),
        ("A", False, False, 50),
        ("B", False, False, 50),
        ("C", False, False, 10),
        ("F", False, False, 0),
        ("E", True, True, 300),
    ]


# --- a fixed number of queries, whatever the length -----------------------------------------------


def crowd(count: int, today: date) -> list[Patient]:
    """``count`` patients on the call list, written in bulk for the list's size only (their rules are
    tested above): the four reasons in turn, an attempt or two for every other one, a risk flag for
    every third, and the overdue ones of every other group of four due since two years ago (lost).
    The rows bypass the services, so each patient's flags are then stored as a refresh stores them
    (overdue, lost); the risk flags are written after, as they are planted, not derived."""
    patients = Patient.objects.bulk_create(
        Patient(
            mrn=f"CROWD{n:05d}",
            given_name=f"P{n}",
            family_name="Crowd",
            date_of_birth=date(1960, 1, 1),
            sex=codes.Sex.FEMALE,
            email=f"crowd{n}@patients.example",
            phone=f"+49 30 {n:07d}",
        )
        for n in range(count)
    )
    now = timezone.now()
    visits = []
    for n, patient in enumerate(patients):
        long_ago = today - days(800) if (n // 4) % 2 == 0 else None
        common = {"patient": patient, "purpose": f"Review {n}", "source": VisitSource.MANUAL}
        if n % 4 == 0:
            on = today - days(10 + n % 7)
            visits.append(
                Visit(
                    **common,
                    scheduled_for=at_clinic(on),
                    window_start=long_ago or on,
                    window_end=on,
                    status=VisitStatus.MISSED,
                )
            )
        elif n % 4 == 1:
            visits.append(
                Visit(
                    **common,
                    scheduled_for=at_clinic(today - days(30)),
                    window_start=long_ago or today - days(30),
                    window_end=today - days(5 + n % 5),
                    status=VisitStatus.PLANNED,
                )
            )
        else:
            visits.append(
                Visit(
                    **common,
                    scheduled_for=at_clinic(today),
                    window_start=today - days(6 if n % 4 == 2 else 1),
                    window_end=today + days(4 if n % 4 == 2 else 20),
                    status=VisitStatus.PLANNED,
                    clinic_cancelled_at=now if n % 4 == 3 else None,
                )
            )
    Visit.objects.bulk_create(visits)
    ContactAttempt.objects.bulk_create(
        ContactAttempt(patient=patient, at=now - timedelta(hours=hours), channel=PHONE, outcome=outcome)
        for n, patient in enumerate(patients)
        if n % 2
        for hours, outcome in ((50, ContactOutcome.NO_ANSWER), (n, ContactOutcome.LEFT_MESSAGE))
    )
    for patient in patients:
        flags_sync(patient=patient, today=today)
    PatientFlag.objects.bulk_create(
        PatientFlag(
            patient=patient, code=FlagCode.CONSIDER_MVD_EVALUATION, subject="s", detail="d", since=today
        )
        for n, patient in enumerate(patients)
        if n % 3 == 0
    )
    return patients


def shown(rows) -> list:
    """What the call-list page shows of each row: name, phone, consent, visit due, attempt."""
    return [
        (
            r.patient.given_name,
            r.patient.family_name,
            r.patient.phone,
            r.patient.email_reminders,
            r.visit.purpose,
            r.reason,
            r.days_overdue,
            r.high_risk,
            r.unreachable,
            r.last_attempt and (r.last_attempt.at, r.last_attempt.outcome),
        )
        for r in rows
    ]


@pytest.mark.parametrize("count", [10, 500])
def test_the_call_list_takes_a_fixed_number_of_queries_whatever_its_length(
    db, today, django_assert_max_num_queries, count
):
    crowd(count, today)

    with django_assert_max_num_queries(2):
        rows = shown(call_rows(call_list(today=today)[:count], today=today))

    assert len(rows) == count
    assert {row[5] for row in rows} == set(R.values)  # every reason
    assert {row[7] for row in rows} == {True, False}  # risk or not
    assert {bool(row[9]) for row in rows} == {True, False}  # attempted or not
