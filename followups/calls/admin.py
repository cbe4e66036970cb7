"""The call list in the staff panel (DOMAIN.md section 9): the front desk's page of patients to
call, the lost-to-follow-up page, their CSV exports, and the form each row carries to record an
attempt with its outcome.

Anyone who reads visits reads the lists; whoever writes contact data (front desk, clinician)
records attempts, through ``contact_attempt_record`` and nothing else. The visit's purpose names
its treatment, so only those who read the clinical record see it: the front desk sees the kind of
clinic the visit needs. The pages are mounted under the contact attempts' admin, which lists the
attempts read-only (they are recorded through these forms, never edited).

A page costs the same whatever the list's length: a count, a page of patients, their visits, the
audit. A search (``?q=``, ``patients.search``) keeps the rows whose patient matches, its count
included. The free slots of one row's visit are asked for when staff open them (``?book=<visit>``),
as the patient page does, so they add two queries to the page, not two per row.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone

from clinic.admin_csv import CsvExportAdmin, clinic_time, coded, csv_cell, patient_columns
from clinic.admin_services import AuditedAdmin, ReadOnlyAdmin, form_service_call, row_id
from clinic.audit import audit_record
from clinic.models import AuditEvent
from clinic.roles import Kind, may
from followups import booking
from followups.booking import Suggestion
from followups.calls.selectors import (
    CallRow,
    call_list,
    call_list_patients,
    call_rows,
    lost_to_follow_up_list,
    lost_to_follow_up_patients,
)
from followups.calls.services import ENDING, NOTE_MAX_LENGTH, contact_attempt_record
from followups.codes import CallReason, ContactChannel, ContactOutcome, VisitStatus
from followups.models import ContactAttempt, Slot, Visit
from followups.patient_page import rebooking_offers
from patients.models import Patient
from patients.search import SEARCH_HELP_TEXT, SearchByPatient, patients_matching

PER_PAGE = 50
# Slots offered on a row: a handful the caller can read out on the phone.
SUGGESTIONS_SHOWN = 6


@dataclass(frozen=True)
class CallList:
    """One of the two lists: what it is called, where it lives, whom it holds."""

    key: str
    title: str
    url_name: str
    csv_url_name: str
    filename: str
    patients: Callable[..., QuerySet[Patient]]  # its selector: in order, with what rows show
    who: Callable[..., QuerySet[Patient]]  # the same patients, unordered: what its pages count


CALL_LIST = CallList(
    "call",
    "Call list",
    "followups_call_list",
    "followups_call_list_csv",
    "call-list",
    call_list,
    call_list_patients,
)
LOST_LIST = CallList(
    "lost",
    "Lost to follow-up",
    "followups_lost_list",
    "followups_lost_list_csv",
    "lost-to-follow-up",
    lost_to_follow_up_list,
    lost_to_follow_up_patients,
)


class CountedApart:
    """A list's rows for the paginator, counted by a cheaper query of the same patients: the
    list's order needs every listed patient's keys, its length does not (issue 18)."""

    def __init__(self, rows: QuerySet[Patient], who: QuerySet[Patient]):
        self.rows, self.who = rows, who

    def count(self) -> int:
        return self.who.count()

    def __getitem__(self, index):
        return self.rows[index]


def list_url(which: CallList) -> str:
    return reverse(f"admin:{which.url_name}")


def _with_query(url: str, params: dict) -> str:
    return f"{url}?{urlencode(params)}" if params else url


def patient_page_url(patient_id) -> str:
    return reverse("admin:patients_patient_page", args=[patient_id])


def sees_purpose(user) -> bool:
    """A visit's purpose names its treatment: for those who read the clinical record only."""
    return may(user, Kind.CLINICAL, write=False)


def _long_day(on: date) -> str:
    return formats.date_format(on, "j M Y")


# --- the form of a row --------------------------------------------------------------------------


class ContactAttemptForm(forms.Form):
    """One attempt on one row, with what its outcome needs; the service judges the combination
    (a day to call again only for "call later", a booking only for "agreed", ...)."""

    channel = forms.ChoiceField(choices=ContactChannel.choices, initial=ContactChannel.PHONE)
    outcome = forms.ChoiceField(choices=[("", "— choose —"), *ContactOutcome.choices])
    remind_on = forms.DateField(
        label="Call again on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    seen_on = forms.DateField(
        label="Seen elsewhere on",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )
    note = forms.CharField(label="Note", required=False, max_length=NOTE_MAX_LENGTH)
    # One of the slots offered on the row (its id); checked against the slot itself by the service.
    slot = forms.CharField(required=False)
    scheduled_for = forms.DateTimeField(
        label="or a free time",
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    # The service refuses a free time outside the visit's window unless this is ticked; a slot the
    # row marked as outside the window is confirmed by picking it.
    confirm_outside_window = forms.BooleanField(label="even outside the window", required=False)

    def clean_slot(self) -> Slot | None:
        value = self.cleaned_data["slot"]
        if not value:
            return None
        slot = Slot.objects.filter(pk=row_id(value)).first()
        if slot is None:
            raise forms.ValidationError("This slot no longer exists: choose another.")
        return slot


def form_prefix(patient_id: int) -> str:
    return f"row{patient_id}"


def _visit_posted(request) -> Visit | None:
    """The visit the row was about; another patient's is left to the service to refuse."""
    visit_id = row_id(request.POST.get("visit"))
    return Visit.objects.filter(pk=visit_id).first() if visit_id else None


def _done_message(patient: Patient, attempt: ContactAttempt, visit: Visit | None) -> str:
    """What the attempt did, in the words the front desk would use."""
    outcome = attempt.outcome
    if outcome == ContactOutcome.CALL_LATER:
        text = f"Call later: hidden until {_long_day(attempt.remind_on)}."
    elif outcome == ContactOutcome.AGREED_TO_VISIT:
        booked = Visit.objects.select_related("slot__session").get(pk=visit.pk)
        rebooked = booked.status == VisitStatus.MISSED
        if rebooked:
            booked = Visit.objects.select_related("slot__session").get(rebooked_from=visit.pk)
        when = formats.date_format(timezone.localtime(booked.scheduled_for), "D j M H:i")
        where = f" ({booked.slot.session.label})" if booked.slot_id else ""
        text = f"{'Rebooked' if rebooked else 'Booked'} for {when}{where}."
    elif outcome == ContactOutcome.WRONG_NUMBER:
        text = "Wrong number: contact details marked for update."
    elif outcome == ContactOutcome.ALREADY_SEEN_ELSEWHERE:
        text = f"Seen elsewhere on {_long_day(attempt.seen_on)}: the visit is recorded as completed."
    elif outcome in ENDING:
        text = f"{attempt.get_outcome_display()}: follow-up ended, off the lists."
    else:
        text = f"{attempt.get_outcome_display()}: recorded, stays on the list."
    return f"{patient.given_name} {patient.family_name} — {text}"


@dataclass(frozen=True)
class Recorded:
    """A POSTed attempt: recorded (``attempt``), or refused with the messages on ``form``."""

    patient: Patient
    form: ContactAttemptForm
    attempt: ContactAttempt | None
    visit: Visit | None


def _record(request) -> Recorded | None:
    """Record the attempt a row's form posted; None when the row names no patient."""
    patient = Patient.objects.filter(pk=row_id(request.POST.get("row"))).first()
    if patient is None:
        return None
    form = ContactAttemptForm(request.POST, prefix=form_prefix(patient.pk))
    visit = _visit_posted(request)
    attempt = None
    if form.is_valid():
        done, attempt = form_service_call(
            form,
            lambda data: contact_attempt_record(
                patient=patient,
                channel=data["channel"],
                outcome=data["outcome"],
                by=request.user,
                visit=visit,
                remind_on=data["remind_on"],
                seen_on=data["seen_on"],
                note=data["note"],
                slot=data["slot"],
                scheduled_for=data["scheduled_for"],
                confirm_outside_window=data["slot"] is not None or data["confirm_outside_window"],
            ),
        )
        if not done:
            attempt = None
    return Recorded(patient, form, attempt, visit)


def _refusal_text(form: forms.Form) -> str:
    return " ".join(str(e) for errors in form.errors.values() for e in errors)


# --- the rows of a page -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A row of a page: the patient, the visit due (None when nothing is due: the record page),
    the form to record an attempt, the slots offered when staff opened them, and the row below."""

    patient: Patient
    call: CallRow | None
    form: ContactAttemptForm | None
    offers: list[Suggestion] | None = None
    after: int | None = None

    @property
    def reason(self) -> str:
        return CallReason(self.call.reason).label if self.call else ""

    @property
    def last_attempt(self) -> str:
        last = self.call.last_attempt if self.call else None
        if last is None:
            return ""
        return f"{ContactChannel(last.channel).label}: {ContactOutcome(last.outcome).label}"


def _offers(visit: Visit) -> list[Suggestion]:
    if visit.status == VisitStatus.MISSED:
        return rebooking_offers(visit)[:SUGGESTIONS_SHOWN]
    return booking.slot_suggestions(visit=visit, limit=SUGGESTIONS_SHOWN)


def _rows(calls: list[CallRow], *, may_record: bool, bound: Recorded | None, book: int | None) -> list[Row]:
    rows = []
    for n, call in enumerate(calls):
        patient = call.patient
        opened = book is not None and call.visit.pk == book
        form = None
        if may_record:
            if bound is not None and bound.patient.pk == patient.pk:
                form = bound.form
                # A refused booking: the slots again, to choose another.
                opened = opened or form.data.get(f"{form.prefix}-outcome") == ContactOutcome.AGREED_TO_VISIT
            else:
                initial = {"outcome": ContactOutcome.AGREED_TO_VISIT} if opened else {}
                form = ContactAttemptForm(prefix=form_prefix(patient.pk), initial=initial)
        after = calls[n + 1].patient.pk if n + 1 < len(calls) else None
        offers = _offers(call.visit) if form is not None and opened else None
        rows.append(Row(patient, call, form, offers, after))
    return rows


def _audit_read(request, patients: list[Patient], status: int) -> None:
    """A list names its patients with their phones: each one's record was read."""
    if patients and status < 400:
        audit_record(
            request=request,
            channel="admin",
            resource="patient",
            status=status,
            targets=[(p.uuid, p.uuid) for p in patients],
            action=AuditEvent.Action.READ,
        )


# --- the CSV export -----------------------------------------------------------------------------


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def due_day(visit: Visit) -> date:
    """The day the visit was due: a missed one's appointment, else the day it aimed at."""
    if visit.status == VisitStatus.MISSED:
        return timezone.localdate(visit.scheduled_for)
    return visit.due_on


CSV_COLUMNS = (
    "Name",
    "MRN",
    "Phone",
    "E-mail consent",
    "Visit kind",
    "Due day",
    "Window start",
    "Window end",
    "Reason",
    "Days overdue",
    "High risk",
    "Unreachable",
    "Last attempt at",
    "Last attempt channel",
    "Last attempt outcome",
)


def csv_values(row: CallRow, *, purpose: bool) -> list:
    patient, visit, last = row.patient, row.visit, row.last_attempt
    values = [
        f"{patient.given_name} {patient.family_name}",
        patient.mrn,
        patient.phone,
        _yes_no(patient.email_reminders),
        visit.get_visit_kind_display(),
        due_day(visit).isoformat(),
        visit.window_start.isoformat(),
        visit.window_end.isoformat(),
        CallReason(row.reason).label,
        row.days_overdue,
        _yes_no(row.high_risk),
        _yes_no(row.unreachable),
        timezone.localtime(last.at).strftime("%Y-%m-%d %H:%M") if last else "",
        ContactChannel(last.channel).label if last else "",
        ContactOutcome(last.outcome).label if last else "",
    ]
    if purpose:
        values.append(visit.purpose)
    return values


# --- the admin ----------------------------------------------------------------------------------


class AttemptPatientFilter(admin.SimpleListFilter):
    """The attempts of one patient (the patient page links here); only the chosen patient is
    offered, so the filter costs the same for a clinic of any size."""

    title = "patient"
    parameter_name = "patient"

    def lookups(self, request, model_admin):
        patient = Patient.objects.filter(pk=row_id(self.value())).first() if self.value() else None
        return [(str(patient.pk), str(patient))] if patient else []

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(patient_id=row_id(self.value()))
        return queryset


@admin.register(ContactAttempt)
class ContactAttemptAdmin(CsvExportAdmin, SearchByPatient, AuditedAdmin, ReadOnlyAdmin):
    """Attempts read-only (recorded through the call list's forms), and the lists themselves."""

    kind = Kind.CONTACT
    list_display = ("at", "patient", "channel", "outcome", "remind_on", "seen_on", "who", "note")
    list_filter = (AttemptPatientFilter, "outcome", "channel")
    list_select_related = ("patient", "by")
    date_hierarchy = "at"
    show_full_result_count = False
    fields = ("patient", "at", "channel", "outcome", "remind_on", "seen_on", "note", "who", "visit_due")
    readonly_fields = fields

    def csv_columns(self, request):
        return [
            (clinic_time("At"), lambda attempt: attempt.at),
            *patient_columns(),
            *coded("Channel", "channel"),
            *coded("Outcome", "outcome"),
            ("Call again on", lambda attempt: attempt.remind_on),
            ("Seen elsewhere on", lambda attempt: attempt.seen_on),
            ("Who", self.who),
            ("Note", lambda attempt: attempt.note),
        ]

    @admin.display(description="Who")
    def who(self, attempt):
        return attempt.by.get_username() if attempt.by_id else "the system"

    @admin.display(description="Visit")
    def visit_due(self, attempt):
        # The kind of clinic and its day, never the purpose (it names the treatment).
        visit = attempt.visit
        if visit is None:
            return "—"
        return f"{visit.get_visit_kind_display()}, {timezone.localdate(visit.scheduled_for):%Y-%m-%d}"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("call-list/", view(self.call_list_view), name=CALL_LIST.url_name),
            path("call-list/csv/", view(self.call_list_csv_view), name=CALL_LIST.csv_url_name),
            path("lost/", view(self.lost_list_view), name=LOST_LIST.url_name),
            path("lost/csv/", view(self.lost_list_csv_view), name=LOST_LIST.csv_url_name),
            path(
                "record/<path:object_id>/",
                view(self.record_view),
                name="followups_contact_attempt_record",
            ),
            *super().get_urls(),
        ]

    def call_list_view(self, request):
        return self._list_view(request, CALL_LIST)

    def lost_list_view(self, request):
        return self._list_view(request, LOST_LIST)

    def call_list_csv_view(self, request):
        return self._csv_view(request, CALL_LIST)

    def lost_list_csv_view(self, request):
        return self._csv_view(request, LOST_LIST)

    def _list_view(self, request, which: CallList):
        user = request.user
        if not may(user, Kind.VISIT, write=False):
            raise PermissionDenied
        may_record = may(user, Kind.CONTACT, write=True)
        today = timezone.localdate()
        search = request.GET.get("q", "").strip()
        paginator = Paginator(
            CountedApart(
                patients_matching(which.patients(today=today), search),
                patients_matching(which.who(today=today), search),
            ),
            PER_PAGE,
        )
        page = paginator.get_page(request.GET.get("page"))
        searched = {"q": search} if search else {}
        here = f"{list_url(which)}?{urlencode({**searched, 'page': page.number})}"
        bound = None
        if request.method == "POST":
            if not may_record:
                raise PermissionDenied
            bound = _record(request)
            if bound is None:
                messages.error(request, "This patient is not on the list any more.")
                return HttpResponseRedirect(here)
            if bound.attempt is not None:
                after = row_id(request.POST.get("after"))
                response = HttpResponseRedirect(f"{here}#{f'row-{after}' if after else 'call-rows'}")
                return self._recorded(request, response, bound)
        calls = call_rows(page.object_list, today=today)
        rows = _rows(calls, may_record=may_record, bound=bound, book=row_id(request.GET.get("book")))
        if bound is not None and all(row.patient.pk != bound.patient.pk for row in rows):
            messages.error(request, f"Not recorded for {bound.patient}: {_refusal_text(bound.form)}")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": which.title,
            "which": which,
            "rows": rows,
            "page": page,
            "paginator": paginator,
            "page_range": paginator.get_elided_page_range(page.number),
            "here": here,
            "list_url": list_url(which),
            # The page's search: its form shows it, its page links and its export keep it.
            "search": search,
            "search_help_text": SEARCH_HELP_TEXT,
            "searched_query": urlencode(searched),
            "csv_url": _with_query(reverse(f"admin:{which.csv_url_name}"), searched),
            "call_list_url": list_url(CALL_LIST),
            "lost_list_url": list_url(LOST_LIST),
            "may_record": may_record,
            "sees_purpose": sees_purpose(user),
            "today": today,
        }
        response = TemplateResponse(request, "admin/followups/calls/call_list.html", context)
        _audit_read(request, [row.patient for row in rows], response.status_code)
        return response

    def _recorded(self, request, response, recorded: Recorded):
        self._audit(request, response, [recorded.attempt], action=AuditEvent.Action.CREATE)
        self.message_user(
            request, _done_message(recorded.patient, recorded.attempt, recorded.visit), messages.SUCCESS
        )
        return response

    def _csv_view(self, request, which: CallList):
        user = request.user
        if not may(user, Kind.VISIT, write=False):
            raise PermissionDenied
        today = timezone.localdate()
        # The whole list, or what its search kept, in two queries (its patients, their visits),
        # whatever its length.
        patients = patients_matching(which.patients(today=today), request.GET.get("q", "").strip())
        rows = call_rows(patients, today=today)
        purpose = sees_purpose(user)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{which.filename}-{today.isoformat()}.csv"'
        writer = csv.writer(response)
        writer.writerow([*CSV_COLUMNS, *(["Purpose"] if purpose else [])])
        for row in rows:
            writer.writerow([csv_cell(value) for value in csv_values(row, purpose=purpose)])
        _audit_read(request, [row.patient for row in rows], response.status_code)
        return response

    def record_view(self, request, object_id):
        """One patient's attempt, from the patient page: the row the lists show for the patient,
        or the patient alone when nothing is due (a call the patient made, a letter back)."""
        patient = Patient.objects.filter(pk=row_id(object_id)).first()
        if patient is None:
            raise Http404
        if not may(request.user, Kind.CONTACT, write=True):
            raise PermissionDenied
        today = timezone.localdate()
        bound = None
        if request.method == "POST":
            bound = _record(request)
            if bound is not None and bound.attempt is not None:
                response = HttpResponseRedirect(f"{patient_page_url(patient.pk)}#patient-contacts")
                return self._recorded(request, response, bound)
        calls = call_rows(call_list(today=today).filter(pk=patient.pk), today=today) or call_rows(
            lost_to_follow_up_list(today=today).filter(pk=patient.pk), today=today
        )
        book = row_id(request.GET.get("book"))
        if calls:
            row = _rows(calls, may_record=True, bound=bound, book=book)[0]
        else:
            form = bound.form if bound else ContactAttemptForm(prefix=form_prefix(patient.pk))
            row = Row(patient, None, form)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Contact attempt: {patient.given_name} {patient.family_name} ({patient.mrn})",
            "row": row,
            "here": reverse("admin:followups_contact_attempt_record", args=[patient.pk]),
            "patient_page": patient_page_url(patient.pk),
            "call_list_url": list_url(CALL_LIST),
            "sees_purpose": sees_purpose(request.user),
            "today": today,
        }
        response = TemplateResponse(request, "admin/followups/calls/record.html", context)
        _audit_read(request, [patient], response.status_code)
        return response
