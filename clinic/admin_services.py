"""Admin pages that write through the services, like every other way in.

The admin saves a form in two steps (validate, then save), but a service validates and saves in
one call. So the form calls its service while it validates, inside a savepoint of the admin's own
transaction: a ``ValidationError`` from the service rolls the savepoint back and is shown on the
form's fields, and ``save_model`` has nothing left to do.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import transaction


class ServiceForm(forms.ModelForm):
    """A model form whose ``write()`` calls the service and answers the saved object."""

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
            for field, messages in error.update_error_dict({}).items():
                # Dotted detail names have no field of their own on this form.
                target = field if field in self.fields else NON_FIELD_ERRORS
                prefix = "" if target == field or field == NON_FIELD_ERRORS else f"{field}: "
                for message in messages:
                    text = message.message % message.params if message.params else message.message
                    self.add_error(None if target == NON_FIELD_ERRORS else target, prefix + text)
        return cleaned

    def _post_clean(self):
        # The service has validated and saved; the model-level pass would only repeat it.
        pass


class ServiceAdmin(admin.ModelAdmin):
    """Saving happens in the form (above); records are retracted or archived, never deleted."""

    def save_model(self, request, obj, form, change):
        pass

    def save_related(self, request, form, formsets, change):
        pass

    def save_form(self, request, form, change):
        return form.instance

    def has_delete_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """Shown for search and review; written only through the services of their parent record."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
