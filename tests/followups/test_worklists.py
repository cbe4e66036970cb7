"""The staff worklists (followups/selectors.py): who is on them, in what order, and in a fixed number
of queries whatever their length."""

import itertools

import pytest
from django.utils import timezone

from followups import services as followups
from followups.codes import FlagCode, VisitSource, VisitStatus
from followups.models import PatientFlag, Visit
from followups.selectors import worklist_due, worklist_flagged, worklist_overdue
from patients import codes
from patients import services as record
from tests.factories import diagnosis_for
from tests.followups.conftest import (
    at_clinic,
    book,
    cancel,
    complete,
    days,
    live,
    mark_missed,
    night,
    record_toxin,
)


def manual(patient, on, hour=11, status=VisitStatus.BOOKED):
    return followups.visit_create(
        patient=patient, purpose="Check", scheduled_for=at_clinic(on, hour), status=status
    )


def touch_all(rows):
    """What a page shows of each row: the visit, its patient and its treatment."""
    return [(v.pk, v.patient.mrn, v.treatment.kind if v.treatment else None) for v in rows]


def toxin_patients(make_patient, today, count):
    """``count`` patients, each with a toxin session 14 days ago: a review at today + 7 (its window
    closes at today + 14) and a re-injection visit at today + 70."""
    sessions = []
    for _ in range(count):
        _, diagnosis = make_patient()
        sessions.append(record_toxin(diagnosis, today - days(14)))
    return sessions


@pytest.fixture
def three_sessions(make_patient, today):
    return toxin_patients(make_patient, today, 3)


def bulk_visits(sessions, count, on, status):
    """``count`` manual visits on ``on`` spread over the sessions' patients, one in three without a
    treatment: rows for the size of a worklist only (their content is tested above)."""
    Visit.objects.bulk_create(
        Visit(
            patient=session.patient,
            treatment=session if n % 3 else None,
            diagnosis=session.diagnosis,
            purpose=f"Check {n}",
            scheduled_for=at_clinic(on),
            window_start=on,
            window_end=on,
            status=status,
            source=VisitSource.MANUAL,
        )
        for n, session in zip(range(count), itertools.cycle(sessions), strict=False)
    )


# --- due ---------------------------------------------------------------------------------------


def test_the_due_list_holds_planned_and_booked_visits_from_today_through_n_days(patient, today):
    first_hour = manual(patient, today, hour=0)
    last_day = manual(patient, today + days(7), hour=23)
    planned = manual(patient, today + days(3), status=VisitStatus.PLANNED)
    manual(patient, today + days(8), hour=0)  # one day too far
    manual(patient, today - days(1), hour=23)  # yesterday
    completed = manual(patient, today + days(1))
    complete(completed, now=at_clinic(today + days(1), 12))
    cancelled = manual(patient, today + days(2))
    cancel(cancelled, "Not needed")

    due = list(worklist_due(days=7, today=today))

    assert [v.pk for v in due] == [first_hour.pk, planned.pk, last_day.pk]


def test_the_due_list_counts_from_the_day_given(patient, today):
    visit = manual(patient, today + days(10))

    assert list(worklist_due(days=7, today=today)) == []
    assert [v.pk for v in worklist_due(days=7, today=today + days(3))] == [visit.pk]
    assert [v.pk for v in worklist_due(days=0, today=today + days(10))] == [visit.pk]
    assert list(worklist_due(days=7, today=today + days(11))) == []


def test_the_due_list_leaves_archived_patients_out(make_patient, today):
    kept, _ = make_patient()
    archived, _ = make_patient()
    shown = manual(kept, today + days(1))
    hidden = manual(archived, today + days(1))
    record.patient_archive(patient=archived)
    # Whatever archiving does to the visit itself, a live visit of an archived patient stays off.
    Visit.objects.filter(pk=hidden.pk).update(status=VisitStatus.BOOKED, cancel_reason="")

    assert [v.pk for v in worklist_due(days=7, today=today)] == [shown.pk]


def test_the_due_list_shows_protocol_visits_soonest_first(make_patient, today):
    sessions = toxin_patients(make_patient, today, 2)

    due = list(worklist_due(days=80, today=today))

    assert [(v.treatment_id, v.protocol_day) for v in due] == [
        (sessions[0].pk, 21),
        (sessions[1].pk, 21),
        (sessions[0].pk, 84),
        (sessions[1].pk, 84),
    ]


@pytest.mark.parametrize("count", [1, 30])
def test_the_due_list_takes_one_query_whatever_its_length(
    three_sessions, today, django_assert_num_queries, count
):
    bulk_visits(three_sessions, count, today + days(101), VisitStatus.BOOKED)

    with django_assert_num_queries(1):
        rows = touch_all(worklist_due(days=2, today=today + days(100)))

    assert len(rows) == count
    assert {kind for *_, kind in rows} <= {codes.TreatmentKind.BOTULINUM_TOXIN, None}


# --- overdue -----------------------------------------------------------------------------------


def test_the_overdue_list_holds_missed_visits_not_rebooked_as_each_change_and_night_stores_them(
    make_patient, today
):
    first, second, third = toxin_patients(make_patient, today, 3)
    later = today + days(15)  # the reviews' windows closed yesterday
    review = {s.pk: live(s)[0] for s in (first, second, third)}
    mark_missed(review[first.pk], now=at_clinic(later))
    # Booked after its window (the clinic confirmed the later day).
    book(review[third.pk], at_clinic(today + days(20)), confirm_outside_window=True)

    # The change is on the list at once: the write stored the patient's overdue flag.
    assert [v.pk for v in worklist_overdue()] == [review[first.pk].pk]
    # The night of the day the second review's window closes leaves it off ...
    night(today + days(14))
    assert [v.pk for v in worklist_overdue()] == [review[first.pk].pk]
    # ... the next night closes it, missed; the booked one is not overdue until it is missed.
    night(later)
    overdue = list(worklist_overdue())
    assert [v.pk for v in overdue] == [review[first.pk].pk, review[second.pk].pk]
    assert [v.status for v in overdue] == [VisitStatus.MISSED, VisitStatus.MISSED]

    followups.visit_rebook(visit=review[first.pk], scheduled_for=at_clinic(today + days(16)))
    assert [v.pk for v in worklist_overdue()] == [review[second.pk].pk]


def test_the_overdue_list_is_oldest_window_first(patient, today):
    newer = manual(patient, today - days(2))
    older = manual(patient, today - days(9))
    followups.visits_mark_missed_due(today=today)

    assert [v.pk for v in worklist_overdue()] == [older.pk, newer.pk]


def test_the_overdue_list_leaves_archived_patients_out(make_patient, today):
    kept, _ = make_patient()
    archived, _ = make_patient()
    shown = manual(kept, today - days(3))
    hidden = manual(archived, today - days(3))
    followups.visits_mark_missed_due(today=today)
    record.patient_archive(patient=archived)

    hidden.refresh_from_db()
    assert hidden.status == VisitStatus.MISSED
    assert [v.pk for v in worklist_overdue()] == [shown.pk]


@pytest.mark.parametrize("count", [1, 30])
def test_the_overdue_list_takes_one_query_whatever_its_length(
    three_sessions, today, django_assert_num_queries, count
):
    bulk_visits(three_sessions, count, today - days(5), VisitStatus.MISSED)
    night(today)  # bulk rows pass no service: the night stores their patients' flags

    with django_assert_num_queries(1):
        rows = touch_all(worklist_overdue())

    assert len(rows) == count


# --- flagged -----------------------------------------------------------------------------------


def test_the_flagged_list_holds_the_flags_of_one_code_longest_standing_first(make_patient, today):
    older, _ = make_patient()
    newer, _ = make_patient()
    secondary, _ = make_patient()
    diagnosis_for(
        secondary,
        diagnosed_on=today - days(3),
        kind=codes.HfsKind.SECONDARY,
        secondary_cause=codes.SecondaryCause.CPA_TUMOR,
    )

    imaging = list(worklist_flagged(code=FlagCode.IMAGING_MISSING))
    assert [f.patient_id for f in imaging] == [older.pk, newer.pk, secondary.pk, secondary.pk]
    assert [f.since for f in imaging] == sorted(f.since for f in imaging)

    unconfirmed = list(worklist_flagged(code=FlagCode.SECONDARY_CAUSE_UNCONFIRMED))
    assert [(f.patient_id, f.code) for f in unconfirmed] == [
        (secondary.pk, FlagCode.SECONDARY_CAUSE_UNCONFIRMED)
    ]
    assert list(worklist_flagged(code=FlagCode.RECURRENCE_AFTER_MVD)) == []
    assert len(worklist_flagged()) == 5


def test_the_flagged_list_leaves_archived_patients_out(make_patient):
    kept, _ = make_patient()
    archived, _ = make_patient()
    record.patient_archive(patient=archived)
    # Archiving clears a patient's flags; a flag row left behind would still be kept off the list.
    assert PatientFlag.objects.filter(patient=archived).count() == 0
    PatientFlag.objects.create(
        patient=archived, code=FlagCode.IMAGING_MISSING, subject="left-over", detail="x", since=timezone.now()
    )

    assert [f.patient_id for f in worklist_flagged(code=FlagCode.IMAGING_MISSING)] == [kept.pk]
    assert [f.patient_id for f in worklist_flagged()] == [kept.pk]


@pytest.mark.parametrize("count", [1, 30])
def test_the_flagged_list_takes_one_query_whatever_its_length(
    three_sessions, django_assert_num_queries, count
):
    patients = [session.patient for session in three_sessions]
    PatientFlag.objects.bulk_create(
        PatientFlag(
            patient=patient,
            code=FlagCode.CONSIDER_MVD_EVALUATION,
            subject=f"subject-{n}",
            detail="x",
            since=timezone.now(),
        )
        for n, patient in zip(range(count), itertools.cycle(patients), strict=False)
    )

    with django_assert_num_queries(1):
        rows = [
            (f.code, f.detail, f.patient.mrn, f.patient.family_name)
            for f in worklist_flagged(code=FlagCode.CONSIDER_MVD_EVALUATION)
        ]

    assert len(rows) == count
