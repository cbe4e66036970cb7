"""The recovery chart's layout, from unsaved rows (no database): the time range and its fallback,
labels that never cover one another, the patient's own reports marked apart, and colours that
stay readable on the admin's light and dark backgrounds."""

from datetime import date, timedelta
from decimal import Decimal
from itertools import combinations

import pytest

from followups.codes import AssessmentSource, AssessmentStatus
from followups.models import Assessment
from followups.recovery_chart import (
    LABEL_HEIGHT,
    PALETTE,
    SINCE_CHOICES,
    Chart,
    label_width,
    labels_lay_out,
    recovery_chart,
)
from patients.codes import TreatmentKind, TreatmentStatus
from patients.models import Treatment

TODAY = date(2025, 6, 30)
# The admin's --body-bg: base.css (light) and dark_mode.css (dark theme, or the system's when auto).
BACKGROUNDS = {"light": "#ffffff", "dark": "#121212"}
# WCAG 2.x AA: text needs 4.5:1, lines and marks 3:1; every chart colour is used for both.
TEXT_CONTRAST = 4.5


def ago(days: int) -> date:
    return TODAY - timedelta(days=days)


def log(pk: int, on: date, spasms="10", grade=2, *, source=AssessmentSource.CLINICIAN, status=None):
    return Assessment(
        pk=pk,
        assessed_on=on,
        spasms_per_day=None if spasms is None else Decimal(spasms),
        cohen_albert_grade=grade,
        source=source,
        status=status or AssessmentStatus.FINAL,
    )


def treatment(pk: int, on: date, kind=TreatmentKind.BOTULINUM_TOXIN, status=TreatmentStatus.COMPLETED):
    return Treatment(pk=pk, started_on=on, kind=kind, status=status)


def sessions(count: int, apart: int) -> list[Treatment]:
    """``count`` toxin sessions ``apart`` days apart, the last one today."""
    return [treatment(n + 1, ago(apart * (count - 1 - n))) for n in range(count)]


def drawn_dates(chart: Chart) -> list[str]:
    return [p["on"] for p in chart.spasm_points]


# --- the time range ---------------------------------------------------------------------------


@pytest.fixture
def record():
    """Logs two years, ten months and ten days ago; an MVD 400 days ago, a toxin session 100 days
    ago and a retracted one 50 days ago."""
    logs = [log(1, ago(730)), log(2, ago(300)), log(3, ago(10))]
    treatments = [
        treatment(7, ago(400), TreatmentKind.MVD),
        treatment(8, ago(100)),
        treatment(9, ago(50), status=TreatmentStatus.ENTERED_IN_ERROR),
    ]
    return logs, treatments


def test_all_spans_every_log_and_treatment(record):
    chart = recovery_chart(*record, today=TODAY)

    assert chart.shown == "all"
    assert drawn_dates(chart) == [ago(730).isoformat(), ago(300).isoformat(), ago(10).isoformat()]
    assert (chart.first, chart.last) == (ago(730), ago(10))
    assert [t["on"] for t in chart.treatments] == [ago(400).isoformat(), ago(100).isoformat()]
    xs = [p["x"] for p in chart.spasm_points]
    assert xs[0] == chart.left and xs[-1] == chart.plot_right


def test_the_last_year_spans_the_365_days_up_to_today_and_draws_nothing_before(record):
    chart = recovery_chart(*record, shown="year", today=TODAY)

    assert chart.shown == "year"
    assert (chart.first, chart.last) == (ago(365), TODAY)
    assert drawn_dates(chart) == [ago(300).isoformat(), ago(10).isoformat()]
    assert [g["on"] for g in chart.grade_points] == drawn_dates(chart)
    assert [t["on"] for t in chart.treatments] == [ago(100).isoformat()]
    assert all(chart.left <= p["x"] <= chart.plot_right for p in chart.spasm_points)


def test_a_year_ago_to_the_day_is_in_the_last_year():
    chart = recovery_chart([log(1, ago(365)), log(2, ago(366))], [], shown="year", today=TODAY)

    assert drawn_dates(chart) == [ago(365).isoformat()]
    assert chart.spasm_points[0]["x"] == chart.left


def test_since_a_treatment_starts_at_its_start_and_runs_to_today(record):
    chart = recovery_chart(*record, shown="since-7", today=TODAY)

    assert chart.shown == "since-7"
    assert (chart.first, chart.last) == (ago(400), TODAY)
    assert drawn_dates(chart) == [ago(300).isoformat(), ago(10).isoformat()]
    assert [t["on"] for t in chart.treatments] == [ago(400).isoformat(), ago(100).isoformat()]
    assert chart.treatments[0]["x"] == chart.left


def test_since_a_treatment_of_today_still_spans_a_month():
    chart = recovery_chart([log(1, TODAY)], [treatment(1, TODAY)], shown="since-1", today=TODAY)

    assert (chart.first, chart.last) == (TODAY, TODAY + timedelta(days=30))
    assert chart.spasm_points[0]["x"] == chart.left


@pytest.mark.parametrize(
    "shown",
    ["since-9", "since-999", "since-", "since-abc", "since-07", "decade", "", "ALL", "year ", None],
    ids=[
        "retracted",
        "unknown",
        "no-pk",
        "not-a-number",
        "padded",
        "other",
        "empty",
        "upper",
        "space",
        "none",
    ],
)
def test_anything_else_shows_everything(record, shown):
    chart = recovery_chart(*record, shown=shown, today=TODAY)

    assert chart.shown == "all"
    assert len(chart.spasm_points) == 3
    assert [r["key"] for r in chart.ranges if r["current"]] == ["all"]


def test_the_ranges_offered_name_the_current_one_and_skip_retracted_treatments(record):
    chart = recovery_chart(*record, shown="since-8", today=TODAY)

    assert chart.ranges == [
        {"key": "year", "label": "Last year", "current": False},
        {"key": "all", "label": "All", "current": False},
        {"key": "since-8", "label": f"Since botulinum toxin of {ago(100).isoformat()}", "current": True},
        {
            "key": "since-7",
            "label": f"Since microvascular decompression of {ago(400).isoformat()}",
            "current": False,
        },
    ]


def test_only_the_newest_treatments_are_offered_unless_an_older_one_is_shown():
    many = sessions(24, 84)

    newest = [f"since-{t.pk}" for t in reversed(many[-SINCE_CHOICES:])]
    offered = recovery_chart([log(1, TODAY)], many, today=TODAY).ranges
    assert [r["key"] for r in offered] == ["year", "all", *newest]

    older = recovery_chart([log(1, TODAY)], many, shown="since-2", today=TODAY).ranges
    assert [r["key"] for r in older] == ["year", "all", *newest, "since-2"]
    assert [r["key"] for r in older if r["current"]] == ["since-2"]


def test_a_range_without_a_log_is_empty_but_the_patient_has_logs(record):
    logs, treatments = record
    chart = recovery_chart(logs[:1], treatments, shown="year", today=TODAY)

    assert chart.empty and chart.logged
    assert not chart.treatments and not chart.x_ticks


def test_no_log_at_all_is_not_logged():
    chart = recovery_chart([log(1, TODAY, status=AssessmentStatus.ENTERED_IN_ERROR)], [], today=TODAY)

    assert chart.empty and not chart.logged


# --- labels that never overlap ----------------------------------------------------------------


def boxes(chart: Chart) -> list[tuple[float, float, float, float, str]]:
    """(left, top, right, bottom, text) of every label the chart writes, an 11 px text reaching
    10 units above its baseline and 3 below: treatment labels above the plot, dates under it, and
    the values of both y-axes (written centred on their height, right- and left-aligned)."""
    written = [
        (t["label_x"] - label_width(t["label"]) / 2, t["label_y"], t["label"])
        for t in chart.treatments
        if t["label_y"] is not None
    ]
    written += [
        (tick["x"] - label_width(tick["label"]) / 2, chart.tick_label_y, tick["label"])
        for tick in chart.x_ticks
    ]
    middle = LABEL_HEIGHT / 2 - 3
    written += [
        (chart.spasm_tick_x - label_width(t["label"]), t["y"] + middle, t["label"]) for t in chart.spasm_ticks
    ]
    written += [(chart.grade_tick_x, t["y"] + middle, t["label"]) for t in chart.grade_ticks]
    return [(left, y - 10, left + label_width(text), y + 3, text) for left, y, text in written]


def overlapping(chart: Chart) -> list:
    return [
        (a[4], b[4])
        for a, b in combinations(boxes(chart), 2)
        if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
    ]


@pytest.mark.parametrize("apart", [84, 28, 7, 1])
@pytest.mark.parametrize("shown", ["all", "year"])
def test_no_label_covers_another_for_24_sessions(apart, shown):
    logs = [log(n, ago(n * 9)) for n in range(1, 60)]
    chart = recovery_chart(logs, sessions(24, apart), shown=shown, today=TODAY)

    assert overlapping(chart) == []
    assert all(
        left >= 0 and right <= chart.width and top >= 0 and bottom <= chart.height
        for left, top, right, bottom, _ in boxes(chart)
    )
    assert len(chart.x_ticks) >= 3


def test_24_sessions_84_days_apart_keep_every_mark_and_the_newest_label():
    chart = recovery_chart([log(1, TODAY)], sessions(24, 84), today=TODAY)

    assert len(chart.treatments) == 24
    written = [t for t in chart.treatments if t["label_y"] is not None]
    assert 4 <= len(written) < 24
    assert chart.treatments[-1]["label_y"] is not None
    assert len({t["label_y"] for t in written}) == 2


def test_labels_far_apart_are_all_written_in_the_first_row():
    placed = labels_lay_out([(100, "Medication"), (400, "Botulinum toxin")], rows=2, low=0, high=760)

    assert [p.row for p in placed] == [0, 0]
    assert [p.x for p in placed] == [100, 400]


def test_a_close_label_goes_to_the_second_row_and_a_third_is_left_out():
    placed = labels_lay_out(
        [(300, "Medication"), (310, "Medication"), (320, "Medication")], rows=2, low=0, high=760
    )

    assert [p.row for p in placed] == [None, 1, 0]


def test_a_label_at_the_edge_is_moved_inside_the_chart():
    width = label_width("Microvascular decompression")

    left, right = labels_lay_out(
        [(5, "Microvascular decompression"), (755, "Microvascular decompression")], rows=1, low=0, high=760
    )

    assert left.x == pytest.approx(width / 2, abs=0.1) and left.row == 0
    assert right.x == pytest.approx(760 - width / 2, abs=0.1) and right.row == 0


def test_date_labels_follow_the_calendar():
    five_years = recovery_chart([log(1, ago(1900)), log(2, TODAY)], [], today=TODAY)
    one_year = recovery_chart([log(1, TODAY)], [], shown="year", today=TODAY)
    one_month = recovery_chart([log(1, ago(30)), log(2, TODAY)], [], today=TODAY)

    assert [t["label"] for t in five_years.x_ticks] == ["2021", "2022", "2023", "2024", "2025"]
    assert [t["label"] for t in one_year.x_ticks] == [
        "Jul 2024",
        "Sep 2024",
        "Nov 2024",
        "Jan 2025",
        "Mar 2025",
        "May 2025",
    ]
    assert [t["label"] for t in one_month.x_ticks] == [ago(30 - 7 * n).isoformat() for n in range(5)]


# --- the patient's own reports ----------------------------------------------------------------


def test_the_patients_reports_are_open_marks_with_their_source():
    logs = [
        log(1, ago(20), source=AssessmentSource.NURSE),
        log(2, ago(10), source=AssessmentSource.PATIENT),
        log(3, ago(5), source=AssessmentSource.CLINICIAN),
        log(4, ago(1), spasms=None, grade=1, source=AssessmentSource.PATIENT),
    ]

    chart = recovery_chart(logs, [], today=TODAY)

    assert [(p["source"], p["reported"]) for p in chart.spasm_points] == [
        ("nurse", False),
        ("patient", True),
        ("clinician", False),
    ]
    assert [p["reported"] for p in chart.grade_points] == [False, True, False, True]
    assert chart.reported


def test_staff_logs_only_need_no_open_mark_in_the_legend():
    assert not recovery_chart([log(1, TODAY)], [], today=TODAY).reported


def test_a_grade_mark_is_centred_on_its_point():
    point = recovery_chart([log(1, ago(40)), log(2, TODAY, grade=3)], [], today=TODAY).grade_points[1]

    assert (point["corner_x"] + 3.5, point["corner_y"] + 3.5) == pytest.approx((point["x"], point["y"]))


# --- colours ----------------------------------------------------------------------------------


def luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(one: str, other: str) -> float:
    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def test_the_contrast_formula_matches_known_ratios():
    assert contrast("#000000", "#ffffff") == pytest.approx(21)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)
    assert contrast("#ffffff", "#ffffff") == pytest.approx(1)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("line", ["spasms", "grade", "treatment"])
def test_every_colour_is_readable_as_text_on_its_themes_background(theme, line):
    assert contrast(PALETTE[theme][line], BACKGROUNDS[theme]) >= TEXT_CONTRAST


@pytest.mark.parametrize("line", ["spasms", "grade", "treatment"])
def test_the_light_colours_would_not_do_on_the_dark_background(line):
    # Why the dark theme has colours of its own.
    assert contrast(PALETTE["light"][line], BACKGROUNDS["dark"]) < TEXT_CONTRAST
