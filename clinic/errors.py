"""Collecting field errors so that one bad request reports everything wrong with it at once."""

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError


class FieldErrors:
    """Errors by field, raised together as one ``ValidationError``.

    Nested fields are named with dots (``medication.daily_dose_mg``,
    ``botulinum_toxin.injections.1.units``) so that every caller, API or admin, can place them.
    """

    def __init__(self):
        self._errors: dict[str, list[ValidationError]] = {}

    def add(self, field: str | None, message: str | None, code: str = "invalid") -> None:
        if message:
            self._errors.setdefault(field or NON_FIELD_ERRORS, []).append(ValidationError(message, code=code))

    def merge(self, error: ValidationError, prefix: str = "") -> None:
        for field, messages in error.update_error_dict({}).items():
            name = field if field == NON_FIELD_ERRORS and not prefix else f"{prefix}{field}"
            self._errors.setdefault(name, []).extend(messages)

    def under(self, field: str) -> ValidationError:
        """All of these errors as errors of one field of a larger form (a visit's refused move,
        reported on the assessment's ``visit``)."""
        return ValidationError({field: [error for errors in self._errors.values() for error in errors]})

    def __contains__(self, field: str) -> bool:
        """Whether ``field`` is refused already (a later check that reads it can stand aside)."""
        return field in self._errors

    def __bool__(self) -> bool:
        return bool(self._errors)

    def raise_if_any(self) -> None:
        if self._errors:
            raise ValidationError(self._errors)
