"""The clinical record in the admin: search and filters for staff; writes go through the services."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IS_POPUP_VAR
from django.db import transaction
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from simple_history.admin import SimpleHistoryAdmin

from clinic.admin_csv import CsvExportAdmin, coded, patient_columns
from clinic.admin_services import AuditedAdmin, ServiceAdmin, ServiceForm
from clinic.roles import Kind, may
from patients import (
    codes,
    services,
    treatment_admin,  # noqa: F401  (registers the treatments' pages)
)
from patients.models import (
    Diagnosis,
    ImagingStudy,
    Patient,
)
from patients.search import SEARCH_HELP_TEXT, SearchByPatient, patients_matching


class PatientForm(ServiceForm):
    class Meta:
        model = Patient
        fields = services.PATIENT_FIELDS

    def write(self, instance, data):
        if instance is None:
            return services.patient_create(**data)
        return services.patient_update(patient=instance, **data)


# Fields of the patient row that are clinical data: staff who may not read the clinical record
# (the front desk) neither see nor filter by them.
CLINICAL_PATIENT_FIELDS = ("at_risk_hla_b1502", "hla_b1502_result")


# The most patients the list's archive action takes at once (a page of the list is 100).
ARCHIVE_AT_ONCE = 200


def sees_clinical(request) -> bool:
    return may(request.user, Kind.CLINICAL, write=False)


@admin.register(Patient)
class PatientAdmin(CsvExportAdmin, AuditedAdmin, ServiceAdmin, SimpleHistoryAdmin):
    kind = Kind.CONTACT
    form = PatientForm
    list_display = ("mrn", "family_name", "given_name", "date_of_birth", "sex", "email_reminders", "archived")
    list_filter = ("archived", "sex", "email_reminders", *CLINICAL_PATIENT_FIELDS)
    # Shows the search box; what a term matches is patients_matching's (get_search_results).
    search_fields = ("=mrn", "family_name", "given_name", "email")
    search_help_text = SEARCH_HELP_TEXT
    readonly_fields = (
        "uuid",
        "email_reminders_consented_at",
        "archived",
        "archived_at",
        "created_at",
        "updated_at",
    )
    show_full_result_count = False
    actions = ["archive_selected"]

    def csv_columns(self, request):
        columns = [
            *patient_columns(lambda patient: patient),
            ("Date of birth", lambda patient: patient.date_of_birth),
            *coded("Sex", "sex"),
            ("Phone", lambda patient: patient.phone),
            ("E-mail", lambda patient: patient.email),
            ("E-mail reminders", lambda patient: patient.email_reminders),
            ("Archived", lambda patient: patient.archived),
            ("Follow-up ended on", lambda patient: patient.follow_up_ended_on),
            *coded("Follow-up end reason", "follow_up_end_reason"),
        ]
        if not sees_clinical(request):
            return columns
        return [
            *columns,
            ("At risk (HLA-B*1502 ancestry)", lambda patient: patient.at_risk_hla_b1502),
            *coded("HLA-B*1502 result", "hla_b1502_result"),
        ]

    def get_search_results(self, request, queryset, search_term):
        # Conditions on the patient's own row only: no row repeats, no DISTINCT needed. The
        # patient autocompletes of the other pages search through here as well.
        return patients_matching(queryset, search_term), False

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if sees_clinical(request):
            return fields
        return [name for name in fields if name not in CLINICAL_PATIENT_FIELDS]

    def get_list_filter(self, request):
        filters = super().get_list_filter(request)
        if sees_clinical(request):
            return filters
        return [f for f in filters if f not in CLINICAL_PATIENT_FIELDS]

    def lookup_allowed(self, lookup, value, request=None):
        # Filtering by a hidden field would still tell its value.
        if lookup.split("__")[0] in CLINICAL_PATIENT_FIELDS and (
            request is None or not sees_clinical(request)
        ):
            return False
        return super().lookup_allowed(lookup, value, request)

    def has_view_history_or_change_history_permission(self, request, obj=None):
        # A version's changes can name the HLA-B*1502 result: the history is clinical.
        return sees_clinical(request) and super().has_view_history_or_change_history_permission(request, obj)

    def has_archive_permission(self, request):
        # Archiving ends the patient's follow-up: a clinician's decision.
        return may(request.user, Kind.CLINICAL, write=True)

    @admin.action(description="Archive the selected patients…", permissions=["archive"])
    def archive_selected(self, request, queryset):
        """Asks first, on a page naming each patient (as Django's own delete does): archiving
        cancels their follow-up at once. A "select all" of a long list is refused: archiving is
        decided patient by patient, and thousands at once would outlast the request."""
        count = queryset.count()
        if count > ARCHIVE_AT_ONCE:
            self.message_user(
                request,
                f"{count} patients selected: archive at most {ARCHIVE_AT_ONCE} at once; "
                "narrow the list first.",
                messages.ERROR,
            )
            return None
        if request.POST.get("confirmed") != "yes":
            context = {
                **self.admin_site.each_context(request),
                "opts": self.model._meta,
                "title": "Archive these patients?",
                "patients": queryset,
                "action": "archive_selected",
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
                # "Select all" of a filtered list: the list's own query says which (the page posts
                # back to it), rather than thousands of hidden ids.
                "select_across": request.POST.get("select_across") == "1",
                "here": request.get_full_path(),
            }
            response = TemplateResponse(request, "admin/patients/patient/archive_selected.html", context)
            self._audit(request, response, list(queryset))
            return response
        with transaction.atomic():
            for patient in queryset:
                services.patient_archive(patient=patient)
        self.message_user(request, f"{count} patient(s) archived; each can be restored from their page.")


class BackToPatientPage:
    """A record written from the patient page (diagnosis, imaging, lab result) goes back to it,
    at the row written, instead of to the list of every patient's records."""

    page_anchor = ""

    def _to_patient_page(self, request, obj, done: str):
        # A popup (the "+" beside a field of another form) closes as the admin does it.
        if IS_POPUP_VAR in request.POST or "_addanother" in request.POST or "_continue" in request.POST:
            return None
        self.message_user(request, f"{obj} {done}.", messages.SUCCESS)
        page = reverse("admin:patients_patient_page", args=[obj.patient_id])
        return HttpResponseRedirect(f"{page}#{self.page_anchor}-{obj.pk}")

    def response_add(self, request, obj, post_url_continue=None):
        back = self._to_patient_page(request, obj, "recorded")
        return back or super().response_add(request, obj, post_url_continue)

    def response_change(self, request, obj):
        back = self._to_patient_page(request, obj, "changed")
        return back or super().response_change(request, obj)


class DiagnosisForm(ServiceForm):
    muscles = forms.MultipleChoiceField(
        choices=codes.Muscle.choices, required=False, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Diagnosis
        fields = (
            "patient",
            "kind",
            "secondary_cause",
            "side",
            "presentation",
            "onset_date",
            "muscles",
            "status",
            "diagnosed_on",
            "notes",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["patient"].disabled = True
            self.initial["muscles"] = list(self.instance.muscle_rows.values_list("muscle", flat=True))

    def write(self, instance, data):
        patient = data.pop("patient")
        if instance is None:
            return services.diagnosis_record(patient=patient, **data)
        return services.diagnosis_update(diagnosis=instance, **data)


@admin.register(Diagnosis)
class DiagnosisAdmin(
    BackToPatientPage, CsvExportAdmin, SearchByPatient, AuditedAdmin, ServiceAdmin, SimpleHistoryAdmin
):
    kind = Kind.CLINICAL
    form = DiagnosisForm
    page_anchor = "diagnosis"
    list_display = ("patient", "kind", "secondary_cause", "side", "status", "diagnosed_on")
    list_filter = ("kind", "status", "side", "presentation", "secondary_cause")
    list_select_related = ("patient",)
    autocomplete_fields = ("patient",)
    show_full_result_count = False

    def csv_columns(self, request):
        return [
            *patient_columns(),
            ("Diagnosed on", lambda diagnosis: diagnosis.diagnosed_on),
            *coded("Kind", "kind"),
            *coded("Secondary cause", "secondary_cause"),
            *coded("Side", "side"),
            *coded("Presentation", "presentation"),
            ("Onset", lambda diagnosis: diagnosis.onset_date),
            *coded("Status", "status"),
            ("Notes", lambda diagnosis: diagnosis.notes),
        ]


class ImagingStudyForm(ServiceForm):
    sequences = forms.MultipleChoiceField(
        choices=codes.ImagingSequence.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    offending_vessels = forms.MultipleChoiceField(
        choices=codes.Vessel.choices, required=False, widget=forms.CheckboxSelectMultiple
    )
    field_strength_tesla = forms.TypedChoiceField(
        choices=[("", "—"), ("1.5", "1.5 T"), ("3.0", "3 T")],
        coerce=str,
        empty_value=None,
        required=False,
        label="Field strength",
    )

    class Meta:
        model = ImagingStudy
        fields = (
            "patient",
            "diagnosis",
            "performed_on",
            "modality",
            "sequences",
            "field_strength_tesla",
            "compression_found",
            "offending_vessels",
            "lesion_found",
            "report",
            "status",
        )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["patient"].disabled = True
            self.initial["sequences"] = list(self.instance.sequence_rows.values_list("sequence", flat=True))
            self.initial["offending_vessels"] = list(
                self.instance.vessel_rows.values_list("vessel", flat=True)
            )

    def write(self, instance, data):
        patient = data.pop("patient")
        if instance is None:
            return services.imaging_study_record(patient=patient, **data)
        return services.imaging_study_update(study=instance, **data)


@admin.register(ImagingStudy)
class ImagingStudyAdmin(
    BackToPatientPage, CsvExportAdmin, SearchByPatient, AuditedAdmin, ServiceAdmin, SimpleHistoryAdmin
):
    kind = Kind.CLINICAL
    form = ImagingStudyForm
    page_anchor = "imaging"
    list_display = ("patient", "performed_on", "modality", "compression_found", "status")
    list_filter = ("modality", "compression_found", "status")
    list_select_related = ("patient",)
    autocomplete_fields = ("patient", "diagnosis")
    show_full_result_count = False

    def csv_columns(self, request):
        return [
            *patient_columns(),
            ("Performed on", lambda study: study.performed_on),
            *coded("Modality", "modality"),
            ("Field strength (T)", lambda study: study.field_strength_tesla),
            *coded("Compression found", "compression_found"),
            ("Lesion found", lambda study: study.lesion_found),
            *coded("Status", "status"),
            ("Report", lambda study: study.report),
        ]
