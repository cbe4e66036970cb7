"""Lost to follow-up (DOMAIN.md section 9): follow-up due, not ended, no attended visit for 365 days
(``LOST_TO_FOLLOW_UP_DAYS``). The worklist's SQL (``followups.predicates.lost_to_follow_up``) and the
flag (``followups.flags.lost_since``) are the same rule written twice: they must agree, case by case.
The list for the clinic's own number of days reads the stored flags (issue 18); for another number
of days asked for, the SQL rule."""

from datetime import date

import pytest

from followups import services as followups
from followups.calls.follow_up_end import follow_up_end
from followups.calls.selectors import call_rows, lost_to_follow_up_list
from followups.calls.services import contact_attempt_record
from followups.codes import CallReason, ContactChannel, ContactOutcome, FlagCode
from followups.flags_store import flags_sync
from followups.models import PatientFlag
from followups.predicates import lost_to_follow_up
from patients import codes
from patients import services as record
from patients.models import Patient
from tests.factories import PatientFactory
from tests.followups.calls.test_call_list import booked, crowd, missed, planned, shown
from tests.followups.conftest import at_clinic, complete, days

DAYS = 365


def attended(patient, on: date, hour=11):
    return complete(booked(patient, at_clinic(on, hour)))


def lost_ids(today, **kwargs) -> set[int]:
    return {p.pk for p in lost_to_follow_up_list(today=today, **kwargs)}


def rule_ids(today, days=DAYS) -> set[int]:
    """The patients the worklist's SQL rule finds lost, as the list asks it for another span."""
    return set(Patient.objects.filter(lost_to_follow_up(today, days)).values_list("pk", flat=True))


def lost_flag(patient, today):
    """The stored flag after a refresh on ``today``, as (detail, since), or None."""
    patient.refresh_from_db()
    flags_sync(patient=patient, today=today)
    flag = PatientFlag.objects.filter(patient=patient, code=FlagCode.LOST_TO_FOLLOW_UP).first()
    return (flag.detail, flag.since) if flag else None


# Each case builds one patient's visits and answers the day the flag should say the patient was lost
# (None: not lost). ``t`` is today.


def attended_exactly_days_ago(p, t):
    attended(p, t - days(DAYS))
    planned(p, t - days(20), t - days(10))
    return t  # 365 days without a visit are reached today


def attended_a_day_less_long_ago(p, t):
    attended(p, t - days(DAYS - 1))
    planned(p, t - days(20), t - days(10))
    return None


def never_attended_first_due_on_the_cutoff(p, t):
    planned(p, t - days(DAYS), t - days(10))
    return t


def never_attended_first_due_the_day_after_the_cutoff(p, t):
    planned(p, t - days(DAYS - 1), t - days(10))
    return None


def never_attended_missed_long_ago(p, t):
    missed(p, at_clinic(t - days(400)))
    return t - days(400 - DAYS)  # 365 days after it was due, long after it was missed


def attended_yesterday(p, t):
    planned(p, t - days(700), t - days(690), on=t - days(700))  # due long ago: attended since
    attended(p, t - days(1), hour=10)
    planned(p, t - days(3), t - days(1), on=t - days(1), hour=15)  # overdue still (aimed later)
    return None


def overdue_absent(p, t):
    old = missed(p, at_clinic(t - days(700)))
    followups.visit_rebook(visit=old, scheduled_for=at_clinic(t + days(5)))
    return None


def long_ago_since_from_the_window(p, t):
    attended(p, t - days(500))
    planned(p, t - days(20), t - days(10))
    return t - days(10)  # 365 days without a visit were reached earlier; overdue only since then


def long_ago_since_from_the_anchor(p, t):
    attended(p, t - days(400))
    planned(p, t - days(250), t - days(200))
    return t - days(400 - DAYS)


def booked_before_its_window_and_attended(p, t):
    # Attended 370 days ago on a day booked before its window opened (the clinic confirmed it): the
    # visit's window starts after the cutoff, and no other visit was due before it.
    followups.visit_create(
        patient=p,
        purpose="Review",
        scheduled_for=at_clinic(t - days(370)),
        window_start=t - days(360),
        window_end=t - days(350),
    )
    complete(p.visits.get())
    planned(p, t - days(300), t - days(290))
    return t - days(370 - DAYS)


def seen_elsewhere_long_ago(p, t):
    # The patient reports that a visit of 400 days ago took place elsewhere; a later one is overdue.
    reported = planned(p, t - days(410), t - days(400))
    planned(p, t - days(300), t - days(290))
    contact_attempt_record(
        patient=p,
        visit=reported,
        channel=ContactChannel.PHONE,
        outcome=ContactOutcome.ALREADY_SEEN_ELSEWHERE,
        seen_on=t - days(400),
    )
    return t - days(400 - DAYS)


CASES = [
    attended_exactly_days_ago,
    attended_a_day_less_long_ago,
    never_attended_first_due_on_the_cutoff,
    never_attended_first_due_the_day_after_the_cutoff,
    never_attended_missed_long_ago,
    attended_yesterday,
    overdue_absent,
    long_ago_since_from_the_window,
    long_ago_since_from_the_anchor,
    booked_before_its_window_and_attended,
    seen_elsewhere_long_ago,
]


@pytest.mark.parametrize("case", CASES, ids=[case.__name__ for case in CASES])
def test_the_worklist_and_the_flag_agree(db, today, case):
    patient = PatientFactory()
    bystander = PatientFactory()  # never lost: nothing due
    lost_on = case(patient, today)

    flag = lost_flag(patient, today)

    assert (patient.pk in lost_ids(today), flag is not None) == (lost_on is not None, lost_on is not None)
    assert (patient.pk in rule_ids(today)) == (lost_on is not None)
    assert (flag[1] if flag else None) == lost_on
    assert bystander.pk not in lost_ids(today) | rule_ids(today)


def test_the_flag_says_when_the_patient_last_came(db, today):
    came, never = PatientFactory(), PatientFactory()
    attended(came, today - days(400))
    planned(came, today - days(20), today - days(10))
    planned(never, today - days(400), today - days(390))

    assert lost_flag(came, today) == (
        f"Follow-up overdue, last attended visit on {today - days(400)}.",
        today - days(10),
    )
    assert lost_flag(never, today) == ("Follow-up overdue, no visit attended.", today - days(35))


def test_the_clinic_s_own_number_of_days_is_respected(db, today, settings):
    patient = PatientFactory()
    attended(patient, today - days(40))
    planned(patient, today - days(30), today - days(20), on=today - days(25))
    assert (patient.pk in lost_ids(today), lost_flag(patient, today)) == (False, None)
    assert patient.pk in lost_ids(today, days=40)
    assert patient.pk not in lost_ids(today, days=41)

    settings.LOST_TO_FOLLOW_UP_DAYS = 30

    # The list reads the stored flag: the patient's next refresh stores it under the new setting.
    assert lost_flag(patient, today)[1] == today - days(10)
    assert patient.pk in lost_ids(today)
    assert patient.pk not in lost_ids(today, days=41)  # a list asked for its own span keeps it


def test_a_span_asked_for_lists_only_patients_whose_overdue_visit_is_stored_with_their_row(db, today):
    patient = PatientFactory()
    window = planned(patient, today - days(60), today - days(45))  # its window closed: overdue
    later = today + days(30)
    # Asked about a later day before any night stored it: the rule finds the patient lost, but the
    # row's visit is the stored one; no row without it (it was a server error).
    assert patient.pk in rule_ids(later, days=30)
    PatientFlag.objects.filter(patient=patient).delete()
    assert call_rows(lost_to_follow_up_list(today=later, days=30), today=later) == []

    flags_sync(patient=patient)
    (row,) = call_rows(lost_to_follow_up_list(today=later, days=30), today=later)
    assert (row.patient, row.visit) == (patient, window)


def test_lost_patients_whose_follow_up_ended_or_who_are_archived_are_left_out(db, today):
    ended, archived, kept = (PatientFactory() for _ in range(3))
    for patient in (ended, archived, kept):
        planned(patient, today - days(400), today - days(390))
    assert lost_ids(today) == {ended.pk, archived.pk, kept.pk}

    follow_up_end(patient=ended, reason=codes.FollowUpEndReason.DISCHARGED)
    record.patient_archive(patient=archived)

    assert lost_ids(today) == {kept.pk}
    assert [lost_flag(p, today) is not None for p in (ended, archived, kept)] == [False, False, True]


def test_lost_rows_show_the_visit_overdue_longest_oldest_first(db, today):
    newer, older = PatientFactory(given_name="Newer"), PatientFactory(given_name="Older")
    planned(newer, today - days(400), today - days(380))
    planned(newer, today - days(30), today - days(20))
    planned(newer, today - days(5), today + days(5))  # not booked yet: the call list's, not lost's
    visit = missed(older, at_clinic(today - days(500)))

    rows = call_rows(lost_to_follow_up_list(today=today), today=today)

    assert [(r.patient.given_name, r.visit.window_end, r.reason, r.days_overdue) for r in rows] == [
        ("Older", visit.window_end, CallReason.MISSED, 500),
        ("Newer", today - days(380), CallReason.WINDOW_CLOSED, 380),
    ]


@pytest.mark.parametrize("count", [10, 500])
def test_the_lost_list_takes_a_fixed_number_of_queries_whatever_its_length(
    db, today, django_assert_max_num_queries, count
):
    patients = crowd(count, today)
    expected = sum(1 for n in range(count) if n % 4 in (0, 1) and (n // 4) % 2 == 0)

    with django_assert_max_num_queries(2):
        rows = shown(call_rows(lost_to_follow_up_list(today=today), today=today))

    assert len(rows) == expected
    assert {row[5] for row in rows} == {CallReason.MISSED, CallReason.WINDOW_CLOSED}
    assert len(patients) == count
