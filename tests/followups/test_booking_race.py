"""Bookings racing for the last places of a slot, in concurrent transactions on PostgreSQL
(DOMAIN.md section 12): never more visits booked than the slot takes, whatever the timing."""

import threading
from datetime import time

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
