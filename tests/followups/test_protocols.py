"""The arithmetic of protocol steps (followups/protocols.py): plain data in, dates out, no database."""

from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import pytest

from followups.codes import StepRepeat
from followups.protocols import OPEN_SERIES_INTERVALS_AHEAD, Occurrence, Step, occurrences, visit_time

ANCHOR = date(2025, 1, 10)


def days_of(planned):
    return [o.protocol_day for o in planned]


def test_a_one_off_step_asks_for_one_visit_with_its_window():
    step = Step(
        id=7, purpose="Facial nerve check (day 10)", offset_days=10, window_before_days=3, window_after_days=4
    )

    assert occurrences(step, ANCHOR, today=ANCHOR) == [
        Occurrence(
            step_id=7,
            anchor_on=ANCHOR,
            protocol_day=10,
            purpose="Facial nerve check (day 10)",
            scheduled_on=date(2025, 1, 20),
            window_start=date(2025, 1, 17),
            window_end=date(2025, 1, 24),
        )
    ]


def test_a_one_off_step_does_not_depend_on_today():
    step = Step(id=1, purpose="x", offset_days=30, window_before_days=7, window_after_days=7)

    assert days_of(occurrences(step, ANCHOR, today=ANCHOR + timedelta(days=2000))) == [30]


def test_a_window_can_open_on_the_visit_day():
    step = Step(id=1, purpose="Re-injection", offset_days=84, window_before_days=0, window_after_days=21)

    (visit,) = occurrences(step, ANCHOR, today=ANCHOR)
    assert (visit.window_start, visit.scheduled_on, visit.window_end) == (
        ANCHOR + timedelta(days=84),
        ANCHOR + timedelta(days=84),
        ANCHOR + timedelta(days=105),
    )


def test_a_series_until_a_day_includes_that_day():
    yearly = Step(
        id=1,
        purpose="Yearly",
        offset_days=1095,
        window_before_days=30,
        window_after_days=30,
        repeat=StepRepeat.UNTIL_DAY,
        repeat_every_days=365,
        repeat_until_day=1825,
    )

    assert days_of(occurrences(yearly, ANCHOR, today=ANCHOR)) == [1095, 1460, 1825]


def test_a_series_until_a_day_stops_before_a_day_it_would_overshoot():
    step = Step(
        id=1,
        purpose="x",
        offset_days=10,
        window_before_days=0,
        window_after_days=0,
        repeat=StepRepeat.UNTIL_DAY,
        repeat_every_days=20,
        repeat_until_day=49,
    )

    assert days_of(occurrences(step, ANCHOR, today=ANCHOR)) == [10, 30]


@pytest.mark.parametrize(
    "repeat", [StepRepeat.WHILE_ACTIVE, StepRepeat.WHILE_UNTREATED, StepRepeat.WHILE_FACIAL_PALSY]
)
def test_an_open_series_runs_two_intervals_past_today(repeat):
    step = Step(
        id=1,
        purpose="x",
        offset_days=118,
        window_before_days=14,
        window_after_days=14,
        repeat=repeat,
        repeat_every_days=90,
    )
    assert OPEN_SERIES_INTERVALS_AHEAD == 2

    # Horizon = today + 180: on the anchor day, day 118 is within it, day 208 is not.
    assert days_of(occurrences(step, ANCHOR, today=ANCHOR)) == [118]
    # The horizon is inclusive: day 208 comes in the day it is exactly 180 days ahead.
    assert days_of(occurrences(step, ANCHOR, today=ANCHOR + timedelta(days=27))) == [118]
    assert days_of(occurrences(step, ANCHOR, today=ANCHOR + timedelta(days=28))) == [118, 208]
    # Past occurrences are still named (planning decides what is too late to create).
    assert days_of(occurrences(step, ANCHOR, today=ANCHOR + timedelta(days=300))) == [118, 208, 298, 388, 478]


def test_an_open_series_whose_first_visit_lies_past_the_horizon_asks_for_nothing_yet():
    step = Step(
        id=1,
        purpose="x",
        offset_days=180,
        window_before_days=30,
        window_after_days=30,
        repeat=StepRepeat.WHILE_UNTREATED,
        repeat_every_days=50,
    )

    assert occurrences(step, ANCHOR, today=ANCHOR) == []
    assert days_of(occurrences(step, ANCHOR, today=ANCHOR + timedelta(days=80))) == [180]


def test_nothing_is_asked_for_on_or_after_the_stop_date():
    step = Step(
        id=1,
        purpose="x",
        offset_days=1095,
        window_before_days=30,
        window_after_days=30,
        repeat=StepRepeat.UNTIL_DAY,
        repeat_every_days=365,
        repeat_until_day=1825,
    )

    stop_on_day_1460 = ANCHOR + timedelta(days=1460)
    assert days_of(occurrences(step, ANCHOR, today=ANCHOR, stop_before=stop_on_day_1460)) == [1095]
    assert days_of(occurrences(step, ANCHOR, today=ANCHOR, stop_before=stop_on_day_1460 + timedelta(1))) == [
        1095,
        1460,
    ]


def test_a_stop_date_before_a_one_off_visit_drops_it():
    step = Step(id=1, purpose="x", offset_days=84, window_before_days=0, window_after_days=21)

    assert occurrences(step, ANCHOR, today=ANCHOR, stop_before=ANCHOR + timedelta(days=84)) == []
    assert days_of(occurrences(step, ANCHOR, today=ANCHOR, stop_before=ANCHOR + timedelta(days=85))) == [84]


def test_an_occurrence_is_named_by_its_step_anchor_and_day():
    step = Step(id=42, purpose="x", offset_days=21, window_before_days=7, window_after_days=7)

    (visit,) = occurrences(step, ANCHOR, today=ANCHOR)
    assert visit.key == (42, ANCHOR, 21)


@pytest.mark.parametrize(
    ("repeat", "is_open"),
    [
        (StepRepeat.ONCE, False),
        (StepRepeat.UNTIL_DAY, False),
        (StepRepeat.WHILE_ACTIVE, True),
        (StepRepeat.WHILE_UNTREATED, True),
        (StepRepeat.WHILE_FACIAL_PALSY, True),
    ],
)
def test_an_occurrence_says_whether_it_belongs_to_an_open_series(repeat, is_open):
    every = None if repeat == StepRepeat.ONCE else 30
    until = 90 if repeat == StepRepeat.UNTIL_DAY else None
    step = Step(
        id=1,
        purpose="x",
        offset_days=30,
        window_before_days=0,
        window_after_days=0,
        repeat=repeat,
        repeat_every_days=every,
        repeat_until_day=until,
    )

    planned = occurrences(step, ANCHOR, today=ANCHOR)
    assert planned
    assert {o.open_series for o in planned} == {is_open}


@pytest.mark.parametrize(
    ("zone", "winter_offset", "summer_offset"),
    [("America/New_York", -5, -4), ("Europe/Berlin", 1, 2), ("Australia/Sydney", 11, 10)],
)
def test_a_visit_keeps_its_local_hour_on_both_sides_of_a_daylight_saving_change(
    zone, winter_offset, summer_offset
):
    winter = visit_time(date(2026, 1, 15), hour=9, zone=zone)
    summer = visit_time(date(2026, 7, 15), hour=9, zone=zone)

    for when in (winter, summer):
        local = when.astimezone(ZoneInfo(zone))
        assert (local.hour, local.minute) == (9, 0)
    assert winter.utcoffset() == timedelta(hours=winter_offset)
    assert summer.utcoffset() == timedelta(hours=summer_offset)


@pytest.mark.parametrize(
    ("zone", "before", "after"),
    [
        # The days either side of each transition of 2026.
        ("America/New_York", date(2026, 3, 7), date(2026, 3, 9)),
        ("America/New_York", date(2026, 10, 31), date(2026, 11, 2)),
        ("Europe/Berlin", date(2026, 3, 28), date(2026, 3, 30)),
        ("Europe/Berlin", date(2026, 10, 24), date(2026, 10, 26)),
    ],
)
def test_the_day_after_a_transition_is_not_23_or_25_hours_off_the_hour(zone, before, after):
    first = visit_time(before, hour=14, zone=zone)
    second = visit_time(after, hour=14, zone=zone)

    assert second.astimezone(ZoneInfo(zone)).hour == 14
    assert first.astimezone(ZoneInfo(zone)).hour == 14
    # Two calendar days apart, but one hour more or less in absolute time.
    elapsed = second.astimezone(UTC) - first.astimezone(UTC)
    assert abs(elapsed - timedelta(days=2)) == timedelta(hours=1)
