"""The e-mail of one reminder (DOMAIN.md section 6), rendered from a small allow-listed context.

The templates never see the Patient, the Visit or any clinical row: only the few values built in
``reminder_context``. So no diagnosis, drug, procedure or visit purpose can reach an e-mail, by
construction, whatever a template says.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext as _
from icalendar import Calendar, Event

from followups.codes import ReminderKind, VisitStatus
from followups.models import Reminder
from followups.patient_links import booking_url, opt_out_url, rebooking_url
from followups.reminders.planning import WINDOW_KINDS, patient_zone

# The template of each kind, and the kinds that carry the appointment's calendar event.
TEMPLATES = {
    ReminderKind.VISIT_7D: "visit",
    ReminderKind.VISIT_1D: "visit",
    ReminderKind.BOOKING_CONFIRMATION: "visit",
    ReminderKind.BOOKING_INVITATION: "invitation",
    ReminderKind.BOOKING_LAST_CALL: "invitation",
    ReminderKind.MISSED_VISIT: "missed_visit",
    ReminderKind.APPOINTMENT_CANCELLED: "appointment_cancelled",
}
WITH_CALENDAR = (ReminderKind.VISIT_7D, ReminderKind.VISIT_1D, ReminderKind.BOOKING_CONFIRMATION)

APPOINTMENT_MINUTES = 30


def _mail_domain() -> str:
    return settings.SITE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"


def _day(on) -> str:
    return date_format(on, "DATE_FORMAT")


def reminder_context(reminder: Reminder) -> dict:
    """Everything a reminder template may show, and nothing else: no diagnosis, treatment or
    visit purpose; a planned visit's window but never a time (it is not an appointment)."""
    visit = reminder.visit
    patient = visit.patient
    context = {
        "kind": reminder.kind,
        "first_name": patient.given_name,
        "clinic_name": settings.CLINIC_NAME,
        "clinic_address": settings.CLINIC_ADDRESS,
        "clinic_phone": settings.CLINIC_PHONE,
        "opt_out_url": opt_out_url(patient),
    }
    if reminder.kind in WINDOW_KINDS:
        context.update(
            window_start=_day(visit.window_start),
            window_end=_day(visit.window_end),
            booking_url=booking_url(visit),
        )
        return context
    local = reminder.visit_time.astimezone(patient_zone(patient))
    context.update(
        visit_date=_day(local.date()),
        visit_time=time_format(local.time(), "TIME_FORMAT"),
        time_zone=str(local.tzinfo),
    )
    if reminder.kind == ReminderKind.MISSED_VISIT:
        # A planned visit missed was never an appointment: the e-mail names no time for it.
        context["had_appointment"] = visit.history.filter(status=VisitStatus.BOOKED).exists()
        context["booking_url"] = rebooking_url(visit)
    elif reminder.kind in (
        ReminderKind.VISIT_7D,
        ReminderKind.BOOKING_CONFIRMATION,
        ReminderKind.APPOINTMENT_CANCELLED,
    ):
        # Changed online up to 24 hours before; the day before, by phone only.
        context["booking_url"] = booking_url(visit)
    return context


def _subject(kind: str, context: dict) -> str:
    values = {key: context.get(key) for key in ("visit_date", "visit_time", "window_end")}
    values["clinic"] = context["clinic_name"]
    if kind == ReminderKind.BOOKING_INVITATION:
        return _("Please book your follow-up visit at %(clinic)s") % values
    if kind == ReminderKind.BOOKING_LAST_CALL:
        return _("Reminder: please book your follow-up visit at %(clinic)s by %(window_end)s") % values
    if kind == ReminderKind.APPOINTMENT_CANCELLED:
        return (
            _("Your appointment on %(visit_date)s at %(clinic)s is cancelled: please choose a new time")
            % values
        )
    if kind == ReminderKind.MISSED_VISIT:
        return _("We missed you at %(clinic)s: please book a new appointment") % values
    if kind == ReminderKind.BOOKING_CONFIRMATION:
        return _("Booked: your appointment on %(visit_date)s at %(visit_time)s, %(clinic)s") % values
    if kind == ReminderKind.VISIT_1D:
        # No "tomorrow": a reminder delayed by a mail server outage must still say the right day.
        return _("Reminder: your appointment on %(visit_date)s at %(visit_time)s, %(clinic)s") % values
    return _("Your appointment on %(visit_date)s at %(clinic)s") % values


def visit_calendar(reminder: Reminder) -> bytes:
    """An iCalendar event for the appointment: one UID per visit, SEQUENCE grows on reschedule.
    (The patient's calendar keeps the latest: a moved appointment replaces the earlier one.)"""
    visit = reminder.visit
    calendar = Calendar()
    # Not the product's name: "HFS" would name the diagnosis in the patient's calendar.
    calendar.add("prodid", "-//Clinic appointment reminders//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", f"visit-{visit.uuid}@{_mail_domain()}")
    event.add("sequence", visit.sequence)
    event.add("dtstamp", timezone.now())
    event.add("dtstart", reminder.visit_time)
    event.add("dtend", reminder.visit_time + timedelta(minutes=APPOINTMENT_MINUTES))
    event.add("summary", _("Appointment at %(clinic)s") % {"clinic": settings.CLINIC_NAME})
    event.add("location", settings.CLINIC_ADDRESS)
    event.add("description", _("To change it, call %(phone)s.") % {"phone": settings.CLINIC_PHONE})
    calendar.add_component(event)
    return calendar.to_ical()


def reminder_message(reminder: Reminder) -> EmailMultiAlternatives:
    patient = reminder.visit.patient
    with translation.override(patient.preferred_language or settings.LANGUAGE_CODE):
        context = reminder_context(reminder)
        template = TEMPLATES[reminder.kind]
        message = EmailMultiAlternatives(
            subject=_subject(reminder.kind, context),
            body=render_to_string(f"followups/email/{template}.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[patient.email],
            headers={
                # Stable per reminder: a duplicate after a crash is recognisable as one.
                "Message-ID": f"<reminder-{reminder.uuid}@{_mail_domain()}>",
                "List-Unsubscribe": f"<{context['opt_out_url']}>",
                # RFC 2919: mail with an unsubscribe link and no list id reads as spam to filters
                # (SpamAssassin scores it). The id names the clinic's site, never the condition.
                "List-Id": f"<reminders.{_mail_domain()}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Auto-Submitted": "auto-generated",
            },
        )
        message.attach_alternative(render_to_string(f"followups/email/{template}.html", context), "text/html")
        if reminder.kind in WITH_CALENDAR:
            # Django adds the charset of a text attachment itself (naming it here doubled it).
            message.attach("appointment.ics", visit_calendar(reminder), "text/calendar")
    return message
