"""Bookings racing for the last places of a slot, in concurrent transactions on PostgreSQL
(DOMAIN.md section 12): never more visits booked than the slot takes, whatever the timing."""

import threading
from datetime import time
from functools import partial

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from followups import booking
from followups.codes import VisitKind, VisitMoveError, VisitStatus
from followups.models import SessionTemplate, SessionTemplateKind, Slot, Visit
from followups.visit_moves import visit_move
from tests.factories import PatientFactory, diagnosis_for
from tests.followups.conftest import days, live, record_toxin

RACERS = 8
CAPACITY = 3


@pytest.mark.usefixtures("seeded_defaults")
def test_racing_bookings_never_take_more_places_than_a_slot_has(transactional_db, today):
    SessionTemplate.objects.all().delete()
    clinic = SessionTemplate.objects.create(
        label="Injections",
        weekday=(today + days(84)).weekday(),
        starts_at=time(9),
        ends_at=time(9, 20),
        slot_minutes=20,
        capacity=CAPACITY,
        valid_from=today,
    )
    SessionTemplateKind.objects.create(template=clinic, visit_kind=VisitKind.INJECTION)
    booking.sessions_generate(today=today)
    slot = Slot.objects.get(session__on=today + days(84))
    visits = []
    for _ in range(RACERS):
        patient = PatientFactory()
        visits.append(live(record_toxin(diagnosis_for(patient, diagnosed_on=today - days(30)), today))[1])

    start = threading.Barrier(RACERS)
    outcomes = []

    def book(visit):
        try:
            start.wait()
            visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot)
            outcomes.append("booked")
        except ValidationError as error:
            outcomes.append(error.error_dict["slot"][0].code)
        finally:
            connection.close()

    threads = [threading.Thread(target=book, args=(visit,)) for visit in visits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == sorted(
        ["booked"] * CAPACITY + [VisitMoveError.SLOT_FULL] * (RACERS - CAPACITY)
    )
    assert Slot.objects.get(pk=slot.pk).booked == CAPACITY
    assert Visit.objects.filter(slot=slot, status=VisitStatus.BOOKED).count() == CAPACITY


def _run_together(*calls):
    """Run each call in its own thread and connection, all released at once; answer what each did."""
    start, outcomes = threading.Barrier(len(calls)), {}

    def run(name, call):
        try:
            start.wait()
            call()
            outcomes[name] = "done"
        except ValidationError as error:
            outcomes[name] = sorted(e.code for errors in error.error_dict.values() for e in errors)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(name, call)) for name, call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def _injection_clinics(today, *weekdays_ahead):
    SessionTemplate.objects.all().delete()
    for ahead in weekdays_ahead:
        clinic = SessionTemplate.objects.create(
            label=f"Injections {ahead}",
            weekday=(today + days(ahead)).weekday(),
            starts_at=time(9),
            ends_at=time(10),
            slot_minutes=20,
            capacity=2,
            valid_from=today,
        )
        SessionTemplateKind.objects.create(template=clinic, visit_kind=VisitKind.INJECTION)
    booking.sessions_generate(today=today)


@pytest.mark.usefixtures("seeded_defaults")
@pytest.mark.parametrize("round_", range(4))
def test_a_session_cancelled_while_bookings_race_into_it_ends_with_none_of_them_in_it(
    transactional_db, today, round_
):
    from followups.sessions import session_cancel

    _injection_clinics(today, 84)
    session = Slot.objects.filter(session__on=today + days(84)).first().session
    slots = list(session.slots.order_by("starts_at"))
    visits = [
        live(record_toxin(diagnosis_for(PatientFactory(), diagnosed_on=today - days(30)), today))[1]
        for _ in range(4)
    ]
    bookings = [
        (f"book-{n}", partial(visit_move, visit=visit, to=VisitStatus.BOOKED, slot=slots[n % len(slots)]))
        for n, visit in enumerate(visits)
    ]

    outcomes = _run_together(("cancel", lambda: session_cancel(session=session, reason="Holiday")), *bookings)

    assert outcomes["cancel"] == "done"
    # Whichever came first: no booking stands in the cancelled session, and every place is free.
    assert not Visit.objects.filter(slot__session=session, status=VisitStatus.BOOKED).exists()
    assert not Slot.objects.filter(session=session, booked__gt=0).exists()
    for n, visit in enumerate(visits):
        visit.refresh_from_db()
        assert visit.status == VisitStatus.PLANNED
        if outcomes[f"book-{n}"] == "done":  # booked before the cancel: sent back, and told
            assert visit.clinic_cancelled_at is not None
        else:
            assert outcomes[f"book-{n}"] == [VisitMoveError.SLOT_UNAVAILABLE]


@pytest.mark.usefixtures("seeded_defaults")
@pytest.mark.parametrize("round_", range(4))
def test_a_booking_moved_away_while_its_session_is_cancelled_stays_where_it_went(
    transactional_db, today, round_
):
    from followups.sessions import session_cancel

    _injection_clinics(today, 84, 85)
    first = Slot.objects.filter(session__on=today + days(84)).first()
    second = Slot.objects.filter(session__on=today + days(85)).first()
    visit = live(record_toxin(diagnosis_for(PatientFactory(), diagnosed_on=today - days(30)), today))[1]
    visit = visit_move(visit=visit, to=VisitStatus.BOOKED, slot=first)

    outcomes = _run_together(
        ("cancel", lambda: session_cancel(session=first.session, reason="Holiday")),
        ("move", lambda: visit_move(visit=visit, to=VisitStatus.BOOKED, slot=second)),
    )

    assert outcomes == {"cancel": "done", "move": "done"}
    visit.refresh_from_db()
    # Moved first or sent back first and then booked again: either way it holds the other slot.
    assert (visit.status, visit.slot_id) == (VisitStatus.BOOKED, second.pk)
    assert (Slot.objects.get(pk=first.pk).booked, Slot.objects.get(pk=second.pk).booked) == (0, 1)
