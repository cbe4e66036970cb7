"""Protocol arithmetic (DOMAIN.md section 5): which visits a step asks for, as plain data.

No database here: ``followups.planning`` gathers the dates (anchor, stop, horizon) and turns the
answers into visit rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from followups.codes import StepRepeat, VisitKind

# Open-ended series (while a course is active, while untreated, while a palsy lasts) are planned
# this many intervals ahead; the daily planning task rolls the horizon forward.
OPEN_SERIES_INTERVALS_AHEAD = 2
OPEN_SERIES = frozenset({StepRepeat.WHILE_ACTIVE, StepRepeat.WHILE_UNTREATED, StepRepeat.WHILE_FACIAL_PALSY})


@dataclass(frozen=True)
class Step:
    """What planning needs of a ``ProtocolStep``."""

    id: int
    purpose: str
    offset_days: int
    window_before_days: int
    window_after_days: int
    repeat: str = StepRepeat.ONCE
    repeat_every_days: int | None = None
    repeat_until_day: int | None = None
    visit_kind: str = VisitKind.REVIEW


@dataclass(frozen=True)
class Occurrence:
    step_id: int
    anchor_on: date
    protocol_day: int
    purpose: str
    scheduled_on: date
    window_start: date
    window_end: date
    # Part of a series that runs as long as its condition holds (rolled forward day by day).
    open_series: bool = False
    visit_kind: str = VisitKind.REVIEW

    @property
    def key(self) -> tuple[int, date, int]:
        return (self.step_id, self.anchor_on, self.protocol_day)


def protocol_days(step: Step, anchor_on: date, *, today: date) -> Iterator[int]:
    """The days after the anchor on which ``step`` asks for a visit."""
    day = step.offset_days
    if step.repeat == StepRepeat.ONCE:
        yield day
        return
    if step.repeat == StepRepeat.UNTIL_DAY:
        while day <= step.repeat_until_day:
            yield day
            day += step.repeat_every_days
        return
    # An open series: up to a horizon a couple of intervals past today.
    horizon = today + timedelta(days=OPEN_SERIES_INTERVALS_AHEAD * step.repeat_every_days)
    while anchor_on + timedelta(days=day) <= horizon:
        yield day
        day += step.repeat_every_days


def occurrences(
    step: Step, anchor_on: date, *, today: date, stop_before: date | None = None
) -> list[Occurrence]:
    """The visits ``step`` asks for from ``anchor_on``; none on or after ``stop_before``."""
    planned = []
    for day in protocol_days(step, anchor_on, today=today):
        on = anchor_on + timedelta(days=day)
        if stop_before is not None and on >= stop_before:
            break
        planned.append(
            Occurrence(
                step_id=step.id,
                anchor_on=anchor_on,
                protocol_day=day,
                purpose=step.purpose,
                scheduled_on=on,
                window_start=on - timedelta(days=step.window_before_days),
                window_end=on + timedelta(days=step.window_after_days),
                open_series=step.repeat in OPEN_SERIES,
                visit_kind=step.visit_kind,
            )
        )
    return planned


def visit_time(on: date, *, hour: int, zone: str) -> datetime:
    """The aware date-time of a visit on ``on``: the clinic's visit hour, local time.

    Built from the local wall time, so a daylight-saving change between planning and the visit
    never moves it off the hour.
    """
    return datetime.combine(on, time(hour), tzinfo=ZoneInfo(zone))
