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
    FilteredRelation,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Greatest, Least, TruncDate
from django.db.models.lookups import LessThanOrEqual
from django.utils import timezone

from clinic.day_numbers import DayNumber, day_number
from followups.codes import CallReason, ContactOutcome, FlagCode, VisitStatus
from followups.models import ContactAttempt, PatientFlag, Visit
from followups.predicates import in_follow_up, lost_to_follow_up, overdue_as_stored
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


def _half_gone_or_sent_back(today: date, prefix: str = "") -> Q:
    """Planned visits not booked, their window open, with half of it gone or sent back by the
    clinic's cancelled session (section 12), as a condition on visits (``prefix``: the path to
    them). Half the window gone: the sum of its day numbers (the expression of the index
    followups_visit_half_window) against twice today's; its first day is then past too."""
    halfway = DayNumber(f"{prefix}window_start") + DayNumber(f"{prefix}window_end")
    return Q(**{f"{prefix}status": VisitStatus.PLANNED, f"{prefix}window_end__gte": today}) & (
        Q(LessThanOrEqual(halfway, 2 * day_number(today)))
        | Q(**{f"{prefix}clinic_cancelled_at__isnull": False})
    )


def _listed(today: date, *, overdue_only: bool) -> list[Q]:
    """The reasons a visit puts its patient on the list, as conditions on visits, each answered
    through an index of its own (issue 18): overdue (missed and not rebooked, planned past the
    window) as stored (``overdue_as_stored``), and, for the call list, the planned visits of
    ``_half_gone_or_sent_back``, until their window closes."""
    return [overdue_as_stored()] if overdue_only else [overdue_as_stored(), _half_gone_or_sent_back(today)]


def _listed_patients(today: date, *, overdue_only: bool) -> Q:
    """Patients with a visit on the list: one set per reason, each found through its index and
    hashed, never a test of every visit (measured at 100,000 patients in bench/staff.py)."""
    chosen = Q()
    for reason in _listed(today, overdue_only=overdue_only):
        chosen |= Q(pk__in=Visit.objects.filter(reason).values("patient_id"))
    return chosen


def _due_since(prefix: str = ""):
    """The day a listed visit fell due. Missed: the day it was missed, as the missed-visit e-mail
    counts it (the window's end, or the appointment's day when booked after its window); otherwise
    the window's end."""
    zone = ZoneInfo(settings.CLINIC_TIME_ZONE)
    return Case(
        When(
            **{f"{prefix}status": VisitStatus.MISSED},
            then=Greatest(F(f"{prefix}window_end"), TruncDate(f"{prefix}scheduled_for", tzinfo=zone)),
        ),
        default=F(f"{prefix}window_end"),
        output_field=DateField(),
    )


def _due_visits(today: date, *, overdue_only: bool) -> QuerySet[Visit]:
    """The visits that put a patient on the list (``_listed``), each with its reason and the day
    it fell due."""
    listed = Q()
    for reason in _listed(today, overdue_only=overdue_only):
        listed |= reason
    return Visit.objects.filter(listed).annotate(
        due_since=_due_since(),
        reason=Case(
            When(status=VisitStatus.MISSED, then=Value(CallReason.MISSED)),
            When(window_end__lt=today, then=Value(CallReason.WINDOW_CLOSED)),
            When(clinic_cancelled_at__isnull=False, then=Value(CallReason.CLINIC_CANCELLED)),
            default=Value(CallReason.NOT_BOOKED),
            output_field=CharField(),
        ),
    )


NEVER = date(9999, 12, 31)


def _with_due_since(patients: QuerySet[Patient], today: date, *, overdue_only: bool) -> QuerySet[Patient]:
    """``due_since``, the day the patient's longest-due listed visit fell due (the list's order),
    as one aggregate over joins that hold the listed visits only (a hash join and a group, tens of
    milliseconds for 13,000 listed patients), not a subquery per patient (0.9 s at 100,000)."""
    patients = patients.annotate(
        overdue_flag=FilteredRelation("flags", condition=Q(flags__code=FlagCode.OVERDUE_FOLLOW_UP))
    )
    due_since = Min(_due_since("overdue_flag__visit__"))
    if not overdue_only:
        patients = patients.annotate(
            open_visit=FilteredRelation("visits", condition=_half_gone_or_sent_back(today, "visits__"))
        )
        # Either join may hold nothing for the patient: SQLite's two-argument MIN is NULL then.
        due_since = Least(
            Coalesce(due_since, Value(NEVER)), Coalesce(Min("open_visit__window_end"), Value(NEVER))
        )
    return patients.annotate(due_since=due_since)


def _annotated(patients: QuerySet[Patient], today: date, *, overdue_only: bool) -> QuerySet[Patient]:
    now = timezone.now()
    due = _due_visits(today, overdue_only=overdue_only)
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
    return (
        _with_due_since(patients, today, overdue_only=overdue_only)
        .annotate(
            due_visit_id=Subquery(due.values("pk")[:1]),
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
        )
        .order_by("unreachable", "-high_risk", "due_since", "pk")
    )


def call_list_patients(*, today: date | None = None) -> QuerySet[Patient]:
    """Who is on the front desk's call list, in no order and without what its rows show: for
    counting (the dashboard's tile, the pages' paginators), which then costs a join of a few
    hashed sets instead of the list's order (``call_list``)."""
    today = today or timezone.localdate()
    later_attempt = ContactAttempt.objects.filter(patient=OuterRef("patient"), at__gt=OuterRef("at"))
    snoozed = ContactAttempt.objects.filter(outcome=ContactOutcome.CALL_LATER, remind_on__gt=today).filter(
        ~Exists(later_attempt)
    )
    patients = Patient.objects.filter(in_follow_up(prefix=""), _listed_patients(today, overdue_only=False))
    return patients.exclude(pk__in=snoozed.values("patient_id"))


def call_list(*, today: date | None = None) -> QuerySet[Patient]:
    """The front desk's call list: every patient in follow-up with a visit overdue, not booked
    with half its window passed, or sent back by a cancelled session; those who asked to be called
    later are hidden until that day (an attempt since brings them back). In the list's order,
    with what its rows show."""
    today = today or timezone.localdate()
    return _annotated(call_list_patients(today=today), today, overdue_only=False)


def lost_to_follow_up_patients(*, today: date | None = None, days: int | None = None) -> QuerySet[Patient]:
    """Who is lost to follow-up (section 9), in no order: for counting. ``days``: no attended visit
    for that long. For the clinic's own setting, those whose last refresh stored the flag (the
    nightly run turns it on by date); for another span asked for, the rule itself over every
    patient's visits (``predicates.lost_to_follow_up``; slower)."""
    today = today or timezone.localdate()
    if days is None or days == settings.LOST_TO_FOLLOW_UP_DAYS:
        lost = Q(pk__in=PatientFlag.objects.filter(code=FlagCode.LOST_TO_FOLLOW_UP).values("patient_id"))
    else:
        # The row shows the visit overdue longest as stored: a patient the rule finds overdue
        # before their refresh stored it (between midnight and the night's run) waits for it.
        overdue = PatientFlag.objects.filter(code=FlagCode.OVERDUE_FOLLOW_UP).values("patient_id")
        lost = lost_to_follow_up(today, days) & Q(pk__in=overdue)
    return Patient.objects.filter(in_follow_up(prefix=""), lost)


def lost_to_follow_up_list(*, today: date | None = None, days: int | None = None) -> QuerySet[Patient]:
    """Patients lost to follow-up (``lost_to_follow_up_patients``), in the call list's order, with
    the visit overdue longest."""
    today = today or timezone.localdate()
    return _annotated(lost_to_follow_up_patients(today=today, days=days), today, overdue_only=True)


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
