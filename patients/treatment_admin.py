"""Treatments in the staff panel: each kind recorded, changed, stopped and retracted with its
details from the patient's page, through the services like every other way in.

The admin's own change form shows one model's fields and its inlines, but a treatment is written
by one service call with its detail, and an MVD's complications, all at once. So the treatment's
add and change pages are this module's views over ``treatment_forms.TreatmentForms``; readers who
may not write (a nurse) see the same page as a summary.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from simple_history.admin import SimpleHistoryAdmin

from clinic.admin_csv import CsvExportAdmin, coded, patient_columns
from clinic.admin_services import (
    AuditedAdmin,
    ReadOnlyAdmin,
    RoleAdmin,
    RoleInline,
    form_add_service_errors,
    row_id,
)
from clinic.audit import audit_record
from clinic.models import AuditEvent
from clinic.roles import Kind
from patients import codes, record_states, services
from patients.models import (
    BotulinumToxinDetail,
    MedicationDetail,
    MvdComplication,
    MvdDetail,
    Patient,
    ToxinInjection,
    Treatment,
)
from patients.search import SearchByPatient
from patients.treatment_forms import StopForm, TreatmentForms

Status = codes.TreatmentStatus


def patient_page_url(patient_id, anchor: str = "patient-treatments") -> str:
    return f"{reverse('admin:patients_patient_page', args=[patient_id])}#{anchor}"


def toxin_sessions_of(patient: Patient, *, besides: Treatment | None = None) -> list[dict]:
    """The patient's toxin sessions (not retracted), newest first, for the running total of the
    30-day limit shown beside a session's units (DOMAIN.md section 4)."""
    sessions = (
        Treatment.objects.filter(patient=patient, kind=codes.TreatmentKind.BOTULINUM_TOXIN)
        .exclude(status=Status.ENTERED_IN_ERROR)
        .select_related("botulinum_toxin")
        .prefetch_related("botulinum_toxin__injections")
        .order_by("-started_on")
    )
    if besides is not None:
        sessions = sessions.exclude(pk=besides.pk)
    return [
        {
            "on": session.started_on.isoformat(),
            "product": session.botulinum_toxin.product,
            "product_label": session.botulinum_toxin.get_product_display(),
            "units": float(sum(i.units for i in session.botulinum_toxin.injections.all())),
        }
        for session in sessions
        if hasattr(session, "botulinum_toxin")
    ]


def stoppable(treatment: Treatment) -> bool:
    return record_states.treatment_stoppable(treatment.kind, treatment.status)


@admin.register(Treatment)
class TreatmentAdmin(CsvExportAdmin, SearchByPatient, AuditedAdmin, RoleAdmin, SimpleHistoryAdmin):
    kind = Kind.CLINICAL
    list_display = ("patient", "kind", "status", "started_on", "ended_on")
    list_filter = ("kind", "status")
    list_select_related = ("patient",)
    date_hierarchy = "started_on"
    show_full_result_count = False

    def csv_columns(self, request):
        return [
            *patient_columns(),
            *coded("Kind", "kind"),
            *coded("Status", "status"),
            ("Started on", lambda treatment: treatment.started_on),
            ("Ended on", lambda treatment: treatment.ended_on),
            ("Notes", lambda treatment: treatment.notes),
        ]

    def has_change_permission(self, request, obj=None):
        # A retracted treatment stays as it was (it is recorded again, not edited), and an
        # archived patient's record is read only until they are restored.
        frozen = obj is not None and (obj.status == Status.ENTERED_IN_ERROR or obj.patient.archived)
        return not frozen and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    def get_urls(self):
        def view(name, func):
            return path(
                f"<path:object_id>/{name}/",
                self.admin_site.admin_view(func),
                name=f"patients_treatment_{name}",
            )

        return [view("stop", self.stop_view), view("retract", self.retract_view), *super().get_urls()]

    # --- pages ---------------------------------------------------------------------------------

    def _context(self, request, *, patient: Patient, title: str, **more) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": title,
            "patient": patient,
            "patient_page": patient_page_url(patient.pk),
            **more,
        }

    def _treatment(self, request, object_id) -> Treatment:
        treatment = (
            Treatment.objects.select_related("patient", "diagnosis").filter(pk=row_id(object_id)).first()
        )
        if treatment is None:
            raise Http404
        if not self.has_view_permission(request, treatment):
            raise PermissionDenied
        return treatment

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        source = request.POST if request.method == "POST" else request.GET
        patient = Patient.objects.filter(pk=row_id(source.get("patient"))).first()
        if patient is None:
            self.message_user(
                request,
                "Open the patient's page and choose \u201cRecord a treatment\u201d there.",
                messages.INFO,
            )
            return HttpResponseRedirect(reverse("admin:patients_patient_changelist"))
        if patient.archived:
            self.message_user(
                request, "The patient is archived: restore them to record a treatment.", messages.ERROR
            )
            return HttpResponseRedirect(patient_page_url(patient.pk))
        kind = source.get("kind")
        name = f"{patient.given_name} {patient.family_name} ({patient.mrn})"
        if kind not in codes.TreatmentKind.values:
            context = self._context(
                request,
                patient=patient,
                title=f"Record a treatment for {name}",
                kinds=codes.TreatmentKind.choices,
            )
            return TemplateResponse(request, "admin/patients/treatment/choose_kind.html", context)
        label = codes.TreatmentKind(kind).label
        if request.method == "POST":
            page = TreatmentForms(patient=patient, kind=kind, data=request.POST)
            treatment = self._write(
                page, lambda data: services.treatment_record(patient=patient, kind=kind, **data)
            )
            if treatment is not None:
                return self._written(request, treatment, "recorded", AuditEvent.Action.CREATE)
        else:
            page = TreatmentForms(patient=patient, kind=kind, initial=self._initial(request, patient))
        response = self._form_page(request, page, title=f"{label} for {name}", form_url=form_url)
        # The form shows the patient's diagnoses (and a toxin session's other sessions).
        self._audit_patient_read(request, response, patient)
        return response

    def _audit_patient_read(self, request, response, patient: Patient) -> None:
        audit_record(
            request=request,
            channel="admin",
            resource="patient",
            status=response.status_code,
            targets=[(patient.uuid, patient.uuid)],
            action=AuditEvent.Action.READ,
        )

    def _initial(self, request, patient: Patient) -> dict:
        diagnosis = (
            patient.diagnoses.exclude(status=codes.DiagnosisStatus.ENTERED_IN_ERROR)
            .order_by("-diagnosed_on", "-pk")
            .first()
        )
        return {"started_on": timezone.localdate(), "diagnosis": diagnosis.pk if diagnosis else None}

    def change_view(self, request, object_id, form_url="", extra_context=None):
        treatment = self._treatment(request, object_id)
        patient = treatment.patient
        title = f"{treatment} — {patient.given_name} {patient.family_name} ({patient.mrn})"
        if not self.has_change_permission(request, treatment):
            context = self._context(
                request, patient=patient, title=title, treatment=treatment, may_write=False
            )
            response = TemplateResponse(request, "admin/patients/treatment/record.html", context)
            self._audit(request, response, [treatment], action=AuditEvent.Action.READ)
            return response
        if request.method == "POST":
            page = TreatmentForms(
                patient=patient, kind=treatment.kind, treatment=treatment, data=request.POST
            )
            written = self._write(page, lambda data: services.treatment_update(treatment=treatment, **data))
            if written is not None:
                return self._written(request, written, "changed", AuditEvent.Action.UPDATE)
        else:
            page = TreatmentForms(patient=patient, kind=treatment.kind, treatment=treatment)
        response = self._form_page(request, page, title=title, form_url=form_url)
        self._audit(request, response, [treatment], action=AuditEvent.Action.READ)
        return response

    def _form_page(self, request, page: TreatmentForms, *, title: str, form_url: str):
        treatment = page.treatment
        context = self._context(
            request,
            patient=page.patient,
            title=title,
            page=page,
            treatment=treatment,
            may_write=True,
            toxin_sessions=toxin_sessions_of(page.patient, besides=treatment)
            if page.kind == codes.TreatmentKind.BOTULINUM_TOXIN
            else None,
            toxin_limit=codes.TOXIN_UNITS_LIMIT,
            toxin_window_days=codes.TOXIN_WINDOW_DAYS,
            stoppable=treatment is not None and stoppable(treatment),
            form_url=form_url,
        )
        return TemplateResponse(request, "admin/patients/treatment/record.html", context)

    @staticmethod
    def _write(page: TreatmentForms, call) -> Treatment | None:
        """The service's answer, or None with its refusal (or the forms' own errors) on the page.
        The savepoint leaves nothing of a refused call behind."""
        if not page.is_valid():
            return None
        try:
            with transaction.atomic():
                return call(page.service_data())
        except ValidationError as error:
            page.show_refusal(error)
            return None

    def _written(self, request, treatment: Treatment, done: str, action) -> HttpResponseRedirect:
        response = HttpResponseRedirect(patient_page_url(treatment.patient_id, f"treatment-{treatment.pk}"))
        self._audit(request, response, [treatment], action=action)
        self.message_user(
            request, f"{treatment} {done}; its follow-up visits are planned again.", messages.SUCCESS
        )
        return response

    # --- stop and retract ----------------------------------------------------------------------

    def stop_view(self, request, object_id):
        treatment = self._treatment(request, object_id)
        if not self.has_change_permission(request, treatment) or not stoppable(treatment):
            raise PermissionDenied("Only a course under way can be stopped, by a clinician.")
        form = StopForm(
            request.POST if request.method == "POST" else None,
            kind=treatment.kind,
            initial={"ended_on": timezone.localdate()},
        )
        if request.method == "POST" and form.is_valid():
            try:
                with transaction.atomic():
                    stopped = services.treatment_update(treatment=treatment, **form.service_data())
            except ValidationError as error:
                # "medication.stop_reason" is the stop form's own reason field.
                refusal = {
                    key.removeprefix("medication."): msgs for key, msgs in error.update_error_dict({}).items()
                }
                form_add_service_errors(form, ValidationError(refusal))
            else:
                return self._written(request, stopped, "stopped", AuditEvent.Action.UPDATE)
        context = self._context(
            request,
            patient=treatment.patient,
            title=f"Stop {treatment}",
            treatment=treatment,
            form=form,
        )
        response = TemplateResponse(request, "admin/patients/treatment/stop.html", context)
        self._audit(request, response, [treatment], action=AuditEvent.Action.READ)
        return response

    def retract_view(self, request, object_id):
        """Asks first: a retracted treatment's planned visits are cancelled, and it is not undone."""
        treatment = self._treatment(request, object_id)
        if not self.has_change_permission(request, treatment):
            raise PermissionDenied("Only a clinician retracts a treatment, and only once.")
        if request.method == "POST":
            try:
                retracted = services.treatment_retract(treatment=treatment)
            except ValidationError as error:
                self.message_user(request, " ".join(error.messages), messages.ERROR)
                return HttpResponseRedirect(patient_page_url(treatment.patient_id))
            response = HttpResponseRedirect(patient_page_url(retracted.patient_id))
            self._audit(request, response, [retracted], action=AuditEvent.Action.DELETE)
            self.message_user(
                request,
                f"{retracted} marked as entered in error; the visits it planned are cancelled.",
                messages.SUCCESS,
            )
            return response
        context = self._context(
            request, patient=treatment.patient, title=f"Retract {treatment}?", treatment=treatment
        )
        response = TemplateResponse(request, "admin/patients/treatment/retract.html", context)
        self._audit(request, response, [treatment], action=AuditEvent.Action.READ)
        return response


@admin.register(MedicationDetail)
class MedicationDetailAdmin(SearchByPatient, AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = ("treatment", "drug", "daily_dose_mg", "stop_reason")
    list_filter = ("drug", "stop_reason")
    patient_path = "treatment__patient__"
    list_select_related = ("treatment__patient",)


class ToxinInjectionInline(RoleInline, admin.TabularInline):
    model = ToxinInjection
    extra = 0


@admin.register(BotulinumToxinDetail)
class BotulinumToxinDetailAdmin(SearchByPatient, AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = ("treatment", "product", "wore_off_on", "self_rated_improvement_pct")
    list_filter = ("product",)
    patient_path = "treatment__patient__"
    list_select_related = ("treatment__patient",)
    inlines = [ToxinInjectionInline]


class MvdComplicationInline(RoleInline, admin.TabularInline):
    model = MvdComplication
    extra = 0


@admin.register(MvdDetail)
class MvdDetailAdmin(SearchByPatient, AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = ("treatment", "technique", "redo")
    list_filter = ("technique", "redo")
    patient_path = "treatment__patient__"
    list_select_related = ("treatment__patient",)
    inlines = [MvdComplicationInline]


@admin.register(MvdComplication)
class MvdComplicationAdmin(SearchByPatient, AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = ("mvd", "kind", "onset_on", "resolved_on")
    list_filter = ("kind",)
    patient_path = "mvd__treatment__patient__"
    list_select_related = ("mvd__treatment__patient",)


@admin.register(ToxinInjection)
class ToxinInjectionAdmin(SearchByPatient, AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = ("session", "muscle", "units")
    list_filter = ("muscle", "session__product")
    patient_path = "session__treatment__patient__"
    list_select_related = ("session__treatment__patient",)
