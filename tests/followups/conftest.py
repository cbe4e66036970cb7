"""Helpers shared by the tests of planning, visits, worklists and flags.

Records are made through the services (tests/factories.py), so follow-up answers each change in
its transaction exactly as it does in production. Dates are chosen relative to the clinic's
today, so that "already closed" and "still ahead" mean the same thing to the test and the code.
"""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from followups import services as followups
from followups.codes import VisitSource, VisitStatus
from followups.models import PatientFlag, Visit
from followups.runs.chunks import run_work_here
from followups.runs.starting import nightly_run_start
from followups.visit_moves import visit_move
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


def night(day: date):
    """The nightly run for ``day``, worked through in this process (beat starts it on a worker):
    the worklists read what it stores. Once a day: asked again, it finds that day's run done."""
    run, _ = nightly_run_start(today=day)
    return run_work_here(run=run)


def local(when: datetime) -> datetime:
    return when.astimezone(ZoneInfo(settings.CLINIC_TIME_ZONE))


def at_clinic(on: date, hour: int = 11) -> datetime:
    """An aware date-time on ``on`` in the clinic's time zone."""
    return datetime.combine(on, time(hour), tzinfo=ZoneInfo(settings.CLINIC_TIME_ZONE))


# --- moving a visit (DOMAIN.md section 2) -------------------------------------------------------
# A visit is completed from its own day on and missed only once it has passed: these moves take
# the clock (``now``) from the visit's own dates, so a visit planned ahead can still be moved.


def passed(visit) -> datetime:
    """A moment once ``visit`` has passed: the morning after its window closed and after its
    appointment, whichever is later (read from the database, so a stale copy will do)."""
    stored = Visit.objects.get(pk=visit.pk)
    last = max(stored.window_end, timezone.localdate(stored.scheduled_for))
    return at_clinic(last + days(1), 9)


def book(visit, when: datetime, **kwargs) -> Visit:
    return visit_move(visit=visit, to=VisitStatus.BOOKED, scheduled_for=when, **kwargs)


def unbook(visit) -> Visit:
    return visit_move(visit=visit, to=VisitStatus.PLANNED)


def complete(visit, now: datetime | None = None, **kwargs) -> Visit:
    """Complete ``visit`` as on the day after it (or at ``now``)."""
    return visit_move(visit=visit, to=VisitStatus.COMPLETED, now=now or passed(visit), **kwargs)


def mark_missed(visit, now: datetime | None = None, **kwargs) -> Visit:
    """Mark ``visit`` missed as on the day after it has passed (or at ``now``)."""
    return visit_move(visit=visit, to=VisitStatus.MISSED, now=now or passed(visit), **kwargs)


def cancel(visit, reason: str = "The patient moved away.") -> Visit:
    return visit_move(visit=visit, to=VisitStatus.CANCELLED, reason=reason)


def record_counts() -> dict[str, int]:
    """Rows of every table of follow-up and of the clinical record, history tables included: a visit
    that changes writes a history row, so equal counts mean nothing was written."""
    return {
        model._meta.label: model._default_manager.count()
        for label in ("patients", "followups")
        for model in apps.get_app_config(label).get_models()
    }


def refused(call, expected: dict[str, list[tuple[str, str]]]) -> ValidationError:
    """Call a service that must refuse: exactly the ``expected`` fields, each with its
    ``(message, code)`` pairs, and nothing at all written."""
    before = record_counts()
    with pytest.raises(ValidationError) as error:
        call()
    assert record_counts() == before
    assert {
        field: [(e.messages[0], e.code) for e in errors] for field, errors in error.value.error_dict.items()
    } == expected
    return error.value


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
