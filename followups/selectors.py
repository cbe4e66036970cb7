"""Reads that staff pages and the API share: worklists and outcomes.

Each answers a queryset that fetches what a page shows in a fixed number of queries, whatever
the page size: the patient (and treatment) come joined, never one query per row.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.db.models import QuerySet
from django.utils import timezone

from followups.codes import VisitStatus
from followups.flags import overdue_visits_filter
from followups.models import PatientFlag, TreatmentOutcome, Visit
from patients.models import Patient


def _start_of(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


def worklist_due(*, days: int, today: date | None = None) -> QuerySet[Visit]:
    """Planned or booked visits from today through the next ``days`` days, soonest first."""
    today = today or timezone.localdate()
    return (
        Visit.objects.filter(
            status__in=(VisitStatus.PLANNED, VisitStatus.BOOKED),
            scheduled_for__gte=_start_of(today),
            scheduled_for__lt=_start_of(today + timedelta(days=days + 1)),
            patient__archived=False,
        )
        .select_related("patient", "treatment")
        .order_by("scheduled_for", "id")
    )


def worklist_overdue(*, today: date | None = None) -> QuerySet[Visit]:
    """Missed visits nobody rebooked, and planned visits whose window has closed, oldest first."""
    today = today or timezone.localdate()
    return (
        Visit.objects.filter(overdue_visits_filter(today), patient__archived=False)
        .select_related("patient", "treatment")
        .order_by("window_end", "id")
    )


def worklist_flagged(*, code: str | None = None) -> QuerySet[PatientFlag]:
    """Flags a clinician should see, longest-standing first."""
    flags = PatientFlag.objects.filter(patient__archived=False).select_related("patient")
    if code:
        flags = flags.filter(code=code)
    return flags.order_by("since", "id")


def outcomes_for_patient(*, patient: Patient) -> QuerySet[TreatmentOutcome]:
    return (
        TreatmentOutcome.objects.filter(treatment__patient=patient)
        .select_related("treatment", "baseline", "current")
        .order_by("treatment__started_on", "treatment_id")
    )
