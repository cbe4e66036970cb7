"""Demo follow-up history for seeded patients: their protocol visits and symptom logs.

Answers ``patients.demo.demo_batch_seeded``. For each seeded treatment it writes a baseline log
before it and the logs of the visits after it, shaped the way DOMAIN.md describes recovery (MVD
mostly cured, a quarter of cures delayed, a few recurrences; toxin effects that peak by the day-21
review and wear off by the re-injection visit; modest drug effects).

It also writes the visits the protocols ask for, built by the planner's own functions from the
batch's rows in memory (re-planning each patient through ``visits_plan_for`` is far too slow for a
benchmark's 100,000 patients, and the planner never creates a visit whose window has closed, so
there would be no history):
- upcoming visits (window still open) are exactly the ones ``visits_plan_for`` would create
  today, planned or, when near, booked; so planning a seeded patient again changes nothing;
- past visits (window closed) are the ones the protocols asked for while they applied: a
  stopped course up to its last day, an untreated diagnosis until its first treatment, an
  archived patient until archived; completed or missed, and a completed visit takes the symptom
  log of its day;
- missed visits were rebooked by the front desk, as ``visit_rebook`` books them (a manual visit
  on one day, linked to the missed one) a few days after the missed window closed: all those
  missed long ago (and attended in the end), half of the recent ones (booked if that day is
  still ahead, attended or missed again if it has passed). Without them every missed visit of
  years of history would still count as overdue (DOMAIN.md), and so would most demo patients.
Written with the batch's writer (COPY on PostgreSQL) and no history rows, like the rest of the
seed. Reminders, outcomes and flags are not written here: ``follow_up_refresh --only-unplanned``
derives them through the services (``make run`` calls it after seeding).
"""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import NamedTuple

from django.dispatch import receiver
from django.utils import timezone

from followups import planning, services
from followups.codes import AssessmentSource, VisitStatus
from followups.models import Assessment, Visit
from patients.codes import TreatmentKind, TreatmentStatus
from patients.demo import SeededBatch, demo_batch_seeded

# Day 3 is the ward's log before discharge: without a log within 7 days of surgery every cure
# would count as delayed (DOMAIN.md section 7, rule 3).
MVD_LOG_DAYS = (3, 10, 30, 90, 180, 365, 730, 1095, 1460, 1825)
TOXIN_LOG_DAYS = (21, 84)
NURSE_LED_BEFORE_DAY = 60
MEDICATION_LOG_DAYS = (28, 118, 208, 298)


def _log(patient, on: date, spasms: float, baseline_grade: int, rng: random.Random, **extra) -> Assessment:
    spasms = max(0.0, spasms)
    grade = 0 if spasms == 0 else max(1, min(4, round(baseline_grade * min(1.0, spasms / 20 + 0.4))))
    return Assessment(
        patient=patient,
        assessed_on=on,
        spasms_per_day=Decimal(str(round(spasms, 1))),
        episode_duration_seconds=Decimal(str(round(0 if spasms == 0 else rng.uniform(1, 20), 1))),
        cohen_albert_grade=grade,
        **extra,
    )


def _relative_course(kind: str, rng: random.Random):
    """A function of the day after treatment to the fraction of the baseline spasms left."""
    if kind == TreatmentKind.MVD:
        fate = rng.random()
        if fate < 0.66:
            return lambda day: 0.0
        if fate < 0.88:
            cured_on = rng.choice((90, 180, 365))
            return lambda day: 0.0 if day >= cured_on else 0.5
        if fate < 0.91:
            return lambda day: 0.0 if day < 700 else 0.8
        return lambda day: 0.6
    if kind == TreatmentKind.BOTULINUM_TOXIN:
        # At its peak a session relieves most patients, frees a few of spasms altogether and
        # barely helps some (those raise consider_mvd_evaluation, rule version 2 reading the peak).
        fate = rng.random()
        if fate < 0.12:
            best = 0.0
        elif fate < 0.22:
            best = rng.uniform(0.6, 0.95)
        else:
            best = rng.uniform(0.1, 0.5)
        return lambda day: best if day < 60 else min(0.9, best + 0.4)
    # Drugs: a modest effect for about a third, little for the rest.
    effect = rng.uniform(0.3, 0.5) if rng.random() < 0.35 else rng.uniform(0.55, 1.0)
    return lambda day: effect


def demo_logs_for(batch: SeededBatch) -> list[Assessment]:
    patients = {patient.pk: patient for patient in batch.patients}
    logs = []
    for treatment in batch.treatments:
        if treatment.status == TreatmentStatus.ENTERED_IN_ERROR or treatment.started_on >= batch.today:
            continue
        patient = patients[treatment.patient_id]
        rng = batch.random_for(patient, f"logs-{treatment.started_on}-{treatment.kind}")
        # One patient, one untreated level of spasms: every treatment is measured against it.
        untreated = batch.random_for(patient, "untreated")
        baseline = untreated.lognormvariate(3.0, 0.6)
        baseline_grade = untreated.choice((2, 3, 3, 4))
        before = treatment.started_on - timedelta(days=rng.randint(0, 30))
        logs.append(_log(patient, before, baseline, baseline_grade, rng))
        days = {
            TreatmentKind.MVD: MVD_LOG_DAYS,
            TreatmentKind.BOTULINUM_TOXIN: TOXIN_LOG_DAYS,
        }.get(treatment.kind, MEDICATION_LOG_DAYS)
        course = _relative_course(treatment.kind, rng)
        palsy = treatment.kind == TreatmentKind.MVD and rng.random() < 0.1
        for day in days:
            on = treatment.started_on + timedelta(days=day)
            if on >= batch.today or (treatment.ended_on and on > treatment.ended_on):
                break
            extra = {}
            if treatment.kind == TreatmentKind.BOTULINUM_TOXIN and day < NURSE_LED_BEFORE_DAY:
                # The injection clinic's nurse sees the patient at the day-21 review.
                extra["source"] = AssessmentSource.NURSE
            if treatment.kind == TreatmentKind.MVD:
                extra["house_brackmann_grade"] = rng.choice((2, 3)) if palsy and day <= 30 else 1
            logs.append(_log(patient, on, baseline * course(day), baseline_grade, rng, **extra))
    return logs


# Of the visits whose window has closed, the share the patient came to; the rest were missed.
COMPLETED_SHARE = 0.85
# An upcoming visit this close is often booked already; later ones are only planned.
BOOKING_AHEAD_DAYS = 42
BOOKED_SHARE = 0.6


# The front desk rebooks a missed visit this many days after its window closed. Those missed long
# ago were all rebooked and, in the end, attended; of the recent ones, some still wait for a call.
REBOOKED_AFTER_DAYS = (3, 14)
RECENT_MISS_DAYS = 60
RECENT_REBOOKED_SHARE = 0.5


class _GradedLog(NamedTuple):
    """What ``planning._palsy_anchor`` reads of an assessment. The logs are not saved yet, so the
    id is their place in the batch, which orders them as the ids both writers give them."""

    assessed_on: date
    house_brackmann_grade: int
    pk: int


def demo_visits_for(batch: SeededBatch, logs: list[Assessment], steps_by_kind: dict) -> list[Visit]:
    """The protocol visits of the batch's patients, unsaved, in a fixed order."""
    treatments_of, diagnoses_of, graded_of = defaultdict(list), defaultdict(list), defaultdict(list)
    for treatment in batch.treatments:
        treatments_of[treatment.patient_id].append(treatment)
    for diagnosis in batch.diagnoses:
        diagnoses_of[diagnosis.patient_id].append(diagnosis)
    for place, log in enumerate(logs):
        if log.house_brackmann_grade is not None:
            graded_of[log.patient.pk].append(_GradedLog(log.assessed_on, log.house_brackmann_grade, place))
    steps = {step.pk: step for kind_steps in steps_by_kind.values() for step in kind_steps}
    visits = []
    for patient in batch.patients:
        rng = batch.random_for(patient, "visits")
        for owner, past in _owners(
            patient,
            treatments_of[patient.pk],
            diagnoses_of[patient.pk],
            graded_of[patient.pk],
            steps_by_kind,
            today=batch.today,
        ):
            for occurrence in owner.wanted.values():
                closed = occurrence.window_end < batch.today
                if closed != past:
                    continue
                visit = planning.new_visit(patient, owner, occurrence)
                # The step itself, not only its id, so that the COPY writer never fetches it.
                visit.protocol_step = steps[occurrence.step_id]
                visit.status = _status(occurrence, rng, today=batch.today)
                visits.append(visit)
    return visits


def _status(occurrence, rng: random.Random, *, today: date) -> str:
    if occurrence.window_end < today:
        return VisitStatus.COMPLETED if rng.random() < COMPLETED_SHARE else VisitStatus.MISSED
    ahead = (occurrence.scheduled_on - today).days
    if 0 <= ahead <= BOOKING_AHEAD_DAYS and rng.random() < BOOKED_SHARE:
        return VisitStatus.BOOKED
    return VisitStatus.PLANNED


def _owners(patient, treatments, diagnoses, graded, steps_by_kind, *, today):
    """(owner, past) pairs: the planner's owners of today, whose visits with an open window are
    the upcoming ones, and the owners whose closed-window visits are the history.

    Today's owners are ``planning.owners_from`` on the rows in memory. Where an owner no longer
    asks for visits today (a stopped course, a treated diagnosis, an archived patient) its history
    comes from the owner it was while it applied, up to the day it stopped applying.
    """
    treatments = sorted(treatments, key=lambda t: (t.started_on, t.pk))
    owners_now = planning.owners_from(patient, treatments, diagnoses, graded, steps_by_kind, today=today)
    next_on = planning.next_start_of_same_kind(treatments)
    archived_on = timezone.localdate(patient.archived_at) if patient.archived else None

    def pairs(now, then, stopped_on):
        yield now, False
        if then is None:
            yield now, True
        else:
            then.wanted = {
                key: occurrence
                for key, occurrence in then.wanted.items()
                if stopped_on is None or occurrence.scheduled_on < stopped_on
            }
            yield then, True

    for treatment, now in zip(treatments, owners_now[: len(treatments)], strict=True):
        arguments = {"today": today, "next_same_kind_on": next_on[treatment.pk], "assessments": graded}
        kind_steps = steps_by_kind.get(treatment.kind, [])
        then, stopped_on = None, archived_on
        if treatment.status == TreatmentStatus.STOPPED:
            # While it ran, a stopped course asked for what a course that ended that day asks for.
            ran = copy.copy(treatment)
            ran.status = TreatmentStatus.COMPLETED
            then = planning.treatment_owner(ran, kind_steps, stopped=None, **arguments)
            then.treatment = treatment
            ended_after = treatment.ended_on + timedelta(days=1) if treatment.ended_on else None
            stopped_on = min(filter(None, (archived_on, ended_after)), default=None)
        elif patient.archived:
            then = planning.treatment_owner(treatment, kind_steps, stopped=None, **arguments)
        yield from pairs(now, then, stopped_on)

    first_treated_on = {}
    for treatment in treatments:
        if treatment.status != TreatmentStatus.ENTERED_IN_ERROR:
            first_treated_on.setdefault(treatment.diagnosis_id, treatment.started_on)
    for diagnosis, now in zip(diagnoses, owners_now[len(treatments) :], strict=True):
        treated_on = first_treated_on.get(diagnosis.pk)
        then = None
        if treated_on is not None or patient.archived:
            then = planning.untreated_owner(
                diagnosis, steps_by_kind.get("", []), today=today, treated=False, stopped=None
            )
        stopped_on = min(filter(None, (archived_on, treated_on)), default=None)
        yield from pairs(now, then, stopped_on)


def demo_rebookings_for(batch: SeededBatch, visits: list[Visit]) -> list[Visit]:
    """The visits booked for missed ones among ``visits`` (saved already: they are linked to)."""
    rebooked, rngs = [], {}
    for missed in visits:
        patient = missed.patient
        if missed.status != VisitStatus.MISSED or patient.archived:
            continue
        recent = (batch.today - missed.window_end).days <= RECENT_MISS_DAYS
        stopped = missed.treatment is not None and missed.treatment.status == TreatmentStatus.STOPPED
        if recent and stopped:  # nobody books a review of a course just stopped
            continue
        rng = rngs.setdefault(patient.pk, batch.random_for(patient, "rebookings"))
        if recent and rng.random() >= RECENT_REBOOKED_SHARE:
            continue
        on = missed.window_end + timedelta(days=rng.randint(*REBOOKED_AFTER_DAYS))
        if on >= batch.today:
            status = VisitStatus.BOOKED
        elif recent and rng.random() >= COMPLETED_SHARE:
            status = VisitStatus.MISSED
        else:
            status = VisitStatus.COMPLETED
        at = timezone.make_aware(datetime.combine(on, timezone.localtime(missed.scheduled_for).time()))
        rebooked.append(services.rebooking_of(missed, scheduled_for=at, status=status))
    return rebooked


def _link_logs(visits: list[Visit], logs: list[Assessment]) -> None:
    """A completed visit takes the patient's symptom log of its day, when there is one."""
    unlinked = {}
    for log in logs:
        unlinked.setdefault((log.patient.pk, log.assessed_on), []).append(log)
    for visit in visits:
        if visit.status != VisitStatus.COMPLETED:
            continue
        waiting = unlinked.get((visit.patient.pk, visit.anchor_on + timedelta(days=visit.protocol_day)))
        if waiting:
            waiting.pop(0).visit = visit


@receiver(demo_batch_seeded, dispatch_uid="followups.demo_follow_up")
def _add_demo_follow_up(sender, batch: SeededBatch, **kwargs):
    # Visits first, from the logs in memory (a facial palsy series follows their grades), so
    # that the logs, written after them, can name the visit they were taken at.
    logs = demo_logs_for(batch)
    visits = demo_visits_for(batch, logs, planning.steps_by_kind())
    batch.write(Visit, visits)
    rebooked = demo_rebookings_for(batch, visits)
    batch.write(Visit, rebooked)
    _link_logs(visits, logs)
    Assessment.objects.bulk_create(logs)
    return {"visits": len(visits) + len(rebooked), "assessments": len(logs)}
