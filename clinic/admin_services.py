"""Admin pages that write through the services, like every other way in.

The admin saves a form in two steps (validate, then save), but a service validates and saves in
one call. So the form calls its service while it validates, inside a savepoint of the admin's own
transaction: a ``ValidationError`` from the service rolls the savepoint back and is shown on the
form's fields, and ``save_model`` has nothing left to do.
"""

from django import forms
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction

from clinic.audit import audit_record
from clinic.models import AuditEvent
from clinic.roles import Kind, may


def form_add_service_errors(form: forms.BaseForm, error: ValidationError) -> None:
    """Show a service's ``ValidationError`` on the form: on its field, or above the form."""
    for field, messages in error.update_error_dict({}).items():
        # Dotted detail names (and "status" of an action form) have no field of their own.
        target = field if field in form.fields else NON_FIELD_ERRORS
        prefix = "" if target == field or field == NON_FIELD_ERRORS else f"{field}: "
        for message in messages:
            text = message.message % message.params if message.params else message.message
            form.add_error(None if target == NON_FIELD_ERRORS else target, prefix + text)


def form_service_call(form: forms.BaseForm, call):
    """Call a service with a valid form's data: ``(True, result)``, or ``(False, None)`` with the
    service's refusal on the form. The savepoint leaves nothing behind of a refused call."""
    try:
        with transaction.atomic():
            return True, call(form.cleaned_data)
    except ValidationError as error:
        form_add_service_errors(form, error)
        return False, None


class ServiceForm(forms.ModelForm):
    """A model form whose ``write()`` calls the service and answers the saved object.

    ``user`` is the staff user filling it in (set by ``ServiceAdmin``), for services that record
    who did it."""

    user = None

    def write(self, instance, data: dict):
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        data = {name: cleaned[name] for name in self.fields if name in cleaned}
        try:
            with transaction.atomic():
                self.instance = self.write(self.instance if self.instance.pk else None, data)
        except ValidationError as error:
            form_add_service_errors(self, error)
        return cleaned

    def _post_clean(self):
        # The service has validated and saved; the model-level pass would only repeat it.
        pass


class RoleAdmin(admin.ModelAdmin):
    """Who sees and writes a model is the role matrix of ``clinic.roles`` and nothing else.

    Staff users get their role from their group (superusers are clinicians), not from Django's
    per-model permissions, so the admin, the API and the patient page agree on who sees what.
    A model without a ``kind`` is for superusers only.
    """

    kind: Kind | None = None

    def may(self, request, *, write: bool) -> bool:
        if self.kind is None:
            return request.user.is_active and request.user.is_superuser
        return may(request.user, self.kind, write=write)

    def has_module_permission(self, request):
        return self.may(request, write=False)

    def has_view_permission(self, request, obj=None):
        return self.may(request, write=False)

    def has_add_permission(self, request):
        return self.may(request, write=True)

    def has_change_permission(self, request, obj=None):
        return self.may(request, write=True)

    def has_write_permission(self, request):
        """For actions (``allowed_permissions = ("write",)``) on admins whose form is read-only."""
        return self.may(request, write=True)


class RoleInline:
    """An inline that follows the role matrix like its parent; read-only unless ``editable``."""

    kind: Kind = Kind.CLINICAL
    editable = False

    def has_view_permission(self, request, obj=None):
        return may(request.user, self.kind, write=False)

    def has_add_permission(self, request, obj=None):
        return self.editable and may(request.user, self.kind, write=True)

    def has_change_permission(self, request, obj=None):
        return self.editable and may(request.user, self.kind, write=True)

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceAdmin(RoleAdmin):
    """Saving happens in the form (above); records are retracted or archived, never deleted."""

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def save_model(self, request, obj, form, change):
        pass

    def save_related(self, request, form, formsets, change):
        pass

    def save_form(self, request, form, change):
        return form.instance

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(RoleAdmin):
    """Shown for search and review; written only through the services of their parent record."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class AuditedAdmin(admin.ModelAdmin):
    """Records every page of patient data a staff member opens or saves (the audit trail)."""

    # How a row reaches its patient: a detail through its treatment, a reminder through its visit.
    PARENTS = ("treatment", "visit", "mvd", "session")

    def audit_patient(self, obj):
        """The public id of the patient a row belongs to."""
        if self.model._meta.model_name == "patient":
            return obj.uuid
        for _ in range(3):
            if hasattr(obj, "patient_id"):
                return obj.patient.uuid
            obj = next((getattr(obj, name) for name in self.PARENTS if hasattr(obj, name)), None)
            if obj is None:
                return None
        return None

    def _audit(self, request, response, objects, action=None):
        targets = [(getattr(obj, "uuid", obj.pk), self.audit_patient(obj)) for obj in objects]
        if targets and response.status_code < 400:
            audit_record(
                request=request,
                channel="admin",
                resource=self.model._meta.model_name,
                status=response.status_code,
                targets=targets,
                action=action,
            )

    def changelist_view(self, request, extra_context=None):
        response = super().changelist_view(request, extra_context)
        changelist = (
            getattr(response, "context_data", {}).get("cl") if hasattr(response, "context_data") else None
        )
        if changelist is not None:
            self._audit(request, response, list(changelist.result_list))
        return response

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        response = super().changeform_view(request, object_id, form_url, extra_context)
        if object_id:
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                self._audit(request, response, [obj])
        return response

    # A history page shows the object's past values, so it is a read of that object whatever else it
    # shows (simple_history's list of versions, or one version; Django's own log on other admins).
    def history_view(self, request, object_id, extra_context=None):
        response = super().history_view(request, object_id, extra_context)
        self._audit_history(request, response, object_id)
        return response

    def history_form_view(self, request, object_id, version_id, extra_context=None):
        # Routed only by SimpleHistoryAdmin.get_urls, so ``super()`` has it whenever it is called.
        response = super().history_form_view(request, object_id, version_id, extra_context)
        self._audit_history(request, response, object_id)
        return response

    def _audit_history(self, request, response, object_id):
        obj = self.get_object(request, unquote(object_id))
        if obj is not None:
            self._audit(request, response, [obj], action=AuditEvent.Action.READ)


def row_id(value) -> int | None:
    """A row id from a URL or a form field, or None: ASCII digits only ("²" is a digit to Python,
    not to the database)."""
    text = str(value or "")
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 18 else None
