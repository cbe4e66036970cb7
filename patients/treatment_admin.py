"""Treatments in the staff panel: each kind recorded and changed with its details, through the
services like every other way in."""

from django.contrib import admin
from simple_history.admin import SimpleHistoryAdmin

from clinic.admin_services import AuditedAdmin, ReadOnlyAdmin, RoleInline
from clinic.roles import Kind
from patients.models import (
    BotulinumToxinDetail,
    MedicationDetail,
    MvdComplication,
    MvdDetail,
    ToxinInjection,
    Treatment,
)


class MedicationInline(RoleInline, admin.StackedInline):
    model = MedicationDetail
    can_delete = False
    extra = 0


class ToxinInline(RoleInline, admin.StackedInline):
    model = BotulinumToxinDetail
    can_delete = False
    extra = 0
    readonly_fields = ("total_units",)

    @admin.display(description="Total units")
    def total_units(self, detail):
        return sum(injection.units for injection in detail.injections.all())


class MvdInline(RoleInline, admin.StackedInline):
    model = MvdDetail
    fk_name = "treatment"
    can_delete = False
    extra = 0


@admin.register(Treatment)
class TreatmentAdmin(AuditedAdmin, ReadOnlyAdmin, SimpleHistoryAdmin):
    kind = Kind.CLINICAL
    list_display = ("patient", "kind", "status", "started_on", "ended_on")
    list_filter = ("kind", "status")
    search_fields = ("=patient__mrn", "patient__family_name")
    list_select_related = ("patient",)
    date_hierarchy = "started_on"
    show_full_result_count = False
    inlines = [MedicationInline, ToxinInline, MvdInline]


@admin.register(MedicationDetail)
class MedicationDetailAdmin(AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = ("treatment", "drug", "daily_dose_mg", "stop_reason")
    list_filter = ("drug", "stop_reason")
    search_fields = ("=treatment__patient__mrn",)
    list_select_related = ("treatment__patient",)


class ToxinInjectionInline(RoleInline, admin.TabularInline):
    model = ToxinInjection
    extra = 0


@admin.register(BotulinumToxinDetail)
class BotulinumToxinDetailAdmin(AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = ("treatment", "product", "wore_off_on", "self_rated_improvement_pct")
    list_filter = ("product",)
    search_fields = ("=treatment__patient__mrn",)
    list_select_related = ("treatment__patient",)
    inlines = [ToxinInjectionInline]


class MvdComplicationInline(RoleInline, admin.TabularInline):
    model = MvdComplication
    extra = 0


@admin.register(MvdDetail)
class MvdDetailAdmin(AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = ("treatment", "technique", "redo")
    list_filter = ("technique", "redo")
    search_fields = ("=treatment__patient__mrn",)
    list_select_related = ("treatment__patient",)
    inlines = [MvdComplicationInline]


@admin.register(MvdComplication)
class MvdComplicationAdmin(AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = ("mvd", "kind", "onset_on", "resolved_on")
    list_filter = ("kind",)
    search_fields = ("=mvd__treatment__patient__mrn",)
    list_select_related = ("mvd__treatment__patient",)


@admin.register(ToxinInjection)
class ToxinInjectionAdmin(AuditedAdmin, ReadOnlyAdmin):
    kind = Kind.CLINICAL
    list_display = ("session", "muscle", "units")
    list_filter = ("muscle", "session__product")
    search_fields = ("=session__treatment__patient__mrn",)
    list_select_related = ("session__treatment__patient",)
