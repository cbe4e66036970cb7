"""The clinic's calendar in the staff panel (DOMAIN.md section 12): the sessions of a day or a week,
each with its hours, the kinds of visit it serves, its places booked and free, and who is booked.

``clinic_calendar`` reads it in four queries whatever the number of sessions, slots and visits:
the sessions with their templates, the templates' kinds, the slots, the visits holding places
with their patients.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Prefetch

from followups.codes import VisitKind
from followups.models import ClinicSession, Slot, Visit

WEEK = 7


def week_start(on: date) -> date:
    """The Monday of ``on``'s week: the clinic's weeks start on Monday, as templates count weekdays."""
    return on - timedelta(days=on.weekday())


@dataclass(frozen=True)
class CalendarSession:
    session: ClinicSession
    kinds: list[str]
    slots: list[Slot]

    @property
    def places(self) -> int:
        return sum(slot.capacity for slot in self.slots)

    @property
    def booked(self) -> int:
        return sum(slot.booked for slot in self.slots)

    @property
    def free(self) -> int:
        return sum(slot.free for slot in self.slots)

    @property
    def visits(self) -> list[Visit]:
        """Who holds a place, in the order of the day: booked, and those completed or missed
        there (they keep their place, as the count of booked places does)."""
        return [visit for slot in self.slots for visit in slot.visits.all()]


@dataclass(frozen=True)
class CalendarDay:
    on: date
    sessions: list[CalendarSession]


@dataclass(frozen=True)
class Calendar:
    first: date
    days: list[CalendarDay]

    @property
    def last(self) -> date:
        return self.days[-1].on

    @property
    def visits(self) -> list[Visit]:
        return [visit for day in self.days for entry in day.sessions for visit in entry.visits]


def _calendar_session(session: ClinicSession) -> CalendarSession:
    rows = sorted(session.template.kind_rows.all(), key=lambda row: VisitKind.values.index(row.visit_kind))
    kinds = [row.get_visit_kind_display() for row in rows]
    return CalendarSession(session=session, kinds=kinds, slots=list(session.slots.all()))


def clinic_calendar(*, first: date, days: int = WEEK) -> Calendar:
    """The sessions of ``days`` days from ``first``, cancelled ones included (they say why)."""
    last = first + timedelta(days=days - 1)
    holding_places = Visit.objects.select_related("patient").order_by("scheduled_for", "id")
    slots = Slot.objects.order_by("starts_at", "id").prefetch_related(
        Prefetch("visits", queryset=holding_places)
    )
    sessions = (
        ClinicSession.objects.filter(on__range=(first, last))
        .select_related("template")
        .prefetch_related("template__kind_rows", Prefetch("slots", queryset=slots))
        .order_by("on", "starts_at", "label", "id")
    )
    by_day: dict[date, list[CalendarSession]] = {first + timedelta(days=n): [] for n in range(days)}
    for session in sessions:
        by_day[session.on].append(_calendar_session(session))
    return Calendar(first=first, days=[CalendarDay(on, entries) for on, entries in by_day.items()])
