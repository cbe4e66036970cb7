"""The call list and the lost-to-follow-up list (DOMAIN.md section 9).

Both answer patients, one row each, annotated with what the row shows and in the list's order, in
one query whatever the list's length; ``call_rows`` turns a page of them into rows with the visit
due in one more query. The order: reachable patients first, then clinical risk, then the longest
overdue, then the patient's id (a stable order for paging).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    DateField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Greatest, TruncDate
from django.utils import timezone

from followups.codes import CallReason, ContactOutcome, FlagCode, VisitStatus
from followups.models import ContactAttempt, PatientFlag, Visit
from followups.predicates import in_follow_up, lost_to_follow_up, overdue_visits_filter
from patients.codes import TreatmentKind, TreatmentStatus
from patients.models import Patient, Treatment

HIGH_RISK_AFTER_MVD_DAYS = 90
HIGH_RISK_FLAGS = (
    FlagCode.RECURRENCE_AFTER_MVD,
    FlagCode.FACIAL_PALSY_AFTER_MVD,
    FlagCode.CONSIDER_MVD_EVALUATION,
)
UNANSWERED = (ContactOutcome.NO_ANSWER, ContactOutcome.LEFT_MESSAGE)
UNREACHABLE_AFTER = 3  # unanswered attempts ...
UNREACHABLE_WITHIN = timedelta(days=30)  # ... within this long, with no other answer since


class DayNumber(Func):
    """A date column as a number of days (since 1970-01-01), on PostgreSQL and SQLite alike: the
    ORM spells date arithmetic differently on the two, and "half the window passed" needs it."""

    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(%(expressions)s - DATE '1970-01-01')", **extra)

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="CAST(julianday(%(expressions)s) - 2440587.5 AS INTEGER)", **extra
        )


def _day_number(day: date) -> int:
    return (day - date(1970, 1, 1)).days


def _due_visits(today: date, *, overdue_only: bool) -> QuerySet[Visit]:
    """The visits that put a patient on the list, each with its reason and the day it fell due.

    Overdue ones (missed and not rebooked, planned past the window: ``overdue_visits_filter``) and,
    for the call list, planned ones whose window has half passed without a booking and those the
    clinic's cancelled session sent back (section 12), until their window closes."""
    listed = overdue_visits_filter(today)
    if not overdue_only:
        open_unbooked = Q(status=VisitStatus.PLANNED, window_end__gte=today)
        half_passed = Q(window_start__lte=today, halfway__lte=2 * _day_number(today))
        # A visit the clinic's cancelled session sent back is called at once, its window open or not.
        listed |= open_unbooked & (half_passed | Q(clinic_cancelled_at__isnull=False))
    zone = ZoneInfo(settings.CLINIC_TIME_ZONE)
    return (
        Visit.objects.annotate(halfway=DayNumber("window_start") + DayNumber("window_end"))
        .filter(listed)
        .annotate(
            due_since=Case(
                # The day it was missed, as the missed-visit e-mail counts it: the window's end, or
                # the appointment's day when it was booked after its window.
                When(
                    status=VisitStatus.MISSED,
                    then=Greatest(F("window_end"), TruncDate("scheduled_for", tzinfo=zone)),
                ),
                default=F("window_end"),
                output_field=DateField(),
            ),
            reason=Case(
                When(status=VisitStatus.MISSED, then=Value(CallReason.MISSED)),
                When(window_end__lt=today, then=Value(CallReason.WINDOW_CLOSED)),
                When(clinic_cancelled_at__isnull=False, then=Value(CallReason.CLINIC_CANCELLED)),
                default=Value(CallReason.NOT_BOOKED),
                output_field=CharField(),
            ),
        )
    )


def _annotated(patients: QuerySet[Patient], due: QuerySet[Visit], today: date) -> QuerySet[Patient]:
    now = timezone.now()
    due = due.filter(patient=OuterRef("pk")).order_by("due_since", "pk")
    attempts = ContactAttempt.objects.filter(patient=OuterRef("pk")).order_by("-at", "-pk")
    # Only reaching someone resets the count: a wrong number reached no one either.
    answered_later = ContactAttempt.objects.filter(
        patient=OuterRef("patient"), at__gt=OuterRef("at")
    ).exclude(outcome__in=(*UNANSWERED, ContactOutcome.WRONG_NUMBER))
    unanswered = (
        ContactAttempt.objects.filter(
            patient=OuterRef("pk"), outcome__in=UNANSWERED, at__gte=now - UNREACHABLE_WITHIN
        )
        .filter(~Exists(answered_later))
        .values("patient")
        .annotate(n=Count("pk"))
        .values("n")
    )
    after_mvd = Treatment.objects.filter(
        patient=OuterRef("pk"),
        kind=TreatmentKind.MVD,
        status__in=(TreatmentStatus.ACTIVE, TreatmentStatus.COMPLETED),
        started_on__gt=today - timedelta(days=HIGH_RISK_AFTER_MVD_DAYS),
        started_on__lte=today,
    )
    risk_flag = PatientFlag.objects.filter(patient=OuterRef("pk"), code__in=HIGH_RISK_FLAGS)
    return patients.annotate(
        due_visit_id=Subquery(due.values("pk")[:1]),
        due_since=Subquery(due.values("due_since")[:1], output_field=DateField()),
        call_reason=Subquery(due.values("reason")[:1], output_field=CharField()),
        high_risk=Case(
            When(Exists(after_mvd) | Exists(risk_flag), then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
        unanswered=Subquery(unanswered, output_field=IntegerField()),
        unreachable=Case(
            When(unanswered__gte=UNREACHABLE_AFTER, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        ),
        last_attempt_at=Subquery(attempts.values("at")[:1]),
        last_attempt_channel=Subquery(attempts.values("channel")[:1]),
        last_attempt_outcome=Subquery(attempts.values("outcome")[:1]),
    ).order_by("unreachable", "-high_risk", "due_since", "pk")


def call_list(*, today: date | None = None) -> QuerySet[Patient]:
    """The front desk's call list: every patient in follow-up with a visit overdue, not booked
    with half its window passed, or sent back by a cancelled session; those who asked to be called
    later are hidden until that day (an attempt since brings them back)."""
    today = today or timezone.localdate()
    due = _due_visits(today, overdue_only=False)
    later_attempt = ContactAttempt.objects.filter(patient=OuterRef("patient"), at__gt=OuterRef("at"))
    snoozed = ContactAttempt.objects.filter(outcome=ContactOutcome.CALL_LATER, remind_on__gt=today).filter(
        ~Exists(later_attempt)
    )
    # Sets of ids rather than a test per patient: the database finds the few visits due through
    # their status indexes and hashes them, instead of reading every patient's visits (measured
    # at 100,000 patients in bench/calls.py).
    patients = Patient.objects.filter(in_follow_up(prefix=""), pk__in=due.values("patient_id")).exclude(
        pk__in=snoozed.values("patient_id")
    )
    return _annotated(patients, due, today)


def lost_to_follow_up_list(*, today: date | None = None, days: int | None = None) -> QuerySet[Patient]:
    """Patients lost to follow-up (section 9), in the call list's order, with the visit overdue
    longest. ``days``: no attended visit for that long (the clinic's setting by default)."""
    today = today or timezone.localdate()
    days = days or settings.LOST_TO_FOLLOW_UP_DAYS
    patients = Patient.objects.filter(in_follow_up(prefix=""), lost_to_follow_up(today, days))
    return _annotated(patients, _due_visits(today, overdue_only=True), today)


@dataclass(frozen=True)
class LastAttempt:
    at: datetime
    channel: str
    outcome: str


@dataclass(frozen=True)
class CallRow:
    """One patient on a list, as the call-list page, the API and the CSV show it."""

    patient: Patient
    visit: Visit
    reason: str
    days_overdue: int
    high_risk: bool
    unreachable: bool
    last_attempt: LastAttempt | None


def call_rows(patients, *, today: date | None = None) -> list[CallRow]:
    """Rows for a page of ``call_list`` or ``lost_to_follow_up_list`` patients: one query for
    their visits, whatever the page's length."""
    today = today or timezone.localdate()
    patients = list(patients)
    visits = Visit.objects.in_bulk([p.due_visit_id for p in patients])
    return [
        CallRow(
            patient=p,
            visit=visits[p.due_visit_id],
            reason=p.call_reason,
            days_overdue=max(0, (today - p.due_since).days),
            high_risk=p.high_risk,
            unreachable=p.unreachable,
            last_attempt=(
                LastAttempt(p.last_attempt_at, p.last_attempt_channel, p.last_attempt_outcome)
                if p.last_attempt_at
                else None
            ),
        )
        for p in patients
    ]
