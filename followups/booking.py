"""Clinic sessions and their slots (DOMAIN.md section 12): dated sessions generated from the
templates, the free slots a visit may take, and a slot's places taken and given back.

A slot's places are counted in ``Slot.booked``: taken by a conditional update that the database
refuses past the capacity (and a check constraint behind it), so two bookings racing for the last
place never both succeed, on PostgreSQL and SQLite alike. ``followups.visit_moves`` takes and
gives back places as it books, reschedules, unbooks and cancels visits.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import F
from django.utils import timezone

from followups.codes import VisitSource
from followups.models import ClinicSession, SessionTemplate, Slot, Visit

SESSIONS_AHEAD_WEEKS = 26
SUGGESTIONS = 10
# A missed visit is rebooked into the free slots of the next 30 days (DOMAIN.md section 12).
REBOOKING_DAYS = 30


def _slot_times(template: SessionTemplate, on: date) -> list[datetime]:
    zone = ZoneInfo(settings.CLINIC_TIME_ZONE)
    start = datetime.combine(on, template.starts_at, tzinfo=zone)
    end = datetime.combine(on, template.ends_at, tzinfo=zone)
    step = timedelta(minutes=template.slot_minutes)
    times = []
    while start + step <= end:
        times.append(start)
        start += step
    return times


def sessions_generate(*, today: date | None = None, templates=None) -> int:
    """The dated sessions (with their slots) of the next 26 weeks that the templates in force ask
    for and that do not exist yet; answer how many were made. Idempotent: run nightly, and at once
    when a template is created. Sessions already there are left as they are (with their bookings)."""
    today = today or timezone.localdate()
    until = today + timedelta(weeks=SESSIONS_AHEAD_WEEKS)
    templates = SessionTemplate.objects.all() if templates is None else templates
    made = 0
    for template in templates:
        first, last = max(today, template.valid_from), min(until, template.valid_to or until)
        days = [
            first + timedelta(days=n)
            for n in range((last - first).days + 1)
            if (first + timedelta(days=n)).weekday() == template.weekday
        ]
        existing = set(template.sessions.filter(on__in=days).values_list("on", flat=True))
        wanted = [day for day in days if day not in existing]
        if not wanted:
            continue
        # A concurrent run may have made some of them meanwhile: the unique constraint keeps one.
        ClinicSession.objects.bulk_create(
            [
                ClinicSession(
                    template=template,
                    on=day,
                    starts_at=template.starts_at,
                    ends_at=template.ends_at,
                    label=template.label,
                )
                for day in wanted
            ],
            ignore_conflicts=True,
        )
        sessions = list(template.sessions.filter(on__in=wanted))
        Slot.objects.bulk_create(
            [
                Slot(session=session, starts_at=starts_at, capacity=template.capacity)
                for session in sessions
                for starts_at in _slot_times(template, session.on)
            ],
            ignore_conflicts=True,
        )
        made += len(sessions)
    return made


def free_slots_for(visit: Visit, *, now: datetime | None = None):
    """The free slots a visit may take, earliest first: of sessions not cancelled that serve its
    kind, still ahead, and (for a protocol visit) not before the treatment it follows."""
    now = now or timezone.now()
    slots = Slot.objects.filter(
        session__cancelled=False,
        session__template__kind_rows__visit_kind=visit.visit_kind,
        booked__lt=F("capacity"),
        starts_at__gte=now,
    )
    if visit.source == VisitSource.PROTOCOL and visit.anchor_on:
        slots = slots.filter(session__on__gte=visit.anchor_on)
    return slots.select_related("session").order_by("starts_at", "id")


def rebooking_slots(missed: Visit, *, now: datetime | None = None):
    """The free slots that may take a missed visit's rebooking, by staff or through the patient's
    link: of sessions serving its kind, from now to 30 days ahead, earliest first."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    until = today + timedelta(days=REBOOKING_DAYS)
    return free_slots_for(missed, now=now).filter(session__on__range=(today, until))


@dataclass(frozen=True)
class Suggestion:
    slot: Slot
    inside_window: bool


def slot_suggestions(
    *, visit: Visit, now: datetime | None = None, limit: int = SUGGESTIONS
) -> list[Suggestion]:
    """Suggestions for booking a visit (DOMAIN.md section 12): the free slots inside its window,
    earliest first; when none is free inside, the nearest ones after it, marked as outside."""
    free = free_slots_for(visit, now=now)
    inside = list(free.filter(session__on__range=(visit.window_start, visit.window_end))[:limit])
    if inside:
        return [Suggestion(slot, True) for slot in inside]
    return [Suggestion(slot, False) for slot in free.filter(session__on__gt=visit.window_end)[:limit]]


def slot_unavailable_reason(slot: Slot, visit: Visit, now: datetime) -> str | None:
    """Why ``visit`` cannot take ``slot`` whatever its places, in words for the front desk."""
    if slot.session.cancelled:
        return "This session is cancelled."
    if slot.starts_at < now:
        return "This slot has passed."
    if not slot.session.template.kind_rows.filter(visit_kind=visit.visit_kind).exists():
        return f"This session does not serve {visit.get_visit_kind_display().lower()} visits."
    return None


def slot_take(slot: Slot) -> bool:
    """Take one place of the slot; False when it is full (nothing changed then)."""
    return bool(Slot.objects.filter(pk=slot.pk, booked__lt=F("capacity")).update(booked=F("booked") + 1))


def slot_give_back(slot_id: int) -> None:
    Slot.objects.filter(pk=slot_id, booked__gt=0).update(booked=F("booked") - 1)
