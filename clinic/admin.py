"""API clients (revocable), the audit trail and the login lockouts (administrators only) in the admin."""

from axes.models import AccessAttempt
from django.contrib import admin

from clinic.admin_services import ReadOnlyAdmin
from clinic.api_clients import api_client_revoke
from clinic.models import ApiClient, AuditEvent


@admin.register(ApiClient)
class ApiClientAdmin(ReadOnlyAdmin):
    list_display = ("name", "role", "key_prefix", "created_at", "last_used_at", "revoked_at")
    list_filter = ("revoked_at",)
    search_fields = ("name",)
    readonly_fields = ("name", "user", "key_prefix", "created_at", "last_used_at", "revoked_at")
    fields = readonly_fields
    actions = ["revoke_selected"]

    @admin.display(description="Role")
    def role(self, client):
        return ", ".join(client.user.groups.values_list("name", flat=True))

    @admin.action(description="Revoke the selected clients' keys")
    def revoke_selected(self, request, queryset):
        for client in queryset.select_related("user"):
            api_client_revoke(client=client)
        self.message_user(request, f"{queryset.count()} key(s) revoked.")

    def has_change_permission(self, request, obj=None):
        # Needed for the revoke action; the form itself stays read-only (no editable fields).
        return request.user.is_superuser


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor", "channel", "action", "resource", "object_id", "patient_id", "status")
    list_filter = ("channel", "action", "resource")
    search_fields = ("=actor", "=patient_id", "=object_id")
    date_hierarchy = "at"
    show_full_result_count = False

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_module_permission(self, request):
        return request.user.is_superuser


@admin.register(AccessAttempt)
class LoginLockoutAdmin(ReadOnlyAdmin):
    """Wrong passwords counted by django-axes, per username and address; deleting a row lifts its
    lockout at once (``manage.py axes_reset_username NAME`` does the same from a shell)."""

    list_display = ("username", "ip_address", "failures_since_start", "attempt_time")
    search_fields = ("=username", "=ip_address")
    fields = ("username", "ip_address", "failures_since_start", "attempt_time", "path_info")
    readonly_fields = fields
    actions = ["delete_selected"]

    def has_view_permission(self, request, obj=None):
        return request.user.is_superuser

    def has_module_permission(self, request):
        return request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_superuser
