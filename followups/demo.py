"""Demo follow-up history for seeded patients: the symptom logs a clinic would have recorded.

Answers ``patients.demo.demo_batch_seeded``: for each seeded treatment it writes a baseline log
before it and the logs of the visits after it, shaped the way DOMAIN.md describes recovery (MVD
mostly cured, a quarter of cures delayed, a few recurrences; toxin effects that wear off by the
re-injection visit; modest, fading drug effects). Bulk inserts like the rest of the seed, so no
history rows. Future visits, outcomes and flags are not written here: ``follow_up_refresh``
computes them through the real planning (``make run`` calls it after seeding).
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

from django.dispatch import receiver

from followups.models import Assessment
from patients.codes import TreatmentKind, TreatmentStatus
from patients.demo import SeededBatch, demo_batch_seeded

# Day 3 is the ward's log before discharge: without a log within 7 days of surgery every cure
# would count as delayed (DOMAIN.md section 7, rule 3).
MVD_LOG_DAYS = (3, 10, 30, 90, 180, 365, 730, 1095, 1460, 1825)
TOXIN_LOG_DAYS = (21, 84)
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
        best = rng.uniform(0.1, 0.5)
        return lambda day: best if day < 60 else min(0.9, best + 0.4)
    effect = rng.uniform(0.55, 1.0)
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
            if treatment.kind == TreatmentKind.MVD:
                extra["house_brackmann_grade"] = rng.choice((2, 3)) if palsy and day <= 30 else 1
            logs.append(_log(patient, on, baseline * course(day), baseline_grade, rng, **extra))
    return logs


@receiver(demo_batch_seeded, dispatch_uid="followups.demo_logs")
def _add_demo_logs(sender, batch: SeededBatch, **kwargs):
    logs = Assessment.objects.bulk_create(demo_logs_for(batch))
    return {"assessments": len(logs)}
