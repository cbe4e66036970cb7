"""Follow-up in the admin: protocols to edit, visits and measurements, derived rows to read.

Also the staff panel's own pages: the visit worklists behind the dashboard's counts
(``followups.dashboard``), the patient page (``followups.patient_page``, served under the patient's
admin, which this module extends so that ``patients`` never imports follow-up), and the actions on
visits, reminders and patients, each a form that translates and a service that decides. The
clinic's sessions and their calendar are ``followups.admin_sessions``; the call list and the
lost-to-follow-up list, ``followups.calls.admin``.
"""

import re

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from simple_history.admin import SimpleHistoryAdmin

import followups.admin_sessions  # noqa: F401  (registers the admins of clinic sessions)
from clinic.admin_csv import CsvExportAdmin, clinic_time, coded, patient_columns
from clinic.admin_services import (
    AuditedAdmin,
    ReadOnlyAdmin,
    RoleAdmin,
    RoleInline,
    ServiceAdmin,
    ServiceForm,
    form_service_call,
    row_id,
)
from clinic.models import AuditEvent
from clinic.roles import Kind, Role, may, role_of
from followups import codes, reminders, scale_anchors, services
from followups.calls import admin as calls_admin  # noqa: F401  (registers contact attempts, mounts the call lists)
from followups.dashboard import WORKLISTS, visit_worklist_filter
from followups.flags_store import flag_acknowledge
from followups.models import (
    Assessment,
    LabResult,
    PatientFlag,
    Protocol,
    ProtocolStep,
    Reminder,
    Slot,
    TreatmentOutcome,
    Visit,
)
from followups.patient_page import (
    patient_page,
    visit_actions,
    visit_assessable,
    visit_named,
    visit_named_on,
)
from followups.runs.starting import protocol_run_start
from followups.selectors import flags_to_review
from followups.tasks import queue_chunks
from followups.visit_moves import MAY_CORRECT, visit_move
from patients import services as record
from patients.admin import BackToPatientPage, PatientAdmin, sees_clinical
from patients.codes import TreatmentKind
from patients.models import Patient
from patients.search import SearchByPatient


def patient_page_url(patient_id) -> str:
    return reverse("admin:patients_patient_page", args=[patient_id])


def visit_on_page_url(visit: Visit) -> str:
    """The patient page, scrolled to the visit."""
    return f"{patient_page_url(visit.patient_id)}#visit-{visit.pk}"


def slots_on_page_url(visit: Visit) -> str:
    """The patient page with the slots offered for the visit open, scrolled to them."""
    return f"{patient_page_url(visit.patient_id)}?book={visit.pk}#visit-{visit.pk}-slots"


def patient_cell(patient: Patient):
    """A list row's patient as the front desk needs them: the name opening the patient page, the
    MRN, and the phone to call (a ``tel:`` link)."""
    phone = (
        format_html(' · <a href="tel:{}">{}</a>', re.sub(r"[^\d+]", "", patient.phone), patient.phone)
        if patient.phone
        else ""
    )
    return format_html(
        '<a href="{}" data-test="row-patient-{}"><strong>{}, {}</strong></a>'
        '<br><span class="quiet">{}{}</span>',
        patient_page_url(patient.pk),
        patient.pk,
        patient.family_name,
        patient.given_name,
        patient.mrn,
        phone,
    )


def booked_message(visit: Visit, *, rebooked: bool = False) -> str:
    when = formats.date_format(timezone.localtime(visit.scheduled_for), "j F Y, H:i")
    where = f" ({visit.slot.session.label})" if visit.slot_id else ""
    # The kind of clinic, not the purpose: the front desk books, and a purpose names the treatment.
    return f"{visit.get_visit_kind_display()}: {'rebooked' if rebooked else 'booked'} for {when}{where}."


def _back(request, patient_id) -> HttpResponseRedirect:
    """Back where the action came from when that is this site, else to the patient page."""
    target = request.POST.get("next") or request.GET.get("next")
    if not target or not url_has_allowed_host_and_scheme(target, {request.get_host()}, request.is_secure()):
        target = patient_page_url(patient_id)
    return HttpResponseRedirect(target)


class ProtocolStepInline(RoleInline, admin.TabularInline):
    model = ProtocolStep
    editable = True
    extra = 0
    fields = (
        "order",
        "code",
        "purpose",
        "anchor",
        "offset_days",
        "window_before_days",
        "window_after_days",
        "repeat",
        "repeat_every_days",
        "repeat_until_day",
        "only_for_drug",
    )

    def has_delete_permission(self, request, obj=None):
        # Visits point at their step; a step that should stop applying is given a new offset
        # or drug, and the visits it planned stay as they are.
        return False


@admin.register(Protocol)
class ProtocolAdmin(RoleAdmin, SimpleHistoryAdmin):
    kind = Kind.CLINICAL
    list_display = ("name", "code", "treatment_kind")
    search_fields = ("name", "code")
    inlines = [ProtocolStepInline]
    actions = ["reapply"]

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(
        description="Re-plan the patients of the selected protocols under their steps now",
        permissions=["change"],
    )
    def reapply(self, request, queryset):
        """An edit applies to plans made from then on; this re-plans everyone a protocol concerns
        now, as a run of chunks the workers take (issue 18), not in this request."""
        for protocol in queryset:
            run = protocol_run_start(protocol=protocol, queue=queue_chunks)
            self.message_user(
                request,
                f"{protocol.name}: {run.patients} patients to re-plan (follow-up run {run.pk}); "
                "the workers take them in chunks.",
                messages.SUCCESS,
            )


class VisitWorklistFilter(admin.SimpleListFilter):
    """The dashboard's worklists (``followups.dashboard``): the same condition gives count and list."""

    title = "worklist"
    parameter_name = "worklist"

    def lookups(self, request, model_admin):
        return list(WORKLISTS.items())

    def queryset(self, request, queryset):
        if self.value() in WORKLISTS:
            return queryset.filter(visit_worklist_filter(self.value(), timezone.localdate()))
        return queryset


class VisitTimeForm(forms.Form):
    scheduled_for = forms.DateTimeField(
        label="Date and time",
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )


class VisitBookForm(VisitTimeForm):
    # The panel asks before booking outside the window (DOMAIN.md 2): the service refuses such a
    # time with a message that says to tick this box.
    confirm_outside_window = forms.BooleanField(label="Book even outside the visit's window", required=False)


class VisitReasonForm(forms.Form):
    # Left optional here: the service says when a reason is missing.
    reason = forms.CharField(label="Reason", max_length=200, required=False)


class VisitConfirmForm(forms.Form):
    pass


def _move(to):
    """An action that moves the visit through ``visit_move`` with the form's data."""
    return lambda visit, data, user: visit_move(visit=visit, to=to, by=user, **data)


# action: (label, form, service call with the visit, the form's cleaned data and the staff user)
VISIT_ACTIONS = {
    "book": ("Book / reschedule", VisitBookForm, _move(codes.VisitStatus.BOOKED)),
    "rebook": (
        "Rebook",
        VisitTimeForm,
        lambda visit, data, user: services.visit_rebook(visit=visit, scheduled_for=data["scheduled_for"]),
    ),
    "unbook": ("Give up the booking", VisitConfirmForm, _move(codes.VisitStatus.PLANNED)),
    "complete": ("Complete", VisitConfirmForm, _move(codes.VisitStatus.COMPLETED)),
    "missed": ("Mark missed", VisitConfirmForm, _move(codes.VisitStatus.MISSED)),
    "cancel": ("Cancel", VisitReasonForm, _move(codes.VisitStatus.CANCELLED)),
    "correct": ("Correct back to booked", VisitReasonForm, _move(codes.VisitStatus.BOOKED)),
}

# Fields of a visit that tell its treatment: not shown to staff who may not read the clinical record,
# who read the kind of clinic instead of the purpose ("Re-injection visit (day 84)").
CLINICAL_VISIT_FIELDS = ("treatment", "diagnosis", "protocol_step", "anchor_on", "protocol_day", "purpose")


@admin.register(Visit)
class VisitAdmin(CsvExportAdmin, SearchByPatient, AuditedAdmin, ReadOnlyAdmin, SimpleHistoryAdmin):
    kind = Kind.VISIT
    list_display = ("patient_named", "purpose", "when", "window", "status", "next_step")
    list_display_links = ("when",)
    list_filter = (VisitWorklistFilter, "status", "source", "protocol_step__protocol")
    list_select_related = ("patient",)
    date_hierarchy = "scheduled_for"
    show_full_result_count = False

    def csv_columns(self, request):
        # The purpose names the treatment: the front desk gets the kind of clinic alone, as its list.
        purpose = [("Purpose", lambda visit: visit.purpose)] if sees_clinical(request) else []
        return [
            *patient_columns(),
            ("Phone", lambda visit: visit.patient.phone),
            (clinic_time("When"), lambda visit: visit.scheduled_for),
            ("Window start", lambda visit: visit.window_start),
            ("Window end", lambda visit: visit.window_end),
            *coded("Status", "status"),
            *coded("Visit kind", "visit_kind"),
            *purpose,
            *coded("Source", "source"),
        ]

    @admin.display(description="Rebooked from")
    def rebooked_from_named(self, visit):
        # The missed visit's own name would be its purpose: this field replaces it for the front desk.
        missed = visit.rebooked_from
        return visit_named_on(missed, clinical=False) if missed else "—"

    @admin.display(description="Patient", ordering="patient__family_name")
    def patient_named(self, visit):
        return patient_cell(visit.patient)

    @admin.display(description="When", ordering="scheduled_for")
    def when(self, visit):
        return formats.date_format(timezone.localtime(visit.scheduled_for), "Y-m-d H:i")

    @admin.display(description="Window", ordering="window_start")
    def window(self, visit):
        if visit.window_start is None:
            return "—"
        return f"{visit.window_start:%Y-%m-%d} – {visit.window_end:%Y-%m-%d}"

    @admin.display(description="Next step")
    def next_step(self, visit):
        """The step the list is worked for, as a button: a planned visit is booked, a missed one
        rebooked (both by picking a slot on the patient page), a booked one moved or completed."""
        if visit.status == codes.VisitStatus.PLANNED:
            label, url = "Book", slots_on_page_url(visit)
        elif visit.status == codes.VisitStatus.MISSED:
            label, url = "Rebook", slots_on_page_url(visit)
        else:
            label, url = "Actions", reverse("admin:followups_visit_act", args=[visit.pk])
        return format_html(
            '<a class="button" href="{}" data-test="visit-actions-{}">{}</a>', url, visit.pk, label
        )

    def get_list_display(self, request):
        shown = super().get_list_display(request)
        if sees_clinical(request):
            return shown
        return [("visit_kind" if name == "purpose" else name) for name in shown]

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if sees_clinical(request):
            return filters
        return [f for f in filters if f != "protocol_step__protocol"]

    def lookup_allowed(self, lookup, value, request=None):
        # Filtering by a hidden field would still tell its value (``?purpose__icontains=...``).
        if lookup.split("__")[0] in CLINICAL_VISIT_FIELDS and (request is None or not sees_clinical(request)):
            return False
        return super().lookup_allowed(lookup, value, request)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if sees_clinical(request):
            return fields
        return [
            "rebooked_from_named" if name == "rebooked_from" else name
            for name in fields
            if name not in CLINICAL_VISIT_FIELDS
        ]

    def has_view_history_or_change_history_permission(self, request, obj=None):
        # Each past version shows every field, the purpose and the treatment among them.
        return sees_clinical(request) and super().has_view_history_or_change_history_permission(request, obj)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and not sees_clinical(request):
            # The page's heading and breadcrumbs would name the visit by ``Visit.__str__``: its purpose.
            context["subtitle"] = context["visit_named"] = visit_named_on(obj, clinical=False)
        context["history_shown"] = self.has_view_history_or_change_history_permission(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self):
        return [
            path(
                "<path:object_id>/act/", self.admin_site.admin_view(self.act_view), name="followups_visit_act"
            ),
            path(
                "<path:object_id>/book-slot/",
                self.admin_site.admin_view(self.book_slot_view),
                name="followups_visit_book_slot",
            ),
            *super().get_urls(),
        ]

    @staticmethod
    def _done_message(action: str, label: str, result, *, clinical: bool) -> str:
        if action in ("book", "rebook"):
            return booked_message(result, rebooked=action == "rebook")
        return f"{label}: done ({visit_named_on(result, clinical=clinical)})."

    def book_slot_view(self, request, object_id):
        """Book the visit into a slot the patient page offered (a missed one: book its rebooking);
        POST only. Back to the patient page at the visit; a refusal (the slot was just taken, the
        session cancelled meanwhile) is a message there, above the slots offered afresh."""
        visit = Visit.objects.filter(pk=row_id(object_id)).first()
        if visit is None:
            raise Http404
        if request.method != "POST" or not self.has_write_permission(request):
            raise PermissionDenied
        slot_id = request.POST.get("slot", "")
        slot = Slot.objects.filter(pk=row_id(slot_id)).first()
        if slot is None:
            messages.error(request, "This slot no longer exists: choose another.")
            return HttpResponseRedirect(slots_on_page_url(visit))
        rebooking = visit.status == codes.VisitStatus.MISSED
        try:
            with transaction.atomic():
                if rebooking:
                    booked = services.visit_rebook(visit=visit, slot=slot)
                else:
                    # Never a correction of a completed visit: that asks for a reason, on its own form.
                    booked = visit_move(
                        visit=visit,
                        to=codes.VisitStatus.BOOKED,
                        by=request.user,
                        slot=slot,
                        correction=False,
                        # The page marks a slot after the window as such: picking it confirms it.
                        confirm_outside_window=True,
                    )
        except ValidationError as error:
            messages.error(request, f"Not booked: {' '.join(error.messages)}")
            return HttpResponseRedirect(slots_on_page_url(visit))
        response = HttpResponseRedirect(visit_on_page_url(booked))
        self._audit(request, response, [booked], action=AuditEvent.Action.UPDATE)
        self.message_user(request, booked_message(booked, rebooked=rebooking), messages.SUCCESS)
        return response

    def act_view(self, request, object_id):
        """One visit's actions: each a form that translates and a service that decides."""
        visit = Visit.objects.select_related("patient", "rebooked_as").filter(pk=object_id).first()
        if visit is None:
            raise Http404
        if not self.has_write_permission(request):
            raise PermissionDenied
        allowed = visit_actions(visit, may_correct=role_of(request.user) in MAY_CORRECT)
        bound = None
        if request.method == "POST":
            action = request.POST.get("action")
            if action not in VISIT_ACTIONS:
                messages.error(request, "Choose an action.")
            else:
                label, form_class, call = VISIT_ACTIONS[action]
                form = form_class(request.POST, prefix=action)
                if form.is_valid():
                    done, result = form_service_call(form, lambda data: call(visit, data, request.user))
                    if done:
                        response = _back(request, visit.patient_id)
                        self._audit(request, response, [visit], action=AuditEvent.Action.UPDATE)
                        done = self._done_message(action, label, result, clinical=sees_clinical(request))
                        self.message_user(request, done, messages.SUCCESS)
                        return response
                bound = (action, form)
        forms_by_action = [
            (
                action,
                VISIT_ACTIONS[action][0],
                bound[1] if bound and bound[0] == action else VISIT_ACTIONS[action][1](prefix=action),
            )
            for action in dict.fromkeys([*allowed, *([bound[0]] if bound else [])])
        ]
        named = visit_named(visit, clinical=sees_clinical(request))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{named}: actions",
            "visit": visit,
            "visit_named": named,
            "patient_page": patient_page_url(visit.patient_id),
            "forms": forms_by_action,
            "slots_url": slots_on_page_url(visit) if {"book", "rebook"} & set(allowed) else "",
            "may_assess": may(request.user, Kind.ASSESSMENT, write=True),
            "assessable": visit_assessable(visit),
            "today": timezone.localdate(),
            "next": request.POST.get("next") or request.GET.get("next", ""),
        }
        response = TemplateResponse(request, "admin/followups/visit_act.html", context)
        # The page shows the patient and the visit (a form sent back with its errors, too): a read.
        self._audit(request, response, [visit], action=AuditEvent.Action.READ)
        return response


def visit_choice_label(visit: Visit) -> str:
    day = timezone.localdate(visit.scheduled_for)
    return f"{visit.purpose}, {day:%Y-%m-%d} ({visit.get_status_display().lower()})"


class AssessmentForm(ServiceForm):
    triggers = forms.MultipleChoiceField(
        choices=codes.Trigger.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    adverse_effects = forms.MultipleChoiceField(
        choices=codes.AdverseEffect.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Assessment
        fields = ("patient", *services.ASSESSMENT_FIELDS, "triggers", "adverse_effects")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, anchors in scale_anchors.ANCHORS.items():
            self.fields[name] = forms.TypedChoiceField(
                label=self.fields[name].label,
                choices=[("", "—"), *anchors],
                coerce=int,
                empty_value=None,
                required=False,
                help_text=scale_anchors.HELP.get(name, ""),
            )
        for name in Assessment.HFS7_ITEMS:
            self.fields[name].help_text = scale_anchors.HFS7_HELP
        for name, text in scale_anchors.HELP.items():
            if name not in scale_anchors.ANCHORS:
                self.fields[name].help_text = text
        self._visits_of(self.instance.patient_id if self.instance.pk else self._patient_asked())
        if self.instance.pk:
            self.fields["patient"].disabled = True
            self.initial["triggers"] = list(self.instance.trigger_rows.values_list("trigger", flat=True))
            self.initial["adverse_effects"] = list(
                self.instance.adverse_effect_rows.values_list("adverse_effect", flat=True)
            )

    def _patient_asked(self) -> int | None:
        return row_id(self.data.get("patient") if self.is_bound else self.initial.get("patient"))

    def _visits_of(self, patient_id: int | None) -> None:
        """The visit is chosen from the patient's own, newest first, named as staff know them;
        before a patient is chosen there is nothing to choose from."""
        field = self.fields["visit"]
        # An assessment keeps its visit on the list even once that visit was cancelled: else the
        # select would fall to "none" and saving would unlink it.
        kept = Q(pk=self.instance.visit_id) if self.instance.visit_id else Q(pk__in=[])
        field.queryset = (
            Visit.objects.filter(patient_id=patient_id)
            .filter(~Q(status=codes.VisitStatus.CANCELLED) | kept)
            .order_by("-scheduled_for", "-pk")
            if patient_id
            else Visit.objects.none()
        )
        field.label_from_instance = visit_choice_label
        field.help_text = (
            "The visit the measurements were taken at; none for measurements between visits."
            if patient_id
            else "Open this form from the patient's page to choose one of their visits."
        )

    def write(self, instance, data):
        patient = data.pop("patient")
        if instance is None:
            return services.assessment_record(patient=patient, source=services.source_of(self.user), **data)
        return services.assessment_update(assessment=instance, **data)


@admin.register(Assessment)
class AssessmentAdmin(CsvExportAdmin, SearchByPatient, AuditedAdmin, ServiceAdmin, SimpleHistoryAdmin):
    kind = Kind.ASSESSMENT
    form = AssessmentForm
    list_display = (
        "patient",
        "assessed_on",
        "spasms_per_day",
        "cohen_albert_grade",
        "jankovic_total",
        "hfs7_total",
        "source",
        "status",
    )
    list_filter = ("status", "source", "cohen_albert_grade", "smc_grade")
    readonly_fields = ("source",)
    list_select_related = ("patient",)
    autocomplete_fields = ("patient",)
    show_full_result_count = False

    def csv_columns(self, request):
        return [
            *patient_columns(),
            ("Assessed on", lambda row: row.assessed_on),
            ("Spasms per day", lambda row: row.spasms_per_day),
            ("Episode duration (s)", lambda row: row.episode_duration_seconds),
            ("Cohen-Albert grade", lambda row: row.cohen_albert_grade),
            ("SMC grade", lambda row: row.smc_grade),
            ("Jankovic total", lambda row: row.jankovic_total),
            ("House-Brackmann grade", lambda row: row.house_brackmann_grade),
            ("HFS-7 total", lambda row: row.hfs7_total),
            *coded("Source", "source"),
            *coded("Status", "status"),
            ("Notes", lambda row: row.notes),
        ]

    def response_add(self, request, obj, post_url_continue=None):
        # Recorded from the patient page (or a visit's actions): back to the patient and the outcome.
        if "_addanother" in request.POST or "_continue" in request.POST:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(request, f"{obj} recorded.", messages.SUCCESS)
        return HttpResponseRedirect(patient_page_url(obj.patient_id))


class LabResultForm(ServiceForm):
    class Meta:
        model = LabResult
        fields = ("patient", "test", "taken_on", "value", "abnormal")

    def write(self, instance, data):
        if instance is not None:
            raise forms.ValidationError("A result is not edited; retract it and record the right one.")
        return services.lab_result_record(**data)


@admin.register(LabResult)
class LabResultAdmin(
    BackToPatientPage, CsvExportAdmin, SearchByPatient, AuditedAdmin, ServiceAdmin, SimpleHistoryAdmin
):
    kind = Kind.ASSESSMENT
    form = LabResultForm
    page_anchor = "lab"
    list_display = ("patient", "test", "taken_on", "value", "abnormal", "status")
    list_filter = ("test", "status", "abnormal")
    list_select_related = ("patient",)
    autocomplete_fields = ("patient",)
    show_full_result_count = False

    def csv_columns(self, request):
        return [
            *patient_columns(),
            *coded("Test", "test"),
            ("Taken on", lambda result: result.taken_on),
            ("Value", lambda result: result.value),
            ("Abnormal", lambda result: result.abnormal),
            *coded("Status", "status"),
        ]


@admin.register(TreatmentOutcome)
class TreatmentOutcomeAdmin(CsvExportAdmin, SearchByPatient, AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = (
        "treatment",
        "category",
        "soriano_baron",
        "days_to_spasm_free",
        "rule_version",
        "computed_at",
    )
    list_filter = ("category", "soriano_baron", "rule_version", "treatment__kind")
    patient_path = "treatment__patient__"
    list_select_related = ("treatment__patient",)
    show_full_result_count = False

    def csv_columns(self, request):
        return [
            *patient_columns(lambda outcome: outcome.treatment.patient),
            *coded("Treatment", "kind", lambda outcome: outcome.treatment),
            ("Treatment started on", lambda outcome: outcome.treatment.started_on),
            *coded("Category", "category"),
            *coded("Soriano-Baron", "soriano_baron"),
            ("Spasms per day change (%)", lambda outcome: outcome.spasms_per_day_change_pct),
            ("Episode duration change (%)", lambda outcome: outcome.duration_change_pct),
            ("Grade change", lambda outcome: outcome.grade_change),
            ("Days to spasm-free", lambda outcome: outcome.days_to_spasm_free),
            ("Meaningful improvement in quality of life", lambda outcome: outcome.qol_meaningful_improvement),
            ("Benefit (days)", lambda outcome: outcome.benefit_days),
            ("Rule version", lambda outcome: outcome.rule_version),
            (clinic_time("Computed at"), lambda outcome: outcome.computed_at),
        ]


class FlagReviewFilter(admin.SimpleListFilter):
    """To review (the default: the flagged worklist), acknowledged, or all."""

    title = "review"
    parameter_name = "review"

    def lookups(self, request, model_admin):
        return [("acknowledged", "Acknowledged"), ("all", "All")]

    def choices(self, changelist):
        choices = list(super().choices(changelist))
        choices[0]["display"] = "To review"
        return choices

    def queryset(self, request, queryset):
        if self.value() == "all":
            return queryset
        if self.value() == "acknowledged":
            return queryset.filter(acknowledged_at__isnull=False)
        return queryset.filter(acknowledged_at__isnull=True)


class FlagAcknowledgeForm(forms.Form):
    # Left optional here: the service says when the note is missing.
    note = forms.CharField(
        label="Note", max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 3})
    )


@admin.register(PatientFlag)
class PatientFlagAdmin(CsvExportAdmin, SearchByPatient, AuditedAdmin, ReadOnlyAdmin):
    """The flagged worklist of the panel: flags to review first; a clinician acknowledges each."""

    kind = Kind.CLINICAL
    list_display = ("patient_named", "code", "detail", "since", "acknowledged", "acknowledge_link")
    list_display_links = ("code",)
    list_filter = (FlagReviewFilter, "code")
    list_select_related = ("patient", "acknowledged_by")
    show_full_result_count = False

    def csv_columns(self, request):
        return [
            *patient_columns(),
            *coded("Flag", "code"),
            ("Detail", lambda flag: flag.detail),
            ("Since", lambda flag: flag.since),
            (clinic_time("Acknowledged at"), lambda flag: flag.acknowledged_at),
            (
                "Acknowledged by",
                lambda flag: flag.acknowledged_by.get_username() if flag.acknowledged_by_id else "",
            ),
            ("Note", lambda flag: flag.note),
        ]

    @admin.display(description="Patient", ordering="patient__family_name")
    def patient_named(self, flag):
        return patient_cell(flag.patient)

    @admin.display(description="Acknowledged")
    def acknowledged(self, flag):
        if flag.acknowledged_at is None:
            return ""
        on = timezone.localtime(flag.acknowledged_at)
        return f"{flag.acknowledged_by.get_username()}, {on:%Y-%m-%d}: {flag.note}"

    @admin.display(description="")
    def acknowledge_link(self, flag):
        return format_html(
            '<a class="button" href="{}" data-test="flag-acknowledge-{}">Acknowledge</a>',
            reverse("admin:followups_patientflag_acknowledge", args=[flag.pk]),
            flag.pk,
        )

    def get_urls(self):
        return [
            path(
                "<path:object_id>/acknowledge/",
                self.admin_site.admin_view(self.acknowledge_view),
                name="followups_patientflag_acknowledge",
            ),
            *super().get_urls(),
        ]

    def acknowledge_view(self, request, object_id):
        flags = PatientFlag.objects.select_related("patient", "acknowledged_by")
        flag = flags.filter(pk=row_id(object_id)).first()
        if flag is None:
            raise Http404
        if role_of(request.user) != Role.CLINICIAN:
            raise PermissionDenied
        form = FlagAcknowledgeForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            done, _ = form_service_call(
                form, lambda data: flag_acknowledge(flag=flag, by=request.user, note=data["note"])
            )
            if done:
                response = _back(request, flag.patient_id)
                self._audit(request, response, [flag], action=AuditEvent.Action.UPDATE)
                self.message_user(request, f"{flag.get_code_display()}: acknowledged.", messages.SUCCESS)
                return response
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Acknowledge: {flag.get_code_display()}",
            "flag": flag,
            "form": form,
            "patient_page": patient_page_url(flag.patient_id),
            "next": request.POST.get("next") or request.GET.get("next", ""),
        }
        return TemplateResponse(request, "admin/followups/flag_acknowledge.html", context)


@admin.register(Reminder)
class ReminderAdmin(CsvExportAdmin, SearchByPatient, AuditedAdmin, ReadOnlyAdmin):
    """Each patient's reminders with their state; staff cancel or send one again from here."""

    kind = Kind.REMINDER

    list_display = (
        "visit_patient",
        "kind",
        "visit_time",
        "due_at",
        "status",
        "attempts",
        "sent_at",
        "last_error",
    )
    list_filter = ("status", "kind")
    patient_path = "visit__patient__"
    list_select_related = ("visit__patient",)
    date_hierarchy = "due_at"
    show_full_result_count = False
    actions = ["cancel_selected", "resend_selected"]

    def csv_columns(self, request):
        # The visit by its kind of clinic, never its purpose (which names the treatment).
        return [
            *patient_columns(lambda reminder: reminder.visit.patient),
            *coded("Reminder", "kind"),
            *coded("Visit kind", "visit_kind", lambda reminder: reminder.visit),
            (clinic_time("Visit time"), lambda reminder: reminder.visit_time),
            (clinic_time("Due at"), lambda reminder: reminder.due_at),
            *coded("Status", "status"),
            ("Attempts", lambda reminder: reminder.attempts),
            (clinic_time("Sent at"), lambda reminder: reminder.sent_at),
            ("Last error", lambda reminder: reminder.last_error),
        ]

    @admin.display(description="Patient", ordering="visit__patient__family_name")
    def visit_patient(self, reminder):
        return patient_cell(reminder.visit.patient)

    @admin.display(description="Visit")
    def visit_named(self, reminder):
        return visit_named_on(reminder.visit, clinical=False)

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if sees_clinical(request):
            return fields
        # The visit's own name would be its purpose, which names the treatment.
        return ["visit_named" if name == "visit" else name for name in fields]

    def _each(self, request, queryset, service, done: str):
        changed, refused = 0, 0
        for reminder in queryset:
            try:
                service(reminder=reminder)
                changed += 1
            except ValidationError as error:
                refused += 1
                self.message_user(request, f"{reminder}: {' '.join(error.messages)}", messages.WARNING)
        self.message_user(request, f"{changed} reminder(s) {done}; {refused} left as they were.")

    REMINDER_SERVICES = {"cancel": reminders.reminder_cancel, "resend": reminders.reminder_resend}

    def get_urls(self):
        return [
            path(
                "<path:object_id>/act/",
                self.admin_site.admin_view(self.act_view),
                name="followups_reminder_act",
            ),
            *super().get_urls(),
        ]

    def act_view(self, request, object_id):
        """Cancel or resend one reminder (a button of the patient page); POST only."""
        reminder = Reminder.objects.select_related("visit__patient").filter(pk=object_id).first()
        if reminder is None:
            raise Http404
        if request.method != "POST" or not self.has_write_permission(request):
            raise PermissionDenied
        service = self.REMINDER_SERVICES.get(request.POST.get("action"))
        response = _back(request, reminder.visit.patient_id)
        if service is None:
            messages.error(request, "Choose an action.")
            return response
        try:
            service(reminder=reminder)
        except ValidationError as error:
            messages.error(request, f"{reminder}: {' '.join(error.messages)}")
            return response
        self._audit(request, response, [reminder], action=AuditEvent.Action.UPDATE)
        self.message_user(request, f"{reminder}: done.", messages.SUCCESS)
        return response

    @admin.action(description="Cancel the selected reminders", permissions=["write"])
    def cancel_selected(self, request, queryset):
        self._each(request, queryset, reminders.reminder_cancel, "cancelled")

    @admin.action(description="Send the selected reminders again", permissions=["write"])
    def resend_selected(self, request, queryset):
        self._each(request, queryset, reminders.reminder_resend, "queued to send")


# --- the patient page -------------------------------------------------------------------------


class PatientFlagFilter(admin.SimpleListFilter):
    """Patients carrying a flag (the dashboard's flag counts link here); clinical readers only."""

    title = "flag"
    parameter_name = "flag"

    def lookups(self, request, model_admin):
        return codes.FlagCode.choices

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(
                Exists(flags_to_review().filter(patient=OuterRef("pk"), code=self.value()))
            )
        return queryset


class PatientActionForm(forms.Form):
    """An opt-out or an archive asks nothing more; the form only carries the service's refusal."""


class PatientPageAdmin(PatientAdmin):
    """The patients' admin of ``patients``, with the patient page and its actions added."""

    # The name opens the patient page, where everything starts (its contact data has "Edit").
    list_display = ("patient_named", "date_of_birth", "sex", "email_reminders", "archived")
    list_display_links = None
    change_form_template = "admin/followups/patient/change_form.html"

    @admin.display(description="Patient", ordering="family_name")
    def patient_named(self, patient):
        return patient_cell(patient)

    def get_list_filter(self, request):
        filters = list(super().get_list_filter(request))
        return [PatientFlagFilter, *filters] if sees_clinical(request) else filters

    def get_urls(self):
        return [
            path(
                "<path:object_id>/page/",
                self.admin_site.admin_view(self.page_view),
                name="patients_patient_page",
            ),
            path(
                "<path:object_id>/act/",
                self.admin_site.admin_view(self.act_view),
                name="patients_patient_act",
            ),
            *super().get_urls(),
        ]

    def _patient(self, request, object_id) -> Patient:
        patient = Patient.objects.filter(pk=row_id(object_id)).first()
        if patient is None:
            raise Http404
        if not self.has_view_permission(request, patient):
            raise PermissionDenied
        return patient

    def page_view(self, request, object_id):
        patient = self._patient(request, object_id)
        user = request.user
        book = request.GET.get("book", "")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"{patient.given_name} {patient.family_name} ({patient.mrn})",
            "page": patient_page(
                patient=patient, user=user, book=row_id(book), chart=request.GET.get("chart", "all")
            ),
            "page_url": patient_page_url(patient.pk),
            "may_edit_contact": self.has_change_permission(request, patient),
            "may_archive": self.has_archive_permission(request),
            "may_write_visits": may(user, Kind.VISIT, write=True),
            "may_write_reminders": may(user, Kind.REMINDER, write=True),
            "may_assess": may(user, Kind.ASSESSMENT, write=True),
            "may_record": may(user, Kind.CLINICAL, write=True),
            "treatment_kinds": TreatmentKind.choices,
            "may_acknowledge": role_of(user) == Role.CLINICIAN,
            "today": timezone.localdate(),
            "here": request.get_full_path(),
        }
        response = TemplateResponse(request, "admin/followups/patient_page.html", context)
        self._audit(request, response, [patient])
        return response

    def _archive_confirm(self, request, patient: Patient) -> TemplateResponse:
        """Archiving ends the patient's follow-up at once: the panel asks first, and says how to
        undo it."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Archive {patient.given_name} {patient.family_name} ({patient.mrn})?",
            "patient": patient,
            "page_url": patient_page_url(patient.pk),
            "next": request.POST.get("next", ""),
        }
        response = TemplateResponse(request, "admin/followups/patient_archive.html", context)
        self._audit(request, response, [patient])
        return response

    def act_view(self, request, object_id):
        """Record an opt-out of e-mail reminders, archive the patient (once confirmed) or restore
        an archived one; POST only."""
        patient = self._patient(request, object_id)
        if request.method != "POST":
            raise PermissionDenied
        action = request.POST.get("action")
        if action == "opt_out" and self.has_change_permission(request, patient):
            call, done = (
                (lambda data: record.patient_update(patient=patient, email_reminders=False)),
                "opted out",
            )
        elif action == "archive" and self.has_archive_permission(request):
            if request.POST.get("confirmed") != "yes":
                return self._archive_confirm(request, patient)
            call, done = (lambda data: record.patient_archive(patient=patient)), "archived"
        elif action == "restore" and self.has_archive_permission(request):
            call, done = (
                (lambda data: record.patient_restore(patient=patient)),
                "restored; follow-up is planned again",
            )
        else:
            raise PermissionDenied
        form = PatientActionForm(request.POST)
        form.is_valid()
        ok, _ = form_service_call(form, call)
        response = _back(request, patient.pk)
        if ok:
            self._audit(request, response, [patient], action=AuditEvent.Action.UPDATE)
            self.message_user(request, f"{patient}: {done}.", messages.SUCCESS)
        else:
            self.message_user(request, " ".join(form.non_field_errors()), messages.ERROR)
        return response


admin.site.unregister(Patient)
admin.site.register(Patient, PatientPageAdmin)
