"""What a patient may do through the links of their e-mails, without a login (DOMAIN.md section 12).

- A **booking link** (one visit): book the planned visit into one of the free slots inside its
  window (slots only: a free time outside any session is for staff), move the booking to another
  such slot, or give it up (the visit is planned again); changes only until 24 hours before the
  appointment, later only by phone.
- A **rebooking link** (one missed visit): book, once, the visit that replaces it, in a free slot
  of a session serving its kind within the next 30 days.

Each write runs in one transaction with the patient's row locked and goes through the services
staff use (``visit_move``, ``visit_rebook``), so slots' places and reminders follow exactly as
they do for staff; a booking made here is also confirmed by e-mail with its calendar event
(``booking_confirm``: staff book with the patient present, so theirs are not). A refusal is
one ``ValidationError`` with a code of ``VisitMoveError``; the pages choose the patient's words
by that code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from clinic.errors import FieldErrors
from followups.booking import free_slots_for, rebooking_slots
from followups.codes import VisitMoveError, VisitStatus
from followups.models import Slot, Visit
from followups.predicates import is_missed_not_rebooked
from followups.services import visit_rebook
from followups.visit_moves import booking_confirm, session_lock_for, visit_move
from patients.services import patient_lock

E = VisitMoveError

# The clinic plans its day the day before: closer to the appointment, only a phone call changes it.
CHANGE_NOTICE = timedelta(hours=24)

# What a link shows the patient now.
CHOOSE = "choose"  # free slots to pick from
BOOKED = "booked"  # an appointment the patient may still move or cancel here
PHONE_ONLY = "phone_only"  # an appointment less than 24 hours away: changed by phone only
REBOOKED = "rebooked"  # the missed visit was rebooked already (a rebooking link is used once)
CLOSED = "closed"  # nothing to do online: see ``reason``

# Why a link has nothing to do online.
CANCELLED = "cancelled"
COMPLETED = "completed"
PASSED = "passed"
UNAVAILABLE = "unavailable"  # archived patient, a missed visit corrected since: nothing to explain


@dataclass(frozen=True)
class Situation:
    """What a patient's link offers now: ``state``, the visit the page is about (the rebooked
    visit once a missed one is rebooked), the slots to choose from, why it is closed."""

    state: str
    visit: Visit
    slots: list[Slot] = field(default_factory=list)
    reason: str = ""


def change_deadline(visit: Visit) -> datetime:
    return visit.scheduled_for - CHANGE_NOTICE


def may_change_online(visit: Visit, now: datetime) -> bool:
    return visit.status == VisitStatus.BOOKED and now < change_deadline(visit)


def slots_for_booking(visit: Visit, *, now: datetime):
    """The free slots a patient may book (or move) the visit into: inside its window, never the
    one it holds already."""
    slots = free_slots_for(visit, now=now).filter(
        session__on__range=(visit.window_start, visit.window_end), starts_at__gte=now + CHANGE_NOTICE
    )
    return slots.exclude(pk=visit.slot_id) if visit.slot_id else slots


def slots_for_rebooking(missed: Visit, *, now: datetime):
    return rebooking_slots(missed, now=now).filter(starts_at__gte=now + CHANGE_NOTICE)


def _closed_reason(visit: Visit, now: datetime) -> str | None:
    if visit.patient.archived or visit.patient.follow_up_ended_on is not None:
        return UNAVAILABLE
    if visit.status == VisitStatus.CANCELLED:
        return CANCELLED
    if visit.status == VisitStatus.COMPLETED:
        return COMPLETED
    if visit.status == VisitStatus.MISSED:
        return PASSED
    if visit.status == VisitStatus.BOOKED and visit.scheduled_for <= now:
        return PASSED
    if visit.status == VisitStatus.PLANNED and visit.window_end < timezone.localdate(now):
        return PASSED
    return None


def booking_situation(visit: Visit, *, now: datetime | None = None) -> Situation:
    """What a visit's booking link offers now."""
    now = now or timezone.now()
    reason = _closed_reason(visit, now)
    if reason:
        return Situation(CLOSED, visit, reason=reason)
    if visit.status == VisitStatus.PLANNED:
        return Situation(CHOOSE, visit, list(slots_for_booking(visit, now=now)))
    if may_change_online(visit, now):
        return Situation(BOOKED, visit)
    return Situation(PHONE_ONLY, visit)


def moving_situation(visit: Visit, *, now: datetime | None = None) -> Situation:
    """The free slots a booked visit may move to, while it may still change online."""
    now = now or timezone.now()
    situation = booking_situation(visit, now=now)
    if situation.state != BOOKED:
        return situation
    return Situation(CHOOSE, visit, list(slots_for_booking(visit, now=now)))


def rebooking_situation(missed: Visit, *, now: datetime | None = None) -> Situation:
    """What a missed visit's rebooking link offers now."""
    now = now or timezone.now()
    if missed.patient.archived or missed.patient.follow_up_ended_on is not None:
        return Situation(CLOSED, missed, reason=UNAVAILABLE)
    if hasattr(missed, "rebooked_as"):
        return Situation(REBOOKED, missed.rebooked_as)
    if not is_missed_not_rebooked(missed):
        return Situation(CLOSED, missed, reason=UNAVAILABLE)
    return Situation(CHOOSE, missed, list(slots_for_rebooking(missed, now=now)))


def _refuse(field_name: str, message: str, code: str):
    errors = FieldErrors()
    errors.add(field_name, message, code)
    errors.raise_if_any()


def _locked(visit: Visit) -> Visit:
    """The visit as it stands once its patient's row is locked: a second tab or a double tap
    waits here and then sees what the first one did."""
    patient_lock(visit.patient)
    return Visit.objects.select_related("patient").get(pk=visit.pk)


def _check_slot_offered(slot: Slot, offered) -> None:
    if offered.filter(pk=slot.pk).exists():
        return
    if Slot.objects.filter(pk=slot.pk, booked__gte=F("capacity")).exists():
        _refuse("slot", "This slot has just been taken: choose another.", E.SLOT_FULL)
    _refuse("slot", "This slot is not one the link offers.", E.SLOT_UNAVAILABLE)


def _check_open_to_patient(visit: Visit, now: datetime) -> None:
    if visit.patient.archived:
        _refuse("patient", "This patient is archived.", E.ARCHIVED)
    if visit.status == VisitStatus.BOOKED and not may_change_online(visit, now):
        _refuse(
            "status",
            "The appointment is less than 24 hours away: it is changed by phone only.",
            E.TOO_LATE_TO_CHANGE,
        )
    if _closed_reason(visit, now):
        _refuse("status", "This visit is not open to booking.", E.INVALID_TRANSITION)


@transaction.atomic
def booking_by_patient(*, visit: Visit, slot: Slot, now: datetime | None = None) -> Visit:
    """Book the planned visit into ``slot``, or move its booking there. Booking the slot it holds
    already changes nothing (a double tap on the button)."""
    now = now or timezone.now()
    slot = session_lock_for(slot)
    visit = _locked(visit)
    if visit.status == VisitStatus.BOOKED and visit.slot_id == slot.pk:
        return visit
    _check_open_to_patient(visit, now)
    _check_slot_offered(slot, slots_for_booking(visit, now=now))
    booked = visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot, now=now)
    booking_confirm(booked, now)
    return booked


@transaction.atomic
def booking_cancel_by_patient(*, visit: Visit, now: datetime | None = None) -> Visit:
    """Give up the booking: the visit is planned again, still due in its window. A visit planned
    already is left as it is (the cancel button sent twice)."""
    now = now or timezone.now()
    visit = _locked(visit)
    if visit.status == VisitStatus.PLANNED and not visit.patient.archived:
        return visit
    _check_open_to_patient(visit, now)
    return visit_move(visit=visit, to=VisitStatus.PLANNED, now=now)


@transaction.atomic
def rebooking_by_patient(*, missed: Visit, slot: Slot, now: datetime | None = None) -> Visit:
    """Book the visit that replaces a missed one into ``slot``; a rebooking link books once."""
    now = now or timezone.now()
    slot = session_lock_for(slot)
    missed = _locked(missed)
    if missed.patient.archived:
        _refuse("patient", "This patient is archived.", E.ARCHIVED)
    if hasattr(missed, "rebooked_as"):
        _refuse("status", "This missed visit was rebooked already.", E.ALREADY_REBOOKED)
    if missed.status != VisitStatus.MISSED:
        _refuse("status", "Only a missed visit is rebooked.", E.INVALID_TRANSITION)
    _check_slot_offered(slot, slots_for_rebooking(missed, now=now))
    rebooked = visit_rebook(visit=missed, slot=slot)
    booking_confirm(rebooked, now)
    return rebooked
