"""Steps every service takes before it writes: apply the caller's fields, check them, lock.

Checks add to a ``FieldErrors`` so that a service reports everything wrong at once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from clinic.errors import FieldErrors


def apply_changes(instance: models.Model, changes: Mapping[str, Any], allowed: Iterable[str]) -> None:
    unknown = set(changes) - set(allowed)
    if unknown:
        raise TypeError(f"These fields cannot be changed here: {', '.join(sorted(unknown))}")
    for name, value in changes.items():
        setattr(instance, name, value)


def check_fields(instance: models.Model, errors: FieldErrors, *, prefix: str = "", exclude=()) -> None:
    """Types, lengths, codes and uniqueness as the model declares them.

    Constraints are left to the services' rule checks, which say which field is wrong.
    """
    try:
        instance.full_clean(exclude=list(exclude), validate_constraints=False)
    except ValidationError as error:
        errors.merge(error, prefix)


def check_code_list(values, choices, field: str, errors: FieldErrors) -> list[str]:
    values = list(values or [])
    unknown = [value for value in values if value not in choices.values]
    if unknown:
        errors.add(field, f"Unknown code(s): {', '.join(map(str, unknown))}.", "invalid_choice")
    if len(set(values)) != len(values):
        errors.add(field, "A code is listed twice.", "duplicate")
    return values


def is_finite_number(value) -> bool:
    """A number that can be compared: not a bool, not NaN or infinite (which ``full_clean`` reports,
    and which a comparison would turn into an exception)."""
    if isinstance(value, Decimal):
        return value.is_finite()
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool)


def check_range(instance: models.Model, field: str, low, high, errors: FieldErrors) -> None:
    value = getattr(instance, field)
    if is_finite_number(value) and not low <= value <= high:
        errors.add(field, f"Give a value from {low} to {high}.", "range")


def check_not_before(field: str, later, earlier, message: str, errors: FieldErrors) -> None:
    """Add ``message`` on ``field`` when both are dates and ``later`` comes before ``earlier``."""
    if isinstance(later, date) and isinstance(earlier, date) and later < earlier:
        errors.add(field, message, "date_order")


def check_clinical_date(
    field: str, when, date_of_birth: date, errors: FieldErrors, *, future_ok=False
) -> None:
    if not isinstance(when, date):
        return
    if when < date_of_birth:
        errors.add(field, "This date is before the patient's date of birth.", "before_birth")
    if not future_ok and when > timezone.localdate():
        errors.add(field, "This date is in the future.", "in_future")


def replace_code_rows(
    parent: models.Model, related_name: str, code_field: str, values: Iterable[str]
) -> None:
    """Make the child rows of ``parent`` hold exactly ``values``, leaving unchanged ones alone."""
    rows = getattr(parent, related_name)
    wanted = set(values)
    current = set(rows.values_list(code_field, flat=True))
    # A code list belongs to its parent: removing an entry is an edit that the history keeps.
    rows.filter(**{f"{code_field}__in": current - wanted}).delete()
    # bulk_create skips save(), so the history rows of the additions are written alongside.
    bulk_create_with_history(
        [rows.model(**{rows.field.name: parent, code_field: code}) for code in sorted(wanted - current)],
        rows.model,
    )
