"""Pure clinical rules of the record (DOMAIN.md sections 2 and 4): no database, easy to test.

Each function answers with an error message (or ``None``); the services decide which field it
belongs to and raise it together with every other error found.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from patients import codes


def dose_ceiling_error(drug: str, daily_dose_mg: Decimal) -> str | None:
    ceiling = codes.DAILY_DOSE_CEILING_MG.get(drug)
    if daily_dose_mg <= 0:
        return "The daily dose must be more than 0 mg."
    if ceiling is not None and daily_dose_mg > ceiling:
        return f"{codes.Drug(drug).label} is limited to {ceiling} mg a day; {daily_dose_mg} mg is above it."
    return None


def secondary_cause_error(kind: str, secondary_cause: str) -> str | None:
    if kind == codes.HfsKind.SECONDARY and not secondary_cause:
        return "A secondary diagnosis needs its secondary cause."
    if kind == codes.HfsKind.PRIMARY and secondary_cause:
        return "A primary diagnosis has no secondary cause."
    return None


def date_before_birth_error(when: date | None, date_of_birth: date) -> str | None:
    if when is not None and when < date_of_birth:
        return "This date is before the patient's date of birth."
    return None


def end_before_start_error(start: date | None, end: date | None) -> str | None:
    # Anything but two dates has no order; a value that is not a date has its own field message.
    if isinstance(start, date) and isinstance(end, date) and end < start:
        return "The end date is before the start date."
    return None


def vessels_error(vessels: Iterable[str]) -> str | None:
    vessels = set(vessels)
    if codes.Vessel.NONE_IDENTIFIED in vessels and len(vessels) > 1:
        return "'None identified' cannot be combined with a named vessel."
    return None


@dataclass(frozen=True)
class ToxinSession:
    """One session's total units of one product, as the 30-day rule sees it."""

    given_on: date
    units: Decimal


@dataclass(frozen=True)
class ToxinExcess:
    window_start: date
    window_end: date
    units: Decimal


def toxin_units_excess(
    sessions: Iterable[ToxinSession],
    *,
    limit: int = codes.TOXIN_UNITS_LIMIT,
    window_days: int = codes.TOXIN_WINDOW_DAYS,
) -> ToxinExcess | None:
    """The first window of ``window_days`` calendar days holding more than ``limit`` units.

    Sessions must all be of one product. A window of 30 days holds the sessions of day d to day
    d + 29, so two sessions exactly 30 days apart never share one. Only windows that start on a
    session's date need checking: sliding a window's start forward to its first session loses
    nothing inside it.
    """
    ordered = sorted(sessions, key=lambda s: s.given_on)
    for i, first in enumerate(ordered):
        window_end = first.given_on + timedelta(days=window_days - 1)
        total = sum((s.units for s in ordered[i:] if s.given_on <= window_end), Decimal(0))
        if total > limit:
            return ToxinExcess(first.given_on, window_end, total)
    return None
