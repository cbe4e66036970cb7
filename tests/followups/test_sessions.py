"""Staff's changes to the clinic's sessions (DOMAIN.md section 12): a template written reworks its
sessions ahead, a session cancelled for a day sends its booked visits back to planned, onto the call
list's ``clinic_cancelled``, with an e-mail that carries the booking link."""

from datetime import time, timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from followups import booking
from followups.codes import ReminderKind, ReminderStatus, VisitKind, VisitStatus
from followups.models import ClinicSession, Reminder, SessionTemplate, Slot, Visit
from followups.patient_links import BOOKING, booking_link_valid_until, link_read, link_token
from followups.reminders import reminder_deliver, reminders_claim_due
from followups.reminders.messages import reminder_message
from followups.sessions import session_cancel, session_template_save
from followups.visit_moves import visit_move
from tests.factories import PatientFactory
from tests.followups.conftest import days, diagnosis_for, live, record_toxin
from tests.followups.test_booking import template


def weekday_ahead(today, n: int = 7):
    """A day at least ``n`` days ahead and its weekday."""
    on = today + days(n)
    return on, on.weekday()


def save(template=None, **fields):
    defaults = {
        "label": "Review clinic",
        "weekday": 2,
        "starts_at": time(9),
        "ends_at": time(11),
        "slot_minutes": 30,
        "capacity": 2,
        "visit_kinds": [VisitKind.REVIEW],
        "valid_from": timezone.localdate(),
    }
    return session_template_save(template=template, **({} if template else defaults) | fields)


# --- templates ------------------------------------------------------------------------------------


def test_creating_a_template_generates_its_sessions_and_slots_at_once(no_templates, today):
    saved = save(weekday=today.weekday(), today=today)

    sessions = saved.template.sessions.order_by("on")
    assert saved.generated == sessions.count() == 27  # today and the next 26 weeks of that weekday
    assert {s.on.weekday() for s in sessions} == {today.weekday()}
    assert Slot.objects.filter(session__template=saved.template).count() == 27 * 4
    assert set(Slot.objects.values_list("capacity", flat=True)) == {2}
    assert list(saved.template.kind_rows.values_list("visit_kind", flat=True)) == [VisitKind.REVIEW]


def test_a_bad_template_is_refused_field_by_field_and_nothing_is_written(no_templates):
    with pytest.raises(ValidationError) as error:
        save(label=" ", weekday=9, starts_at=time(11), ends_at=time(10), capacity=0, visit_kinds=["surgery"])

    assert set(error.value.message_dict) == {"label", "weekday", "ends_at", "capacity", "visit_kinds"}
    assert not SessionTemplate.objects.exists() and not ClinicSession.objects.exists()


def test_changing_the_hours_remakes_the_empty_sessions_ahead_and_keeps_those_with_bookings(
    no_templates, today, make_patient
):
    saved = save(weekday=today.weekday(), visit_kinds=[VisitKind.REVIEW], today=today)
    patient, diagnosis = make_patient()
    # A booked manual review in the session four weeks ahead.
    held = saved.template.sessions.get(on=today + days(28))
    slot = held.slots.order_by("starts_at").first()
    visit = visit_move(visit=_planned_review(patient, today + days(28)), to=VisitStatus.BOOKED, slot=slot)

    changed = session_template_save(
        template=saved.template,
        starts_at=time(14),
        ends_at=time(15),
        slot_minutes=20,
        capacity=3,
        today=today,
    )

    assert changed.kept_with_bookings == 1
    assert changed.removed == 26
    assert changed.generated == 26
    held.refresh_from_db()
    slot.refresh_from_db()
    visit.refresh_from_db()
    # The booking stands, in its slot, at its time; the slot's capacity follows the template.
    assert (visit.status, visit.slot_id, slot.booked, slot.capacity) == (VisitStatus.BOOKED, slot.pk, 1, 3)
    remade = saved.template.sessions.exclude(pk=held.pk)
    assert {s.starts_at for s in remade} == {time(14)}
    assert Slot.objects.filter(session__in=remade).count() == 26 * 3


def test_a_new_label_or_number_of_places_keeps_every_session_and_slot_in_place(no_templates, today):
    saved = save(weekday=today.weekday(), capacity=2, today=today)
    slots = sorted(Slot.objects.filter(session__template=saved.template).values_list("pk", flat=True))

    changed = session_template_save(
        template=saved.template, label="Review clinic (room 4)", capacity=3, today=today
    )

    assert (changed.generated, changed.removed, changed.kept_with_bookings) == (0, 0, 0)
    assert sorted(Slot.objects.filter(session__template=saved.template).values_list("pk", flat=True)) == slots
    assert set(saved.template.sessions.values_list("label", flat=True)) == {"Review clinic (room 4)"}
    assert set(Slot.objects.filter(pk__in=slots).values_list("capacity", flat=True)) == {3}


def test_a_template_ended_early_removes_its_empty_sessions_after_that_day(no_templates, today):
    saved = save(weekday=today.weekday(), today=today)

    session_template_save(template=saved.template, valid_to=today + days(20), today=today)

    assert max(saved.template.sessions.values_list("on", flat=True)) <= today + days(20)


def _planned_review(patient, on):
    from followups import services

    return services.visit_create(
        patient=patient,
        purpose="Review",
        scheduled_for=timezone.make_aware(timezone.datetime.combine(on, time(8))),
        window_start=on - days(3),
        window_end=on + days(3),
        status=VisitStatus.PLANNED,
    )


# --- cancelling a session -------------------------------------------------------------------------


@pytest.fixture
def booked_session(no_templates, today):
    """An injection clinic every day; a consenting patient's re-injection visit booked in it."""
    patient = PatientFactory(given_name="Ada", email="ada.s@patients.example", email_reminders=True)
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(30))
    toxin = record_toxin(diagnosis, today)
    for weekday in range(7):
        template(weekday=weekday, kinds=[VisitKind.INJECTION], valid_from=today, label="Injections")
    booking.sessions_generate(today=today)
    visit = live(toxin)[1]
    slot = booking.slot_suggestions(visit=visit)[0].slot
    visit = visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot)
    return slot.session, visit


def test_cancelling_a_session_sends_its_visits_back_to_planned_and_tells_the_patient(booked_session):
    session, visit = booked_session
    appointment = visit.scheduled_for

    session_cancel(session=session, reason="Public holiday")

    session.refresh_from_db()
    visit.refresh_from_db()
    assert (session.cancelled, session.cancel_reason) == (True, "Public holiday")
    assert (visit.status, visit.slot_id) == (VisitStatus.PLANNED, None)
    assert visit.clinic_cancelled_at is not None  # on the call list as "clinic cancelled"
    assert Slot.objects.filter(session=session, booked__gt=0).count() == 0
    notice = Reminder.objects.get(visit=visit, kind=ReminderKind.APPOINTMENT_CANCELLED)
    assert (notice.status, notice.visit_time) == (ReminderStatus.PENDING, appointment)
    # The appointment's own reminders go; its window's invitations were sent or are back.
    assert not Reminder.objects.filter(
        visit=visit, kind__in=[ReminderKind.VISIT_7D, ReminderKind.VISIT_1D], status=ReminderStatus.PENDING
    ).exists()
    # The cancelled session offers nothing any more.
    assert all(s.slot.session_id != session.pk for s in booking.slot_suggestions(visit=visit))


def test_the_cancellation_e_mail_names_the_lost_appointment_and_carries_the_booking_link(booked_session):
    session, visit = booked_session
    session_cancel(session=session, reason="Public holiday")
    notice = Reminder.objects.get(visit=visit, kind=ReminderKind.APPOINTMENT_CANCELLED)

    claims = dict(reminders_claim_due())
    assert reminder_deliver(reminder_id=notice.pk, claim_id=claims[notice.pk]) == "sent"

    (sent,) = [m for m in mail.outbox if "cancelled" in m.subject]
    text = sent.body
    assert "the clinic had to cancel your appointment" in text
    link = next(line for line in text.splitlines() if "/p/visit/" in line)
    token = link.rstrip("/").rsplit("/", 1)[-1]
    assert link_read(token, BOOKING).public_id == str(visit.uuid)
    for clinical in ("injection", "toxin", "botulinum", "spasm", "Re-injection", "Public holiday"):
        assert clinical.lower() not in (sent.subject + text).lower()
    assert not sent.attachments


def test_booking_again_takes_the_visit_off_clinic_cancelled_and_the_notice_is_not_sent(booked_session):
    session, visit = booked_session
    session_cancel(session=session, reason="Staff training")
    visit.refresh_from_db()
    notice = Reminder.objects.get(visit=visit, kind=ReminderKind.APPOINTMENT_CANCELLED)
    claim_id = dict(reminders_claim_due())[notice.pk]

    again = booking.slot_suggestions(visit=visit)[0].slot
    visit = visit_move(visit=visit, to=VisitStatus.BOOKED, slot=again)

    assert visit.clinic_cancelled_at is None
    assert reminder_deliver(reminder_id=notice.pk, claim_id=claim_id) == "cancelled"
    assert not [m for m in mail.outbox if "cancelled" in m.subject]


def test_a_session_is_cancelled_once_with_a_reason_and_never_after_it_took_place(booked_session, today):
    session, visit = booked_session
    with pytest.raises(ValidationError) as error:
        session_cancel(session=session, reason="  ")
    assert error.value.message_dict == {"reason": ["Say why the session is cancelled."]}

    session_cancel(session=session, reason="Holiday")
    with pytest.raises(ValidationError) as error:
        session_cancel(session=session, reason="Holiday")
    assert list(error.value.message_dict) == ["cancelled"]
    assert Reminder.objects.filter(kind=ReminderKind.APPOINTMENT_CANCELLED).count() == 1

    past = ClinicSession.objects.create(
        template=session.template, on=today - days(1), starts_at=time(9), ends_at=time(10), label="Past"
    )
    with pytest.raises(ValidationError) as error:
        session_cancel(session=past, reason="Holiday")
    assert list(error.value.message_dict) == ["on"]


def test_the_cancellation_notice_of_a_patient_without_consent_is_skipped(booked_session):
    session, visit = booked_session
    visit.patient.email_reminders = False
    visit.patient.save(update_fields=["email_reminders"])

    session_cancel(session=session, reason="Holiday")

    notice = Reminder.objects.get(visit=visit, kind=ReminderKind.APPOINTMENT_CANCELLED)
    assert (notice.status, notice.status_reason) == (
        ReminderStatus.SKIPPED,
        "No consent to e-mail reminders.",
    )


def test_the_message_of_an_invitation_names_the_window_never_a_time_and_attaches_no_calendar(booked_session):
    _session, visit = booked_session
    visit = visit_move(visit=visit, to=VisitStatus.PLANNED)
    invitation = Reminder.objects.get(visit=visit, kind=ReminderKind.BOOKING_INVITATION)

    message = reminder_message(invitation)

    assert message.subject.startswith("Please book your follow-up visit")
    assert "Your follow-up visit is due between" in message.body
    assert "/p/visit/" in message.body
    assert not message.attachments
    for clock in (" a.m.", " p.m.", "noon", "midnight"):
        assert clock not in message.body


# --- what a cancelled session does to the bookings that are not ordinary ---------------------------


def test_a_booking_made_after_its_window_and_sent_back_stays_bookable(booked_session, today):
    """Booked after its window (the nearest slots after it, confirmed): sent back to planned, its
    window reopens, so the link in the notice still books it and the nightly run does not call
    it missed."""
    session, visit = booked_session
    visit.window_start, visit.window_end = today - days(20), today - days(1)
    visit.save(update_fields=["window_start", "window_end"])

    session_cancel(session=session, reason="Holiday")

    visit.refresh_from_db()
    assert visit.status == VisitStatus.PLANNED
    assert visit.window_end == today + days(14)
    assert booking.slot_suggestions(visit=visit)[0].inside_window
    assert (
        link_read(link_token(BOOKING, visit.uuid, booking_link_valid_until(visit)), BOOKING).valid_until
        >= today
    )


def test_an_archived_patient_s_booking_is_cancelled_with_the_session_and_nobody_is_told(booked_session):
    from patients import services as record

    session, visit = booked_session
    # A manual booking stays booked when its patient is archived (only protocol visits are cancelled).
    Visit.objects.filter(pk=visit.pk).update(source="manual")
    record.patient_archive(patient=visit.patient)
    visit.refresh_from_db()
    assert visit.status == VisitStatus.BOOKED

    session_cancel(session=session, reason="Holiday")

    visit.refresh_from_db()
    assert (visit.status, visit.slot_id) == (VisitStatus.CANCELLED, None)
    assert not Slot.objects.filter(session=session, booked__gt=0).exists()
    assert not Reminder.objects.filter(visit=visit, kind=ReminderKind.APPOINTMENT_CANCELLED).exists()


def test_an_appointment_already_over_stays_when_its_session_is_cancelled_the_same_day(booked_session, today):
    earlier, visit = booked_session
    # Today's session of the same clinic, whose first appointment was an hour ago.
    session = ClinicSession.objects.get(template=earlier.template, on=today)
    slot = session.slots.order_by("starts_at").first()
    Slot.objects.filter(pk=visit.slot_id).update(booked=0)
    Slot.objects.filter(pk=slot.pk).update(booked=1)
    Visit.objects.filter(pk=visit.pk).update(slot=slot, scheduled_for=timezone.now() - timedelta(hours=1))

    session_cancel(session=session, reason="Fire alarm")

    visit.refresh_from_db()
    assert (visit.status, visit.slot_id) == (VisitStatus.BOOKED, slot.pk)
    assert not Reminder.objects.filter(visit=visit, kind=ReminderKind.APPOINTMENT_CANCELLED).exists()


def test_after_a_clinic_cancellation_only_the_notice_invites_to_book(booked_session):
    session, visit = booked_session
    session_cancel(session=session, reason="Holiday")
    # Cancelled when the visit was booked, open again now that it is planned; due, as on its day.
    invitation = Reminder.objects.get(visit=visit, kind=ReminderKind.BOOKING_INVITATION)
    assert invitation.status == ReminderStatus.PENDING
    Reminder.objects.filter(pk=invitation.pk).update(next_attempt_at=timezone.now())

    claims = dict(reminders_claim_due())

    assert reminder_deliver(reminder_id=invitation.pk, claim_id=claims[invitation.pk]) == "cancelled"
    invitation.refresh_from_db()
    assert invitation.status_reason == "The clinic's cancellation notice invites to book again."
