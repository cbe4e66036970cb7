"""Clinic sessions in the staff panel (DOMAIN.md section 12): the session templates the clinic keeps,
and its calendar of dated sessions, by day or by week, where a session is cancelled for a day.

Templates are written through ``followups.sessions.session_template_save``, which reworks the
sessions ahead at once, and never deleted: a template ends with its last day (``valid_to``). Who
keeps the calendar is whoever books visits (``Kind.VISIT``): front desk, nurses and clinicians.
"""

from __future__ import annotations

from datetime import date, timedelta
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.dates import WEEKDAYS
from simple_history.admin import SimpleHistoryAdmin

from clinic.admin_services import ReadOnlyAdmin, ServiceAdmin, ServiceForm, row_id
from clinic.audit import audit_record
from clinic.models import AuditEvent
from clinic.roles import Kind
from followups.codes import VisitKind, VisitStatus
from followups.models import ClinicSession, SessionTemplate, Visit
from followups.session_calendar import WEEK, clinic_calendar, week_start
from followups.sessions import (
    SESSION_CANCEL_REASON_MAX_LENGTH,
    TEMPLATE_FIELDS,
    session_cancel,
    session_template_save,
)
from patients.admin import sees_clinical


def long_day(on: date) -> str:
    return formats.date_format(on, "l j F Y")


# --- templates ----------------------------------------------------------------------------------


def _audit_visits(request, visits, status: int, **action) -> None:
    """The audit of a page that names booked patients (read) or changed their visits (update)."""
    if visits:
        audit_record(
            request=request,
            channel="admin",
            resource="visit",
            status=status,
            targets=[(visit.uuid, visit.patient.uuid) for visit in visits],
            **action,
        )


class SessionTemplateForm(ServiceForm):
    weekday = forms.TypedChoiceField(choices=list(WEEKDAYS.items()), coerce=int)
    # Left optional here: the service says when no kind is ticked.
    visit_kinds = forms.MultipleChoiceField(
        label="Visit kinds served",
        choices=VisitKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = SessionTemplate
        fields = (*TEMPLATE_FIELDS, "visit_kinds")
        help_texts = {
            "valid_to": "A template is never deleted: to end it, give its last day. Its sessions after "
            "that day go, unless they hold bookings."
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["visit_kinds"] = list(self.instance.kind_rows.values_list("visit_kind", flat=True))

    def write(self, instance, data):
        kinds = data.pop("visit_kinds")
        # What the save did to the sessions ahead, for the message the admin shows after it.
        self.saved = session_template_save(template=instance, visit_kinds=kinds, **data)
        return self.saved.template


def template_saved_message(saved) -> str:
    text = f"Sessions ahead: {saved.generated} generated, {saved.removed} removed"
    if not saved.kept_with_bookings:
        return text + "."
    return (
        f"{text}, {saved.kept_with_bookings} with bookings kept as they were: "
        "check their visits in the calendar if the hours changed."
    )


@admin.register(SessionTemplate)
class SessionTemplateAdmin(ServiceAdmin, SimpleHistoryAdmin):
    """The clinic's recurring sessions; ending one means giving it a last day, not deleting it
    (its sessions keep their bookings and history)."""

    kind = Kind.VISIT
    form = SessionTemplateForm
    list_display = (
        "label",
        "day",
        "hours",
        "slot_minutes",
        "capacity",
        "kinds",
        "valid_from",
        "valid_to",
    )
    list_filter = ("weekday",)
    search_fields = ("label",)
    ordering = ("weekday", "starts_at", "label")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("kind_rows")

    @admin.display(description="Day", ordering="weekday")
    def day(self, template):
        return WEEKDAYS[template.weekday]

    @admin.display(description="Hours", ordering="starts_at")
    def hours(self, template):
        return f"{template.starts_at:%H:%M}–{template.ends_at:%H:%M}"

    @admin.display(description="Visit kinds")
    def kinds(self, template):
        return ", ".join(row.get_visit_kind_display() for row in template.kind_rows.all())

    def save_model(self, request, obj, form, change):
        self.message_user(request, template_saved_message(form.saved), messages.SUCCESS)


# --- the calendar of dated sessions -------------------------------------------------------------


def calendar_url(view: str, on: date) -> str:
    """The day or week view (``view``) at ``on``."""
    return f"{reverse(f'admin:followups_clinicsession_{view}')}?{urlencode({'on': on.isoformat()})}"


# Further from today than this, a day asked for is a typo (and near the years 1 or 9999 a step of
# a week would leave the calendar): the calendar shows today instead.
FARTHEST_DAY = timedelta(days=3653)


def _day_asked(request, today: date) -> date:
    try:
        on = date.fromisoformat(request.GET.get("on", ""))
    except ValueError:
        return today
    return on if abs(on - today) <= FARTHEST_DAY else today


class SessionCancelForm(forms.Form):
    # Left optional here: the service says when the reason is missing.
    reason = forms.CharField(label="Reason", max_length=SESSION_CANCEL_REASON_MAX_LENGTH, required=False)


def _refusal_on_form(form: forms.Form, error: ValidationError) -> None:
    """The service's refusal on the form: a missing reason on its field, the rest above it."""
    for field, texts in error.message_dict.items():
        for text in texts:
            form.add_error("reason" if field == "reason" else None, text)


@admin.register(ClinicSession)
class ClinicSessionAdmin(ReadOnlyAdmin):
    """Sessions are made from templates; here they are read as a calendar and cancelled for a day."""

    kind = Kind.VISIT

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("week/", view(self.week_view), name="followups_clinicsession_week"),
            path("day/", view(self.day_view), name="followups_clinicsession_day"),
            path("<path:object_id>/cancel/", view(self.cancel_view), name="followups_clinicsession_cancel"),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        return HttpResponseRedirect(reverse("admin:followups_clinicsession_week"))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        session = self._session(request, object_id)
        return HttpResponseRedirect(calendar_url("day", session.on))

    def _session(self, request, object_id) -> ClinicSession:
        session = ClinicSession.objects.filter(pk=row_id(object_id)).first()
        if session is None:
            raise Http404
        if not self.has_view_permission(request):
            raise PermissionDenied
        return session

    def week_view(self, request):
        return self._calendar_view(request, days=WEEK)

    def day_view(self, request):
        return self._calendar_view(request, days=1)

    def _calendar_view(self, request, *, days: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        today = timezone.localdate()
        on = _day_asked(request, today)
        week = days == WEEK
        first = week_start(on) if week else on
        calendar = clinic_calendar(first=first, days=days)
        view = "week" if week else "day"
        step = timedelta(days=days)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Clinic sessions: week of {long_day(first)}"
            if week
            else f"Clinic sessions: {long_day(on)}",
            "calendar": calendar,
            "week": week,
            "today": today,
            "on": on,
            "previous_url": calendar_url(view, first - step),
            "next_url": calendar_url(view, first + step),
            "today_url": calendar_url(view, today),
            "day_url": calendar_url("day", on),
            "week_url": calendar_url("week", on),
            "may_cancel": self.has_write_permission(request),
            "here": request.get_full_path(),
        }
        response = TemplateResponse(request, "admin/followups/clinic_calendar.html", context)
        # The calendar names the booked patients: their records were read.
        _audit_visits(request, calendar.visits, response.status_code)
        return response

    def cancel_view(self, request, object_id):
        """Cancel one dated session (a holiday, an absence) with its reason, after showing whose
        appointments it takes away."""
        session = self._session(request, object_id)
        if not self.has_write_permission(request):
            raise PermissionDenied
        booked = list(
            Visit.objects.filter(slot__session=session, status=VisitStatus.BOOKED)
            .select_related("patient")
            .order_by("scheduled_for", "id")
        )
        form = SessionCancelForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():
                    session_cancel(session=session, reason=form.cleaned_data["reason"], by=request.user)
            except ValidationError as error:
                _refusal_on_form(form, error)
            else:
                return self._cancelled(request, session, booked)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Cancel {session.label} on {long_day(session.on)}",
            "session": session,
            "booked": booked,
            # A purpose names the treatment: the front desk reads the kind of clinic instead.
            "sees_purpose": sees_clinical(request),
            "form": form,
            "day_url": calendar_url("day", session.on),
        }
        return TemplateResponse(request, "admin/followups/session_cancel.html", context)

    def _cancelled(self, request, session: ClinicSession, booked: list[Visit]) -> HttpResponseRedirect:
        response = HttpResponseRedirect(calendar_url("day", session.on))
        _audit_visits(request, booked, response.status_code, action=AuditEvent.Action.UPDATE)
        told = (
            f" {len(booked)} booked visit(s) went back to planned and wait on the call list; "
            "their patients who take e-mails are asked to book again."
            if booked
            else " No visit was booked in it."
        )
        self.message_user(
            request, f"{session.label} on {long_day(session.on)}: cancelled.{told}", messages.SUCCESS
        )
        return response
