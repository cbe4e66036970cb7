"""Follow-up in the admin: protocols to edit, visits and measurements, derived rows to read."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from simple_history.admin import SimpleHistoryAdmin

from clinic.admin_services import AuditedAdmin, ReadOnlyAdmin, ServiceAdmin, ServiceForm
from followups import codes, reminders, services
from followups.models import (
    Assessment,
    LabResult,
    PatientFlag,
    Protocol,
    ProtocolStep,
    Reminder,
    TreatmentOutcome,
    Visit,
)


class ProtocolStepInline(admin.TabularInline):
    model = ProtocolStep
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
class ProtocolAdmin(SimpleHistoryAdmin):
    list_display = ("name", "code", "treatment_kind")
    search_fields = ("name", "code")
    inlines = [ProtocolStepInline]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Visit)
class VisitAdmin(AuditedAdmin, ReadOnlyAdmin, SimpleHistoryAdmin):
    list_display = ("patient", "purpose", "scheduled_for", "window_start", "window_end", "status", "source")
    list_filter = ("status", "source", "protocol_step__protocol")
    search_fields = ("=patient__mrn", "patient__family_name")
    list_select_related = ("patient",)
    date_hierarchy = "scheduled_for"
    show_full_result_count = False


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
        if self.instance.pk:
            self.fields["patient"].disabled = True
            self.initial["triggers"] = list(self.instance.trigger_rows.values_list("trigger", flat=True))
            self.initial["adverse_effects"] = list(
                self.instance.adverse_effect_rows.values_list("adverse_effect", flat=True)
            )

    def write(self, instance, data):
        patient = data.pop("patient")
        if instance is None:
            return services.assessment_record(patient=patient, **data)
        return services.assessment_update(assessment=instance, **data)


@admin.register(Assessment)
class AssessmentAdmin(AuditedAdmin, ServiceAdmin, SimpleHistoryAdmin):
    form = AssessmentForm
    list_display = (
        "patient",
        "assessed_on",
        "spasms_per_day",
        "cohen_albert_grade",
        "jankovic_total",
        "hfs7_total",
        "status",
    )
    list_filter = ("status", "cohen_albert_grade", "smc_grade")
    search_fields = ("=patient__mrn", "patient__family_name")
    list_select_related = ("patient",)
    autocomplete_fields = ("patient",)
    raw_id_fields = ("visit",)
    show_full_result_count = False


class LabResultForm(ServiceForm):
    class Meta:
        model = LabResult
        fields = ("patient", "test", "taken_on", "value", "abnormal")

    def write(self, instance, data):
        if instance is not None:
            raise forms.ValidationError("A result is not edited; retract it and record the right one.")
        return services.lab_result_record(**data)


@admin.register(LabResult)
class LabResultAdmin(AuditedAdmin, ServiceAdmin, SimpleHistoryAdmin):
    form = LabResultForm
    list_display = ("patient", "test", "taken_on", "value", "abnormal", "status")
    list_filter = ("test", "status", "abnormal")
    search_fields = ("=patient__mrn", "patient__family_name")
    list_select_related = ("patient",)
    autocomplete_fields = ("patient",)
    show_full_result_count = False


@admin.register(TreatmentOutcome)
class TreatmentOutcomeAdmin(AuditedAdmin, ReadOnlyAdmin):
    list_display = (
        "treatment",
        "category",
        "soriano_baron",
        "days_to_spasm_free",
        "rule_version",
        "computed_at",
    )
    list_filter = ("category", "soriano_baron", "rule_version", "treatment__kind")
    search_fields = ("=treatment__patient__mrn",)
    list_select_related = ("treatment__patient",)
    show_full_result_count = False


@admin.register(PatientFlag)
class PatientFlagAdmin(AuditedAdmin, ReadOnlyAdmin):
    list_display = ("patient", "code", "detail", "since")
    list_filter = ("code",)
    search_fields = ("=patient__mrn", "patient__family_name")
    list_select_related = ("patient",)
    show_full_result_count = False


@admin.register(Reminder)
class ReminderAdmin(AuditedAdmin, ReadOnlyAdmin):
    """Each patient's reminders with their state; staff cancel or send one again from here."""

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
    search_fields = ("=visit__patient__mrn", "visit__patient__family_name")
    list_select_related = ("visit__patient",)
    date_hierarchy = "due_at"
    show_full_result_count = False
    actions = ["cancel_selected", "resend_selected"]

    @admin.display(description="Patient", ordering="visit__patient__family_name")
    def visit_patient(self, reminder):
        return reminder.visit.patient

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

    @admin.action(description="Cancel the selected reminders")
    def cancel_selected(self, request, queryset):
        self._each(request, queryset, reminders.reminder_cancel, "cancelled")

    @admin.action(description="Send the selected reminders again")
    def resend_selected(self, request, queryset):
        self._each(request, queryset, reminders.reminder_resend, "queued to send")
