"""Helpers shared by the tests of planning, visits, worklists and flags.

Records are made through the services (tests/factories.py), so follow-up answers each change in
its transaction exactly as it does in production. Dates are chosen relative to the clinic's
today, so that "already closed" and "still ahead" mean the same thing to the test and the code.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.utils import timezone

from followups import services as followups
from followups.codes import VisitSource, VisitStatus
from followups.models import PatientFlag, Visit
from patients import codes
from tests.factories import PatientFactory, diagnosis_for, treatment_for

MED = codes.TreatmentKind.MEDICATION
TOXIN = codes.TreatmentKind.BOTULINUM_TOXIN
MVD = codes.TreatmentKind.MVD


def days(n: int) -> timedelta:
    return timedelta(days=n)


@pytest.fixture
def today() -> date:
    return timezone.localdate()


@pytest.fixture
def recent_diagnosis(patient, today):
    """A confirmed primary diagnosis of 30 days ago: recent enough that its 180-day review is ahead."""
    return diagnosis_for(patient, diagnosed_on=today - days(30))


def local(when: datetime) -> datetime:
    return when.astimezone(ZoneInfo(settings.CLINIC_TIME_ZONE))


def at_clinic(on: date, hour: int = 11) -> datetime:
    """An aware date-time on ``on`` in the clinic's time zone."""
    return datetime.combine(on, time(hour), tzinfo=ZoneInfo(settings.CLINIC_TIME_ZONE))


def protocol_visits(owner=None, *, patient=None, statuses=None):
    """Protocol visits of a treatment (or, with ``patient=``, of a patient), soonest first."""
    visits = Visit.objects.filter(source=VisitSource.PROTOCOL)
    visits = visits.filter(patient=patient) if patient is not None else visits.filter(treatment=owner)
    if statuses is not None:
        visits = visits.filter(status__in=statuses)
    return list(visits.select_related("protocol_step").order_by("scheduled_for", "protocol_step__code", "id"))


def live(owner=None, *, patient=None):
    """Protocol visits that still stand: everything but the cancelled ones."""
    return [v for v in protocol_visits(owner, patient=patient) if v.status != VisitStatus.CANCELLED]


def plan(visits):
    """Visits as (step code, protocol day, local visit date, window start, window end)."""
    return [
        (v.protocol_step.code, v.protocol_day, local(v.scheduled_for).date(), v.window_start, v.window_end)
        for v in visits
    ]


def expected(anchor: date, *rows):
    """Rows of (step code, day, days before, days after) as ``plan`` shows them from ``anchor``."""
    return [
        (code, day, anchor + days(day), anchor + days(day - before), anchor + days(day + after))
        for code, day, before, after in rows
    ]


def snapshot(patient):
    """Every visit of the patient with everything planning could change, to compare before/after."""
    return list(
        Visit.objects.filter(patient=patient)
        .order_by("pk")
        .values_list(
            "pk",
            "status",
            "scheduled_for",
            "window_start",
            "window_end",
            "cancel_reason",
            "sequence",
            "updated_at",
            "protocol_step_id",
            "anchor_on",
            "protocol_day",
        )
    )


def visit_history_count(patient) -> int:
    return Visit.history.filter(patient_id=patient.pk).count()


def flags_of(patient, code=None):
    rows = PatientFlag.objects.filter(patient=patient)
    if code is not None:
        rows = rows.filter(code=code)
    return list(rows.order_by("code", "subject"))


def flag_codes(patient) -> set[str]:
    return {f.code for f in flags_of(patient)}


def record_mvd(diagnosis, started_on, **overrides):
    return treatment_for(diagnosis, MVD, started_on=started_on, **overrides)


def record_toxin(diagnosis, started_on, **overrides):
    return treatment_for(diagnosis, TOXIN, started_on=started_on, **overrides)


def record_course(diagnosis, started_on, drug=codes.Drug.CARBAMAZEPINE, dose="400", **overrides):
    return treatment_for(
        diagnosis, MED, started_on=started_on, medication={"drug": drug, "daily_dose_mg": dose}, **overrides
    )


def record_log(patient, on, **measures):
    """An assessment (a symptom log, a House-Brackmann grade...) through its service."""
    return followups.assessment_record(patient=patient, assessed_on=on, **measures)


@pytest.fixture
def make_patient(db):
    """A new patient with a recent confirmed primary diagnosis: ``(patient, diagnosis)``."""

    def make(diagnosed_days_ago=30, **patient_fields):
        patient = PatientFactory(**patient_fields)
        return patient, diagnosis_for(patient, diagnosed_on=timezone.localdate() - days(diagnosed_days_ago))

    return make
