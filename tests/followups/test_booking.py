"""Clinic sessions and booking (DOMAIN.md section 12): sessions generated from the templates, the
visit kinds protocols ask for, slots taken and given back by visit moves, suggestions, and the
capacity of a slot held by the database."""

from datetime import datetime, time, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db.models import Count, Q

from followups import booking
from followups.codes import VisitKind, VisitMoveError, VisitStatus
from followups.models import ClinicSession, ProtocolStep, SessionTemplate, SessionTemplateKind, Slot, Visit
from followups.protocol_defaults import DEFAULT_SESSION_TEMPLATES, session_templates_load_defaults
from followups.tasks import sessions_generate
from followups.visit_moves import visit_move
from patients import services as record
from tests.factories import session_template_row
from tests.followups.conftest import days, live, record_toxin, refused

ZONE = ZoneInfo(settings.CLINIC_TIME_ZONE)
E = VisitMoveError


def template(*, weekday, kinds=(VisitKind.REVIEW,), **more):
    return session_template_row(weekday=weekday, kinds=kinds, **more)


def slots_of(visit_kind=None):
    slots = Slot.objects.select_related("session").order_by("starts_at")
    return slots if visit_kind is None else slots.filter(session__template__kind_rows__visit_kind=visit_kind)


def stored(visit) -> Visit:
    return Visit.objects.get(pk=visit.pk)


def booked_count(slot) -> int:
    return Slot.objects.get(pk=slot.pk).booked


# --- sessions from templates --------------------------------------------------------------------


def test_sessions_are_generated_26_weeks_ahead_on_the_template_s_weekday(no_templates, today):
    clinic = template(weekday=2, valid_from=today)

    made = booking.sessions_generate(today=today)

    days_on = list(ClinicSession.objects.values_list("on", flat=True))
    assert made == len(days_on) == 26 + (1 if (today + timedelta(weeks=26)).weekday() == 2 else 0)
    assert {on.weekday() for on in days_on} == {2}
    assert min(days_on) >= today and max(days_on) <= today + timedelta(weeks=26)
    first = ClinicSession.objects.order_by("on").first()
    assert [s.starts_at for s in first.slots.all()] == [
        datetime.combine(first.on, time(9, 0), tzinfo=ZONE),
        datetime.combine(first.on, time(9, 20), tzinfo=ZONE),
        datetime.combine(first.on, time(9, 40), tzinfo=ZONE),
    ]
    assert {(s.capacity, s.booked) for s in Slot.objects.all()} == {(clinic.capacity, 0)}


def test_generating_again_makes_nothing_and_keeps_the_bookings(no_templates, today):
    template(weekday=today.weekday(), valid_from=today)
    booking.sessions_generate(today=today)
    Slot.objects.filter(pk=Slot.objects.first().pk).update(booked=1)
    counts = (ClinicSession.objects.count(), Slot.objects.count())

    assert booking.sessions_generate(today=today) == 0
    assert booking.sessions_generate(today=today + days(7)) == 1  # one more week came into range
    assert (ClinicSession.objects.count(), Slot.objects.count()) == (counts[0] + 1, counts[1] + 3)
    assert Slot.objects.filter(booked=1).count() == 1


def test_a_template_generates_only_within_its_validity(no_templates, today):
    template(weekday=today.weekday(), valid_from=today + days(14), valid_to=today + days(35))

    booking.sessions_generate(today=today)

    assert list(ClinicSession.objects.order_by("on").values_list("on", flat=True)) == [
        today + days(14),
        today + days(21),
        today + days(28),
        today + days(35),
    ]


def test_the_default_week_serves_every_kind_of_visit(no_templates, today):
    assert session_templates_load_defaults(SessionTemplate, SessionTemplateKind, valid_from=today) == len(
        DEFAULT_SESSION_TEMPLATES
    )
    served = set(SessionTemplateKind.objects.values_list("visit_kind", flat=True))
    assert served == set(VisitKind.values)
    # Loaded once: a clinic that has its own templates keeps them.
    assert session_templates_load_defaults(SessionTemplate, SessionTemplateKind, valid_from=today) == 0


# --- the kind of visit a protocol step needs -----------------------------------------------------


def test_protocol_steps_name_the_clinic_they_need_as_domain_md_seeds_them(db):
    kinds = {
        (step.protocol.code, step.code): step.visit_kind
        for step in ProtocolStep.objects.select_related("protocol")
    }
    assert kinds[("botulinum-toxin", "reinjection")] == VisitKind.INJECTION
    assert kinds[("mvd", "day-10")] == kinds[("mvd", "day-30")] == VisitKind.POST_OP_CHECK
    assert kinds[("medication", "lab-blood-count")] == kinds[("medication", "lab-sodium")] == VisitKind.LAB
    others = {key for key, kind in kinds.items() if kind == VisitKind.REVIEW}
    assert others == set(kinds) - {
        ("botulinum-toxin", "reinjection"),
        ("mvd", "day-10"),
        ("mvd", "day-30"),
        ("medication", "lab-blood-count"),
        ("medication", "lab-sodium"),
    }


def test_planned_visits_carry_their_step_s_kind(recent_diagnosis, today):
    session = record_toxin(recent_diagnosis, today)

    assert [(v.protocol_day, v.visit_kind) for v in live(session)] == [
        (21, VisitKind.REVIEW),
        (84, VisitKind.INJECTION),
    ]


# --- booking into a slot ------------------------------------------------------------------------


@pytest.fixture
def reinjection(recent_diagnosis, today, no_templates):
    """A toxin session of today; its re-injection visit (window days 84 to 105) and an injection
    clinic every day of the week, two places a slot."""
    session = record_toxin(recent_diagnosis, today)
    for weekday in range(7):
        template(
            weekday=weekday, kinds=[VisitKind.INJECTION], capacity=2, valid_from=today, label="Injections"
        )
    template(weekday=today.weekday(), kinds=[VisitKind.REVIEW], valid_from=today, label="Reviews")
    booking.sessions_generate(today=today)
    return live(session)[1]


def first_inside(visit, kind=VisitKind.INJECTION) -> Slot:
    return slots_of(kind).filter(session__on__gte=visit.window_start).first()


def test_booking_a_slot_gives_the_visit_its_time_and_takes_a_place(reinjection):
    slot = first_inside(reinjection)

    booked = visit_move(visit=reinjection, to=VisitStatus.BOOKED, slot=slot)

    assert (booked.status, booked.slot_id, booked.scheduled_for) == (
        VisitStatus.BOOKED,
        slot.pk,
        slot.starts_at,
    )
    assert booked_count(slot) == 1


def test_rescheduling_to_another_slot_gives_the_first_place_back(reinjection):
    first, second = list(slots_of(VisitKind.INJECTION).filter(session__on__gte=reinjection.window_start)[:2])
    visit_move(visit=reinjection, to=VisitStatus.BOOKED, slot=first)

    visit_move(visit=reinjection, to=VisitStatus.BOOKED, slot=second)

    assert (booked_count(first), booked_count(second), stored(reinjection).slot_id) == (0, 1, second.pk)


@pytest.mark.parametrize("move", ["unbook", "cancel", "free time"])
def test_giving_up_the_booking_gives_the_place_back(reinjection, move):
    slot = first_inside(reinjection)
    visit_move(visit=reinjection, to=VisitStatus.BOOKED, slot=slot)

    if move == "unbook":
        visit_move(visit=reinjection, to=VisitStatus.PLANNED)
    elif move == "cancel":
        visit_move(visit=reinjection, to=VisitStatus.CANCELLED, reason="The patient moved away.")
    else:
        visit_move(
            visit=reinjection, to=VisitStatus.BOOKED, scheduled_for=slot.starts_at + timedelta(hours=2)
        )

    assert (booked_count(slot), stored(reinjection).slot_id) == (0, None)


def test_retracting_the_treatment_gives_its_booked_places_back(reinjection):
    slot = first_inside(reinjection)
    visit_move(visit=reinjection, to=VisitStatus.BOOKED, slot=slot)

    record.treatment_retract(treatment=reinjection.treatment)

    assert (stored(reinjection).status, booked_count(slot)) == (VisitStatus.CANCELLED, 0)


def test_a_full_slot_refuses_the_booking_and_nothing_changes(reinjection, recent_diagnosis, today):
    slot = first_inside(reinjection)
    Slot.objects.filter(pk=slot.pk).update(booked=2)

    refused(
        lambda: visit_move(visit=reinjection, to=VisitStatus.BOOKED, slot=slot),
        {"slot": [("This slot has just been taken: choose another.", E.SLOT_FULL)]},
    )
    assert booked_count(slot) == 2


@pytest.mark.parametrize("why", ["cancelled session", "another kind", "passed"])
def test_a_slot_the_visit_cannot_take_is_refused(reinjection, why, today):
    slot = first_inside(reinjection)
    if why == "cancelled session":
        ClinicSession.objects.filter(pk=slot.session_id).update(cancelled=True, cancel_reason="Holiday")
        message = "This session is cancelled."
    elif why == "another kind":
        slot = slots_of(VisitKind.REVIEW).filter(session__on__gt=today).first()
        message = "This session does not serve injection clinic visits."
    else:
        slot = Slot.objects.create(
            session=slot.session,
            starts_at=datetime.combine(today - days(1), time(8), tzinfo=ZONE),
            capacity=1,
        )
        message = "This slot has passed."
    with pytest.raises(Exception) as error:
        visit_move(visit=reinjection, to=VisitStatus.BOOKED, slot=slot, confirm_outside_window=True)
    assert [(e.messages[0], e.code) for e in error.value.error_dict["slot"]] == [
        (message, E.SLOT_UNAVAILABLE)
    ]
    assert booked_count(slot) == 0


def test_the_database_never_holds_more_than_a_slot_s_capacity(reinjection):
    slot = first_inside(reinjection)
    assert booking.slot_take(slot) and booking.slot_take(slot)

    assert booking.slot_take(slot) is False
    assert booked_count(slot) == 2


def test_the_count_of_a_slot_is_the_number_of_visits_booked_in_it(reinjection, make_patient, today):
    slot = first_inside(reinjection)
    _, diagnosis = make_patient()
    other = live(record_toxin(diagnosis, today - days(3)))[1]
    visit_move(visit=reinjection, to=VisitStatus.BOOKED, slot=slot)
    visit_move(visit=other, to=VisitStatus.BOOKED, slot=slot, confirm_outside_window=True)
    visit_move(visit=other, to=VisitStatus.PLANNED)

    held = Slot.objects.annotate(held=Count("visits", filter=Q(visits__status=VisitStatus.BOOKED)))
    assert [(s.booked, s.held) for s in held.filter(booked__gt=0)] == [(1, 1)]


# --- suggestions --------------------------------------------------------------------------------


def test_suggestions_are_the_free_slots_of_the_visit_s_kind_inside_its_window_earliest_first(reinjection):
    suggestions = booking.slot_suggestions(visit=reinjection)

    assert len(suggestions) == booking.SUGGESTIONS
    assert all(s.inside_window for s in suggestions)
    times = [s.slot.starts_at for s in suggestions]
    assert times == sorted(times)
    assert {s.slot.session.on for s in suggestions} <= {
        reinjection.window_start + days(n)
        for n in range((reinjection.window_end - reinjection.window_start).days + 1)
    }
    assert times[0] == first_inside(reinjection).starts_at


def test_a_full_slot_is_not_suggested(reinjection):
    first = first_inside(reinjection)
    Slot.objects.filter(pk=first.pk).update(booked=2)

    assert first.pk not in [s.slot.pk for s in booking.slot_suggestions(visit=reinjection)]


def test_without_a_free_slot_inside_the_nearest_after_the_window_are_suggested(reinjection):
    inside = slots_of(VisitKind.INJECTION).filter(
        session__on__range=(reinjection.window_start, reinjection.window_end)
    )
    Slot.objects.filter(pk__in=inside.values("pk")).update(booked=2)

    suggestions = booking.slot_suggestions(visit=reinjection)

    assert suggestions and not any(s.inside_window for s in suggestions)
    assert suggestions[0].slot.session.on == reinjection.window_end + days(1)


def test_the_nightly_task_and_the_command_keep_26_weeks_of_sessions(no_templates, today):
    template(weekday=today.weekday(), valid_from=today)

    assert sessions_generate.apply().get() == {"generated": ClinicSession.objects.count()}
    out = StringIO()
    call_command("sessions_generate", stdout=out)
    assert out.getvalue() == "Generated 0 clinic sessions.\n"
