"""The selective nightly run (issue 18) against the full one it replaces.

The nightly run refreshes only the patients whose follow-up can change by the calendar since the
last finished night (``followups.runs.selection``). Equivalence, on seeded patients, night after
night: after each selective night, the full night (every patient closed and refreshed as of that
day) finds nothing to change in the visits, flags, outcomes or reminders. The nights step a day
at a time, then skip days (a night the run did not finish), over more than a year, so that series
roll, windows close, appointments pass, laboratory monitoring and "consider MVD" fall due and
patients become lost to follow-up.
"""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from followups.codes import FlagCode, VisitStatus
from followups.models import FollowUpRun, PatientFlag, ProtocolStep, Reminder, TreatmentOutcome, Visit
from followups.runs.chunks import run_work_here
from followups.runs.codes import RunKind, RunState
from followups.runs.selection import nightly_patient_ids
from followups.runs.starting import nightly_run_start
from followups.services import patient_follow_up_refresh, patient_nightly_refresh
from patients import codes, demo
from patients.models import Patient
from patients.services import treatment_update
from tests.factories import PatientFactory, diagnosis_for, treatment_for

SEED = 20261205
PATIENTS = 45
# Days after the seed's today: every night for a fortnight, then with gaps up to 40 days.
NIGHTS = [*range(1, 15), 17, 24, 45, 60, 91, 100, 130, 170, 200, 240, 270, 300, 340, 380, 420]


def rows():
    """Everything a night may write, as plain values, in a fixed order."""
    return {
        "visits": list(Visit.objects.order_by("pk").values()),
        "flags": list(PatientFlag.objects.order_by("pk").values()),
        "outcomes": list(TreatmentOutcome.objects.order_by("pk").values()),
        "reminders": list(Reminder.objects.order_by("pk").values()),
    }


def full_night(day):
    """The nightly run as it was before it chose: every patient closed and refreshed as of ``day``."""
    for patient_id in Patient.objects.order_by("pk").values_list("pk", flat=True):
        with transaction.atomic():
            patient_nightly_refresh(patient=Patient.objects.select_for_update().get(pk=patient_id), today=day)


def changed_rows(before, after):
    """The rows that differ, by table (their ids), for a readable failure."""
    found = {}
    for table in before:
        old = {row["id"]: row for row in before[table]}
        new = {row["id"]: row for row in after[table]}
        ids = sorted(pk for pk in old.keys() | new.keys() if old.get(pk) != new.get(pk))
        if ids:
            found[table] = [(old.get(pk), new.get(pk)) for pk in ids[:3]]
    return found


@pytest.fixture
def seeded(db):
    demo.seed_demo(patients=PATIENTS, seed=SEED)
    for patient in Patient.objects.order_by("pk"):
        with transaction.atomic():
            patient_follow_up_refresh(patient=Patient.objects.select_for_update().get(pk=patient.pk))


@pytest.mark.slow
def test_the_selective_night_and_the_full_night_leave_identical_rows(seeded):
    today = timezone.localdate()
    first, _ = nightly_run_start(today=today)
    run_work_here(run=first)
    chosen_each_night = []

    for offset in NIGHTS:
        day = today + timedelta(days=offset)
        run, started = nightly_run_start(today=day)
        assert started
        run = run_work_here(run=run)
        assert (run.state, run.failed) == (RunState.FINISHED, 0)
        chosen_each_night.append(run.patients)
        selective = rows()

        full_night(day)

        assert changed_rows(selective, rows()) == {}, f"the full night of day +{offset} changed rows"

    # The choice is a choice: most nights refresh a part of the patients, never all of them.
    assert max(chosen_each_night) < PATIENTS
    assert sorted(chosen_each_night)[len(NIGHTS) // 2] < PATIENTS // 2
    # And the nights did reach every dated turn the selection answers for.
    assert Visit.objects.filter(status=VisitStatus.MISSED).exists()
    reached = set(PatientFlag.objects.values_list("code", flat=True))
    assert {FlagCode.OVERDUE_FOLLOW_UP, FlagCode.LOST_TO_FOLLOW_UP, FlagCode.LAB_MONITORING_DUE} <= reached


def test_a_new_install_and_a_night_after_failures_choose_everyone_they_must(seeded):
    today = timezone.localdate()
    in_follow_up = set(Patient.objects.filter(diagnoses__isnull=False).values_list("pk", flat=True))
    # No finished night before: everyone in follow-up.
    assert set(nightly_patient_ids(today=today)) >= in_follow_up

    run, _ = nightly_run_start(today=today)
    run_work_here(run=run)
    tomorrow = today + timedelta(days=1)
    quiet = set(nightly_patient_ids(today=tomorrow))
    assert quiet < in_follow_up

    # A patient the last night recorded failed is taken again the next night.
    failed = sorted(in_follow_up - quiet)[0]
    chunk = run.chunks.first()
    chunk.failed_ids = [failed]
    chunk.save(update_fields=["failed_ids"])
    assert failed in nightly_patient_ids(today=tomorrow)

    # A night that did not finish is no anchor: the night after counts from the last finished one.
    FollowUpRun.objects.filter(pk=run.pk).update(state=RunState.SUPERSEDED)
    assert set(nightly_patient_ids(today=tomorrow)) >= in_follow_up
    assert FollowUpRun.objects.filter(kind=RunKind.NIGHTLY).count() == 1


# --- turns the seed does not hold: one patient each, night after night --------------------------


def first_divergence(start, offsets, after_first_night=lambda: None):
    """The first night (days after ``start``) after which the full night would still change rows,
    or None: the selective night chose everyone it had to."""
    run, _ = nightly_run_start(today=start)
    run_work_here(run=run)
    after_first_night()
    for offset in offsets:
        day = start + timedelta(days=offset)
        run, _ = nightly_run_start(today=day)
        run_work_here(run=run)
        selective = rows()
        full_night(day)
        if changed_rows(selective, rows()):
            return offset
    return None


@pytest.fixture
def long_treated(db):
    """A diagnosis of four years, a toxin session long past (its untreated reviews cancelled long
    ago, so that no rule chooses the patient for them): a record that changes only as asked."""
    today = timezone.localdate()
    diagnosis = diagnosis_for(PatientFactory(), diagnosed_on=today - timedelta(days=1500))
    treatment_for(diagnosis, codes.TreatmentKind.BOTULINUM_TOXIN, started_on=today - timedelta(days=1400))
    Visit.objects.filter(status=VisitStatus.CANCELLED).update(
        window_start=today - timedelta(days=400), window_end=today - timedelta(days=380)
    )
    return diagnosis


def course(diagnosis, started_in_days: int):
    return treatment_for(
        diagnosis,
        codes.TreatmentKind.MEDICATION,
        started_on=timezone.localdate() + timedelta(days=started_in_days),
        medication={"drug": codes.Drug.CLONAZEPAM, "daily_dose_mg": "1"},
    )


@pytest.mark.slow
def test_a_course_planned_ahead_gets_its_first_review_the_night_it_comes_within_the_horizon(long_treated):
    course(long_treated, started_in_days=100)  # its first review, day 118, comes within 180 days on day +38

    assert first_divergence(timezone.localdate(), range(1, 50)) is None


@pytest.mark.slow
def test_a_course_completed_without_an_end_date_ends_that_day_and_grows_no_reviews(long_treated):
    finished = course(long_treated, started_in_days=-300)
    treatment_update(treatment=finished, status=codes.TreatmentStatus.COMPLETED)
    finished.refresh_from_db()
    assert finished.ended_on == timezone.localdate()
    reviews = Visit.objects.filter(treatment=finished).exclude(status=VisitStatus.CANCELLED).count()

    assert first_divergence(timezone.localdate(), range(1, 400, 3)) is None
    assert Visit.objects.filter(treatment=finished).exclude(status=VisitStatus.CANCELLED).count() == reviews


def add_nurse_call():
    """A step added to the medication protocol as the admin saves it (the history records it)."""
    step = ProtocolStep.objects.get(protocol__code="medication", code="review-90")
    step.pk, step.code, step.purpose = None, "nurse-call-60", "Nurse call (every 60 days)"
    step.repeat_every_days = step.offset_days = 60
    step.save()


def lengthen_reviews():
    step = ProtocolStep.objects.get(protocol__code="medication", code="review-90")
    step.repeat_every_days = 120
    step.save()


@pytest.mark.parametrize("edit", [add_nurse_call, lengthen_reviews])
def test_an_edited_protocol_reaches_its_patients_by_the_next_night(long_treated, edit):
    course(long_treated, started_in_days=-300)

    assert first_divergence(timezone.localdate(), range(1, 12), after_first_night=edit) is None
