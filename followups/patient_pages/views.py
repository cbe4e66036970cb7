"""The booking and rebooking pages a patient opens from an e-mail (DOMAIN.md section 12).

Every page answers from the link's token alone (no login): a forged or mistyped token is a 404
page, an expired one a 410 page, too many requests a 429 page, each with the clinic's phone.
GET only shows; every change is a POST with its CSRF token that redirects to a confirmation
(Post/Redirect/Get), so a mail scanner that fetches the link, or a reload, changes nothing.

A page names the clinic, the day and time, and "follow-up visit": never the patient, the visit's
purpose or kind, the session's label (rooms are named after treatments) or anything clinical,
since a forwarded link opens it for anyone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from functools import wraps

from django.conf import settings
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format, time_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from followups import self_booking
from followups.codes import VisitMoveError, VisitStatus
from followups.models import Visit
from followups.patient_links import BOOKING, REBOOKING, LinkExpired, LinkInvalid, link_read
from followups.patient_pages.forms import SlotChoiceForm
from followups.patient_pages.limits import over_limit
from followups.reminders.planning import patient_zone
from followups.self_booking import BOOKED, CHOOSE, CLOSED, PHONE_ONLY, REBOOKED, Situation

# What the patient reads when the service refuses, by the refusal's code.
REFUSALS = {
    VisitMoveError.SLOT_FULL: gettext_lazy("Sorry, that time has just been taken. Please choose another."),
    VisitMoveError.SLOT_UNAVAILABLE: gettext_lazy(
        "Sorry, that time can no longer be booked. Please choose another."
    ),
    VisitMoveError.TOO_LATE_TO_CHANGE: gettext_lazy(
        "Your appointment is less than 24 hours away, so it can no longer be changed online."
    ),
    VisitMoveError.ALREADY_REBOOKED: gettext_lazy(
        "You have already booked a new appointment with this link."
    ),
}
NOT_ONLINE = gettext_lazy("Sorry, this can no longer be done online.")

GET_AND_POST = ("GET", "HEAD", "POST")
GET_ONLY = ("GET", "HEAD")


# --- what every page shows ----------------------------------------------------------------------


def _clinic() -> dict:
    return {
        "clinic_name": settings.CLINIC_NAME,
        "clinic_phone": settings.CLINIC_PHONE,
        "clinic_phone_uri": "tel:" + re.sub(r"[^\d+]", "", settings.CLINIC_PHONE),
        "clinic_address": settings.CLINIC_ADDRESS,
    }


def _page(request, template: str, context: dict | None = None, *, status: int = 200):
    return render(
        request, f"followups/patient/{template}.html", {**_clinic(), **(context or {})}, status=status
    )


def notice(request, kind: str, *, status: int = 200):
    """A page that only explains (a bad or expired link, too many tries, a visit with nothing to
    do online), with the clinic's phone."""
    response = _page(request, "notice", {"kind": kind}, status=status)
    if status == 429:
        response["Retry-After"] = "60"
    return response


def csrf_failure(request, reason: str = ""):
    """``CSRF_FAILURE_VIEW``: the patient pages explain in the patient's words (a form sent without
    its cookie, from a browser that blocks them); everything else keeps Django's page."""
    match = request.resolver_match
    if match is not None and (match.url_name or "").startswith("patient-"):
        return notice(request, "csrf", status=403)
    return django_csrf_failure(request, reason)


def _day(on: date) -> str:
    return _("%(weekday)s, %(date)s") % {
        "weekday": date_format(on, "l"),
        "date": date_format(on, "DATE_FORMAT"),
    }


@dataclass(frozen=True)
class Moment:
    """A time as the patient reads it: in their time zone, named when it is not the clinic's."""

    day: str
    time: str
    zone: str


def _zone_named(visit: Visit) -> str:
    """The patient's time zone, when it is not the clinic's (as the e-mails name it)."""
    zone = str(patient_zone(visit.patient))
    return zone if zone != settings.CLINIC_TIME_ZONE else ""


def _moment(when: datetime, visit: Visit) -> Moment:
    local = when.astimezone(patient_zone(visit.patient))
    return Moment(_day(local.date()), time_format(local.time(), "TIME_FORMAT"), _zone_named(visit))


@dataclass(frozen=True)
class SlotDay:
    label: str
    times: list[tuple[str, str]]  # (the slot's public id, its time)


def _slots_by_day(slots, visit: Visit) -> list[SlotDay]:
    zone = patient_zone(visit.patient)
    days: dict[date, list[tuple[str, str]]] = {}
    for slot in slots:  # earliest first, so the days come in order
        local = slot.starts_at.astimezone(zone)
        days.setdefault(local.date(), []).append((str(slot.uuid), time_format(local.time(), "TIME_FORMAT")))
    return [SlotDay(_day(on), times) for on, times in days.items()]


def _window(visit: Visit) -> dict:
    return {
        "window_start": _day(visit.window_start),
        "window_end": _day(visit.window_end),
        "window_open": visit.window_end >= timezone.localdate(),
    }


# --- from the token to the visit ----------------------------------------------------------------


def _language_of(visit: Visit) -> str:
    return visit.patient.preferred_language or settings.LANGUAGE_CODE


def _linked_visit(token: str, purpose: str) -> Visit:
    """The visit a genuine, unexpired link names: ``link_read``'s LinkExpired or LinkInvalid, and
    LinkInvalid too for a genuine link whose visit is gone."""
    public_id = link_read(token, purpose).public_id
    try:
        return Visit.objects.select_related("patient").get(uuid=public_id)
    except (Visit.DoesNotExist, ValidationError) as error:
        raise LinkInvalid from error


def patient_link_page(purpose: str, methods=GET_AND_POST):
    """A view of one link: rate-limited, its visit found from the token (or a clear page why
    not), rendered in the patient's language, never cached (it shows the visit as it is now)."""

    def decorate(view):
        @never_cache
        @require_http_methods(list(methods))
        @wraps(view)
        def page(request, token: str):
            if over_limit(request):
                return notice(request, "too_many", status=429)
            try:
                visit = _linked_visit(token, purpose)
            except LinkExpired:
                return notice(request, "expired", status=410)
            except LinkInvalid:
                return notice(request, "invalid", status=404)
            language = _language_of(visit)
            with translation.override(language):
                response = view(request, token, visit)
            response.headers["Content-Language"] = language
            return response

        return page

    return decorate


def _fresh(visit: Visit) -> Visit:
    """The visit as stored now: after a refusal the copy in hand may be behind (another tab)."""
    return Visit.objects.select_related("patient").get(pk=visit.pk)


def _refusal(error: ValidationError) -> str:
    codes = [e.code for errors in error.error_dict.values() for e in errors]
    return next((REFUSALS[code] for code in codes if code in REFUSALS), NOT_ONLINE)


# --- showing a situation ------------------------------------------------------------------------


def _show(request, token: str, purpose: str, situation: Situation, *, status=200, **context):
    """The page for what the link offers now; ``context`` adds a refusal or a form's errors."""
    visit = situation.visit
    if situation.state == CLOSED:
        return notice(request, situation.reason, status=status)
    if situation.state == CHOOSE:
        return _choose_page(request, token, purpose, situation, status=status, **context)
    page = {BOOKED: "booked", PHONE_ONLY: "phone_only", REBOOKED: "rebooked"}[situation.state]
    return _appointment_page(request, token, visit, page, status=status, **context)


def _choose_page(request, token: str, purpose: str, situation: Situation, *, status=200, **context):
    visit = situation.visit
    if purpose == REBOOKING:
        mode, action = "rebook", reverse("patient-rebooking", args=[token])
    else:
        mode = "move" if visit.status == VisitStatus.BOOKED else "book"
        action = reverse("patient-booking", args=[token])
    context.update(
        mode=mode,
        action_url=action,
        days=_slots_by_day(situation.slots, visit),
        zone=_zone_named(visit),
        keep_url=reverse("patient-booking", args=[token]),
        **_window(visit),
    )
    if mode == "move":
        context["appointment"] = _moment(visit.scheduled_for, visit)
    return _page(request, "choose", context, status=status)


def _appointment_page(request, token: str, visit: Visit, page: str, *, status=200, **context):
    """An appointment: ``page`` is booked (may change here), phone_only, confirmed (just booked or
    moved through this link), rebooked (a rebooking link used already) or rebook_confirmed."""
    context.update(
        page=page,
        appointment=_moment(visit.scheduled_for, visit) if visit.status == VisitStatus.BOOKED else None,
        may_change=self_booking.may_change_online(visit, timezone.now()),
        deadline=_moment(self_booking.change_deadline(visit), visit),
        change_url=reverse("patient-booking-change", args=[token]),
        cancel_url=reverse("patient-booking-cancel", args=[token]),
        confirmation_by_email=visit.patient.email_reminders,
    )
    return _page(request, "appointment", context, status=status)


# --- the booking link ---------------------------------------------------------------------------


@patient_link_page(BOOKING)
def booking(request, token: str, visit: Visit):
    """The visit's state; a POST books the chosen slot, or moves the booking there."""
    if request.method != "POST":
        return _show(request, token, BOOKING, self_booking.booking_situation(visit))
    form = SlotChoiceForm(request.POST)
    if not form.is_valid():
        return _show(request, token, BOOKING, _choosing(visit), form=form, status=400)
    try:
        self_booking.booking_by_patient(visit=visit, slot=form.cleaned_data["slot"])
    except ValidationError as error:
        return _show(request, token, BOOKING, _choosing(_fresh(visit)), problem=_refusal(error), status=409)
    return redirect("patient-booking-done", token=token)


def _choosing(visit: Visit) -> Situation:
    """The slots again after a choice that did not go through: to book, or to move to."""
    if visit.status == VisitStatus.BOOKED:
        return self_booking.moving_situation(visit)
    return self_booking.booking_situation(visit)


@patient_link_page(BOOKING, methods=GET_ONLY)
def booking_change(request, token: str, visit: Visit):
    return _show(request, token, BOOKING, self_booking.moving_situation(visit))


@patient_link_page(BOOKING)
def booking_cancel(request, token: str, visit: Visit):
    """Asks first (one tap on a phone is easily made), then gives the booking up."""
    if request.method != "POST":
        situation = self_booking.booking_situation(visit)
        if situation.state != BOOKED:
            return _show(request, token, BOOKING, situation)
        context = {
            "appointment": _moment(visit.scheduled_for, visit),
            "keep_url": reverse("patient-booking", args=[token]),
            **_window(visit),
        }
        return _page(request, "cancel", context)
    try:
        self_booking.booking_cancel_by_patient(visit=visit)
    except ValidationError as error:
        situation = self_booking.booking_situation(_fresh(visit))
        return _show(request, token, BOOKING, situation, problem=_refusal(error), status=409)
    return redirect("patient-booking-done", token=token)


@patient_link_page(BOOKING, methods=GET_ONLY)
def booking_done(request, token: str, visit: Visit):
    """The confirmation after a POST: the booking as it now stands, or that it was given up."""
    if visit.status == VisitStatus.BOOKED and not visit.patient.archived:
        return _appointment_page(request, token, visit, "confirmed")
    was_booked = visit.history.filter(status=VisitStatus.BOOKED).exists()
    if was_booked and self_booking.booking_situation(visit).state == CHOOSE:
        context = {"booking_url": reverse("patient-booking", args=[token]), **_window(visit)}
        return _page(request, "cancelled", context)
    return redirect("patient-booking", token=token)


# --- the rebooking link -------------------------------------------------------------------------


@patient_link_page(REBOOKING)
def rebooking(request, token: str, missed: Visit):
    """The free slots of the next 30 days; a POST books the visit that replaces the missed one."""
    if request.method != "POST":
        return _show(request, token, REBOOKING, self_booking.rebooking_situation(missed))
    form = SlotChoiceForm(request.POST)
    if not form.is_valid():
        return _show(
            request, token, REBOOKING, self_booking.rebooking_situation(missed), form=form, status=400
        )
    try:
        self_booking.rebooking_by_patient(missed=missed, slot=form.cleaned_data["slot"])
    except ValidationError as error:
        situation = self_booking.rebooking_situation(_fresh(missed))
        return _show(request, token, REBOOKING, situation, problem=_refusal(error), status=409)
    return redirect("patient-rebooking-done", token=token)


@patient_link_page(REBOOKING, methods=GET_ONLY)
def rebooking_done(request, token: str, missed: Visit):
    situation = self_booking.rebooking_situation(missed)
    if situation.state != REBOOKED:
        return redirect("patient-rebooking", token=token)
    return _appointment_page(request, token, situation.visit, "rebook_confirmed")
