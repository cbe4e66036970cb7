"""Predicates the clinic names, each written once and used wherever it is asked.

- "missed and not rebooked" and "overdue" (DOMAIN.md section 8): query conditions on visits,
  shared by the flag, the worklists and the dashboard so that a count and its list never disagree;
- "a facial palsy after surgery": the latest House-Brackmann grade after an MVD and before the
  next one (``next_start_after``), shared by the palsy reviews of planning and the flag.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta

from django.db.models import Exists, F, OuterRef, Q
from django.utils import timezone

from followups.codes import FlagCode, VisitStatus
from followups.models import PatientFlag, Visit

FACIAL_PALSY_FROM_GRADE = 2  # House-Brackmann II or worse


def start_of_day(day: date) -> datetime:
    """The first moment of ``day`` in the clinic's zone: where "today" and "since that day" begin."""
    return timezone.make_aware(datetime.combine(day, time.min))


def missed_not_rebooked() -> Q:
    return Q(status=VisitStatus.MISSED, rebooked_as__isnull=True)


def is_missed_not_rebooked(visit: Visit) -> bool:
    """The same for one visit in memory (load it with ``rebooked_as`` to spare a query)."""
    return visit.status == VisitStatus.MISSED and not hasattr(visit, "rebooked_as")


def overdue_visits_filter(today: date) -> Q:
    """Visits that make their patient overdue: missed and not rebooked, or planned past the window,
    unless (v2) the patient has since attended a later visit or holds a booked visit ahead."""
    start_of_today = start_of_day(today)
    seen_later = Visit.objects.filter(
        patient=OuterRef("patient"),
        status=VisitStatus.COMPLETED,
        scheduled_for__gt=OuterRef("scheduled_for"),
    )
    booked_ahead = Visit.objects.filter(
        patient=OuterRef("patient"), status=VisitStatus.BOOKED, scheduled_for__gte=start_of_today
    )
    fallen_out = missed_not_rebooked() | Q(status=VisitStatus.PLANNED, window_end__lt=today)
    return fallen_out & ~Exists(seen_later) & ~Exists(booked_ahead) & since_resumed()


def overdue_as_stored() -> Q:
    """Visits that make their patient overdue as the patient's last refresh stored it (a write, or
    the nightly run for what the calendar turns): the visits the stored overdue flags name. The
    worklists, the call list and the dashboard read this, an index away, instead of evaluating
    ``overdue_visits_filter`` over every visit of the clinic (issue 18); the flags evaluate it for
    one patient at a time."""
    return Q(pk__in=PatientFlag.objects.filter(code=FlagCode.OVERDUE_FOLLOW_UP).values("visit_id"))


def since_resumed() -> Q:
    """Visits of the follow-up under way: a visit due before follow-up was last resumed belongs to
    the follow-up that ended (DOMAIN.md section 9: resuming plans afresh as of that day)."""
    return Q(patient__follow_up_resumed_on__isnull=True) | Q(
        window_end__gte=F("patient__follow_up_resumed_on")
    )


def next_start_after(starts: Iterable[date], on: date) -> date | None:
    """The first of ``starts`` strictly after ``on``: where the next treatment of a kind begins (a
    toxin cycle and an MVD's palsy reviews end there). Starts on the same day end nothing."""
    return min((start for start in starts if start > on), default=None)


def latest_palsy_after_surgery(
    graded: Iterable, *, surgery_on: date, next_surgery_on: date | None
) -> tuple[date, int] | None:
    """The date and grade of the latest House-Brackmann grade after the surgery (a grade after a
    redo belongs to the redo) when it shows a palsy (II or worse); None otherwise.

    ``graded``: objects with ``assessed_on``, ``house_brackmann_grade`` and ``pk``."""
    after = [
        a
        for a in graded
        if a.house_brackmann_grade is not None
        and a.assessed_on > surgery_on
        and (next_surgery_on is None or a.assessed_on < next_surgery_on)
    ]
    if not after:
        return None
    latest = max(after, key=lambda a: (a.assessed_on, a.pk))
    if latest.house_brackmann_grade < FACIAL_PALSY_FROM_GRADE:
        return None
    return latest.assessed_on, latest.house_brackmann_grade


def in_follow_up(prefix: str = "patient__") -> Q:
    """Patients the clinic still follows: not archived, follow-up not ended (DOMAIN.md section 9).
    No worklist, reminder or plan reaches the others."""
    return Q(**{f"{prefix}archived": False, f"{prefix}follow_up_ended_on__isnull": True})


def lost_to_follow_up(today: date, days: int) -> Q:
    """Patients lost to follow-up (DOMAIN.md section 9), as a condition on patients: follow-up is
    due (an overdue visit), no visit attended in the last ``days`` days, and, for a patient who
    never came, a visit was due ``days`` days ago or earlier (counted from then, not from birth).
    ``followups.flags.lost_since`` is the same rule for one patient in memory."""
    cutoff = today - timedelta(days=days)
    overdue = Visit.objects.filter(overdue_visits_filter(today), patient=OuterRef("pk"))
    attended = Visit.objects.filter(patient=OuterRef("pk"), status=VisitStatus.COMPLETED)
    attended_since = attended.filter(
        scheduled_for__gte=start_of_day(cutoff + timedelta(days=1)),
    )
    due_long_ago = Visit.objects.filter(patient=OuterRef("pk"), window_start__lte=cutoff).exclude(
        status=VisitStatus.CANCELLED
    )
    # Resumed within the last ``days``: the time follow-up was ended does not count as lost.
    resumed_long_ago = Q(follow_up_resumed_on__isnull=True) | Q(follow_up_resumed_on__lte=cutoff)
    # A patient who came is counted from the last visit attended, whatever its window said.
    return (
        Exists(overdue)
        & ~Exists(attended_since)
        & (Exists(attended) | Exists(due_long_ago))
        & resumed_long_ago
    )
