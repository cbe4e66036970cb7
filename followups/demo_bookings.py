"""The demo clinic's appointments in its sessions: the seed books its upcoming visits at times of its
own, before any session exists; this gives each a place in a slot of its kind, so that the day and
week views of ``make run`` show a believable clinic (and no appointment sits outside the clinic's
hours). For the demo only: a clinic's real bookings are made by staff and patients."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.utils import timezone

from followups import booking
from followups.codes import VisitStatus
from followups.models import Visit
from followups.visit_moves import visit_move


def demo_bookings_into_slots(*, now=None) -> tuple[int, int]:
    """Move each upcoming booked visit that holds no slot into the free slot of its kind nearest its
    time on the same day, else the first one inside its window; answer (placed, left as they were)."""
    now = now or timezone.now()
    placed = left = 0
    upcoming = Visit.objects.filter(status=VisitStatus.BOOKED, slot__isnull=True, scheduled_for__gt=now)
    for visit in upcoming.select_related("patient").order_by("scheduled_for", "pk"):
        free = booking.free_slots_for(visit, now=now)
        day = timezone.localdate(visit.scheduled_for)
        same_day = sorted(
            free.filter(session__on=day), key=lambda slot: abs(slot.starts_at - visit.scheduled_for)
        )
        slot = (
            same_day[0]
            if same_day
            else free.filter(session__on__range=(visit.window_start, visit.window_end)).first()
        )
        if slot is None:
            left += 1
            continue
        try:
            visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot, confirm_outside_window=True)
            placed += 1
        except ValidationError:  # archived patient, or a slot another visit took first
            left += 1
    return placed, left
