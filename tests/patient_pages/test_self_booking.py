"""What a patient may do through a link (followups/self_booking.py, DOMAIN.md section 12): book a
free slot inside the window, move or cancel until 24 hours before, rebook a missed visit once."""

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from followups import self_booking
from followups.codes import ReminderKind, VisitMoveError, VisitStatus
from followups.models import ClinicSession, Reminder, Slot, Visit
from followups.visit_moves import visit_move
from patients.services import patient_archive
from tests.followups.conftest import days, mark_missed, refused
from tests.patient_pages.conftest import hours, inside, stored

E = VisitMoveError
SECOND = timedelta(seconds=1)


def places(slot) -> int:
    return Slot.objects.get(pk=slot.pk).booked


# --- what a booking link offers ----------------------------------------------------------------


def test_a_planned_visit_is_offered_the_free_slots_of_its_kind_inside_its_window(planned, today):
    situation = self_booking.booking_situation(planned)

    assert situation.state == self_booking.CHOOSE
    assert situation.slots == inside(planned)
    assert len(situation.slots) == 3 * ((planned.window_end - planned.window_start).days + 1)
    assert Slot.objects.filter(session__on__gt=planned.window_end).exists()  # there, but not offered


def test_a_full_slot_and_a_cancelled_session_are_not_offered(planned):
    first, second = inside(planned)[0], inside(planned)[3]  # the second on the next day
    assert first.session_id != second.session_id
    Slot.objects.filter(pk=first.pk).update(booked=F("capacity"))
    ClinicSession.objects.filter(pk=second.session_id).update(cancelled=True, cancel_reason="Holiday")

    offered = self_booking.booking_situation(planned).slots

    assert first not in offered and second not in offered
    assert offered and all(slot.session_id != second.session_id for slot in offered)


def test_a_patient_books_a_slot_inside_the_window_and_gets_a_confirmation(planned):
    slot = inside(planned)[4]

    booked = self_booking.booking_by_patient(visit=planned, slot=slot)

    assert (booked.status, booked.slot_id, booked.scheduled_for) == (
        VisitStatus.BOOKED,
        slot.pk,
        slot.starts_at,
    )
    assert places(slot) == 1
    assert Reminder.objects.filter(visit=planned, kind=ReminderKind.BOOKING_CONFIRMATION).count() == 1
    assert self_booking.booking_situation(stored(planned)).state == self_booking.BOOKED


def test_a_slot_outside_the_window_is_refused_even_when_free(planned):
    after = Slot.objects.filter(session__on=planned.window_end + days(1)).first()
    before = Slot.objects.filter(session__on=planned.window_start - days(1)).first()

    for slot in (after, before):
        refused(
            lambda slot=slot: self_booking.booking_by_patient(visit=planned, slot=slot),
            {"slot": [("This slot is not one the link offers.", E.SLOT_UNAVAILABLE)]},
        )


def test_a_slot_taken_since_the_page_was_shown_is_refused_as_taken(planned):
    slot = inside(planned)[0]
    assert slot in self_booking.booking_situation(planned).slots
    Slot.objects.filter(pk=slot.pk).update(booked=F("capacity"))  # another patient was quicker

    refused(
        lambda: self_booking.booking_by_patient(visit=planned, slot=slot),
        {"slot": [("This slot has just been taken: choose another.", E.SLOT_FULL)]},
    )
    assert stored(planned).status == VisitStatus.PLANNED


def test_the_same_slot_sent_twice_books_once(planned):
    slot = inside(planned)[0]
    self_booking.booking_by_patient(visit=planned, slot=slot)
    sequence = stored(planned).sequence

    again = self_booking.booking_by_patient(visit=planned, slot=slot)

    assert (again.slot_id, again.sequence, places(slot)) == (slot.pk, sequence, 1)


# --- moving and cancelling, until 24 hours before -----------------------------------------------


@pytest.fixture
def booked(planned):
    """The planned visit, booked by the patient into the first slot of its window."""
    return self_booking.booking_by_patient(visit=planned, slot=inside(planned)[0])


def test_moving_offers_the_other_free_slots_and_gives_the_first_place_back(booked):
    first = booked.slot
    offered = self_booking.moving_situation(stored(booked)).slots
    assert first not in offered and offered == inside(booked)

    moved = self_booking.booking_by_patient(visit=booked, slot=offered[-1])

    assert (moved.slot_id, moved.scheduled_for) == (offered[-1].pk, offered[-1].starts_at)
    assert (places(first), places(offered[-1])) == (0, 1)
    confirmed = Reminder.objects.filter(visit=booked, kind=ReminderKind.BOOKING_CONFIRMATION)
    assert set(confirmed.values_list("visit_time", flat=True)) == {first.starts_at, offered[-1].starts_at}


def test_cancelling_the_booking_plans_the_visit_again_and_gives_the_place_back(booked):
    slot = booked.slot

    cancelled = self_booking.booking_cancel_by_patient(visit=booked)

    assert (cancelled.status, cancelled.slot_id, places(slot)) == (VisitStatus.PLANNED, None, 0)
    assert Reminder.objects.filter(visit=booked, kind=ReminderKind.BOOKING_CONFIRMATION).count() == 1
    assert self_booking.booking_situation(stored(booked)).state == self_booking.CHOOSE
    # Sent twice (a double tap): the second changes nothing.
    assert self_booking.booking_cancel_by_patient(visit=booked).status == VisitStatus.PLANNED


def test_a_booking_changes_online_until_24_hours_before_it(booked):
    deadline = booked.scheduled_for - hours(24)
    target = inside(booked)[-1]

    assert self_booking.may_change_online(booked, deadline - SECOND)
    assert not self_booking.may_change_online(booked, deadline)
    assert self_booking.booking_situation(booked, now=deadline - SECOND).state == self_booking.BOOKED
    assert self_booking.booking_situation(booked, now=deadline).state == self_booking.PHONE_ONLY

    too_late = {
        "status": [
            ("The appointment is less than 24 hours away: it is changed by phone only.", E.TOO_LATE_TO_CHANGE)
        ]
    }
    refused(lambda: self_booking.booking_by_patient(visit=booked, slot=target, now=deadline), too_late)
    refused(lambda: self_booking.booking_cancel_by_patient(visit=booked, now=deadline), too_late)

    moved = self_booking.booking_by_patient(visit=booked, slot=target, now=deadline - SECOND)
    assert moved.slot_id == target.pk


def test_a_booking_whose_time_has_passed_is_closed(booked):
    after = booked.scheduled_for + hours(1)

    situation = self_booking.booking_situation(booked, now=after)

    assert (situation.state, situation.reason) == (self_booking.CLOSED, self_booking.PASSED)


# --- visits with nothing to do online -----------------------------------------------------------


def test_an_archived_patient_s_visit_is_closed_and_refused(planned):
    patient_archive(patient=planned.patient)
    visit = stored(planned)

    assert self_booking.booking_situation(visit).reason == self_booking.UNAVAILABLE
    refused(
        lambda: self_booking.booking_by_patient(visit=visit, slot=inside(visit)[0]),
        {"patient": [("This patient is archived.", E.ARCHIVED)]},
    )


@pytest.mark.parametrize("to", [VisitStatus.CANCELLED, VisitStatus.COMPLETED])
def test_a_cancelled_or_completed_visit_is_closed_and_refused(planned, to):
    if to == VisitStatus.CANCELLED:
        visit_move(visit=planned, to=to, reason="The patient moved away.")
    else:
        visit_move(visit=planned, to=to, now=planned.scheduled_for)
    visit = stored(planned)

    situation = self_booking.booking_situation(visit)

    assert (situation.state, situation.reason) == (self_booking.CLOSED, to)
    refused(
        lambda: self_booking.booking_by_patient(visit=visit, slot=inside(visit)[0]),
        {"status": [("This visit is not open to booking.", E.INVALID_TRANSITION)]},
    )


# --- the rebooking link -------------------------------------------------------------------------


def test_a_missed_visit_is_offered_the_free_slots_of_its_kind_in_the_next_30_days(missed, today):
    situation = self_booking.rebooking_situation(missed)

    assert situation.state == self_booking.CHOOSE
    assert situation.slots
    assert {slot.session.on for slot in situation.slots} <= {today + days(n) for n in range(31)}
    assert situation.slots[-1].session.on == today + days(30)
    assert Slot.objects.filter(session__on__gt=today + days(30)).exists()  # there, but not offered


def test_a_missed_visit_is_rebooked_once(missed, today):
    first, second = self_booking.rebooking_situation(missed).slots[:2]

    rebooked = self_booking.rebooking_by_patient(missed=missed, slot=first)

    assert (rebooked.status, rebooked.slot_id, rebooked.rebooked_from_id) == (
        VisitStatus.BOOKED,
        first.pk,
        missed.pk,
    )
    assert Reminder.objects.filter(visit=rebooked, kind=ReminderKind.BOOKING_CONFIRMATION).exists()
    situation = self_booking.rebooking_situation(stored(missed))
    assert (situation.state, situation.visit) == (self_booking.REBOOKED, rebooked)
    refused(
        lambda: self_booking.rebooking_by_patient(missed=missed, slot=second),
        {"status": [("This missed visit was rebooked already.", E.ALREADY_REBOOKED)]},
    )


def test_rebooking_refuses_a_slot_beyond_the_30_days(missed, today):
    later = Slot.objects.filter(session__on=today + days(31)).first()

    refused(
        lambda: self_booking.rebooking_by_patient(missed=missed, slot=later),
        {"slot": [("This slot is not one the link offers.", E.SLOT_UNAVAILABLE)]},
    )


def test_a_missed_visit_of_an_archived_patient_is_not_rebooked_online(missed):
    patient_archive(patient=missed.patient)
    visit = stored(missed)

    assert self_booking.rebooking_situation(visit).reason == self_booking.UNAVAILABLE
    refused(
        lambda: self_booking.rebooking_by_patient(missed=visit, slot=Slot.objects.first()),
        {"patient": [("This patient is archived.", E.ARCHIVED)]},
    )


def test_a_missed_protocol_visit_is_rebooked_through_its_link_and_its_booking_link_is_closed(booked):
    missed = mark_missed(booked)

    situation = self_booking.rebooking_situation(Visit.objects.get(pk=missed.pk))

    assert situation.state == self_booking.CHOOSE
    assert self_booking.booking_situation(stored(missed)).reason == self_booking.PASSED


def test_a_patient_is_never_offered_a_slot_starting_within_24_hours(planned):
    soon = inside(planned)[0]
    Slot.objects.filter(pk=soon.pk).update(starts_at=timezone.now() + hours(3))

    offered = self_booking.booking_situation(planned).slots

    assert soon.pk not in {slot.pk for slot in offered}
    refused(
        lambda: self_booking.booking_by_patient(visit=planned, slot=Slot.objects.get(pk=soon.pk)),
        {"slot": [("This slot is not one the link offers.", E.SLOT_UNAVAILABLE)]},
    )
