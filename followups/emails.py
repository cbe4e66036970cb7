"""The reminder e-mail (DOMAIN.md section 6), rendered from a small allow-listed context.

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

from followups.codes import ReminderKind
from followups.models import Reminder
from followups.optout import opt_out_url
from followups.reminders import patient_zone

APPOINTMENT_MINUTES = 30


def _mail_domain() -> str:
    return settings.SITE_URL.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0] or "localhost"


def reminder_context(reminder: Reminder) -> dict:
    """Everything a reminder template may show, and nothing else."""
    patient = reminder.visit.patient
    local = reminder.visit_time.astimezone(patient_zone(patient))
    return {
        "kind": reminder.kind,
        "first_name": patient.given_name,
        "clinic_name": settings.CLINIC_NAME,
        "clinic_address": settings.CLINIC_ADDRESS,
        "clinic_phone": settings.CLINIC_PHONE,
        "visit_date": date_format(local.date(), "DATE_FORMAT"),
        "visit_time": time_format(local.time(), "TIME_FORMAT"),
        "time_zone": str(local.tzinfo),
        "opt_out_url": opt_out_url(patient),
    }


def _subject(kind: str, context: dict) -> str:
    if kind == ReminderKind.MISSED_VISIT:
        return _("We missed you at %(clinic)s: please book a new appointment") % {
            "clinic": context["clinic_name"]
        }
    if kind == ReminderKind.VISIT_1D:
        # No "tomorrow": a reminder delayed by a mail server outage must still say the right day.
        return _("Reminder: your appointment on %(date)s at %(time)s, %(clinic)s") % {
            "date": context["visit_date"],
            "time": context["visit_time"],
            "clinic": context["clinic_name"],
        }
    return _("Your appointment on %(date)s at %(clinic)s") % {
        "date": context["visit_date"],
        "clinic": context["clinic_name"],
    }


def visit_calendar(reminder: Reminder) -> bytes:
    """An iCalendar event for the appointment: one UID per visit, SEQUENCE grows on reschedule."""
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
        template = "missed_visit" if reminder.kind == ReminderKind.MISSED_VISIT else "visit"
        message = EmailMultiAlternatives(
            subject=_subject(reminder.kind, context),
            body=render_to_string(f"followups/email/{template}.txt", context),
            from_email=settings.DEFAULT_FROM_EMAIL,
            to=[patient.email],
            headers={
                # Stable per reminder: a duplicate after a crash is recognisable as one.
                "Message-ID": f"<reminder-{reminder.uuid}@{_mail_domain()}>",
                "List-Unsubscribe": f"<{context['opt_out_url']}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "Auto-Submitted": "auto-generated",
            },
        )
        message.attach_alternative(render_to_string(f"followups/email/{template}.html", context), "text/html")
        if reminder.kind != ReminderKind.MISSED_VISIT:
            # Django adds the charset of a text attachment itself (naming it here doubled it).
            message.attach("appointment.ics", visit_calendar(reminder), "text/calendar")
    return message
