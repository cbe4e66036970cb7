"""The recovery chart of the patient page: spasms per day and Cohen-Albert grade against time.

``recovery_chart`` lays the chart out as plain numbers for an inline SVG, so the page needs no
script and no asset from outside the project. It shows one time range at a time (the last year,
everything, or since one treatment), places every label where it cannot cover another
(``labels_lay_out``), and marks the patient's own diary reports apart from the staff's (DOMAIN.md
section 10).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import ClassVar

from django.utils import dateformat, timezone

from followups.codes import AssessmentSource, AssessmentStatus
from followups.models import Assessment
from patients.codes import TreatmentStatus
from patients.models import Treatment

YEAR = timedelta(days=365)
# A shorter span would crowd a few days over the whole width; it is widened to this.
MIN_SPAN = timedelta(days=30)
# The "since" choices offered: the newest treatments only, so that 24 sessions are not 24 links.
SINCE_CHOICES = 5

# Width of one character of an 11 px label in SVG units: that of the widest common glyphs of the
# admin's sans-serif (digits are 7 units wide in DejaVu Sans), so a label's estimated box holds the
# drawn one (tests/admin/test_recovery_chart_browser.py measures them in Chromium).
LABEL_CHAR_WIDTH = 7.0
LABEL_GAP = 8
# Dates under the axis keep wider apart, so that the axis reads as a scale rather than a row of text.
TICK_GAP = 24
LABEL_HEIGHT = 13
# Treatment labels stack in this many rows above the plot; what has no room in either is left to
# the mark's tooltip.
TREATMENT_LABEL_ROWS = 2

# The chart's colours on the admin's page background (--body-bg), each at least 4.5:1 against it
# (WCAG AA for text, so also for the lines and marks): the light theme's on white, the dark
# theme's on #121212 (tests/followups/test_recovery_chart.py computes the ratios).
PALETTE = {
    "light": {"spasms": "#1f6fb2", "grade": "#c2410c", "treatment": "#15803d"},
    "dark": {"spasms": "#60a5fa", "grade": "#fb923c", "treatment": "#4ade80"},
}


@dataclass(frozen=True)
class Placed:
    """Where a label is written: the centre of its text, and its row (0 nearest the plot), or
    ``row`` None when it has no room and is not written."""

    x: float
    row: int | None


def label_width(text: str) -> float:
    return len(text) * LABEL_CHAR_WIDTH


def labels_lay_out(
    anchors: Sequence[tuple[float, str]], *, rows: int, low: float, high: float, gap: float = LABEL_GAP
) -> list[Placed]:
    """Place each ``(x, text)`` label centred over its x, kept within ``low``..``high``, in the
    first of ``rows`` rows where it stays ``gap`` clear of the label placed beside it;
    answered in the order given. Placed from the right, so the rightmost (newest) label is always
    written."""
    placed: dict[int, Placed] = {}
    # The left edge of the leftmost label written so far in each row.
    edges = [float("inf")] * rows
    for index in sorted(range(len(anchors)), key=lambda i: anchors[i][0], reverse=True):
        x, text = anchors[index]
        width = label_width(text)
        centre = round(min(max(x, low + width / 2), high - width / 2), 1)
        row = next((r for r in range(rows) if centre + width / 2 + gap <= edges[r]), None)
        if row is not None:
            edges[row] = centre - width / 2
        placed[index] = Placed(centre, row)
    return [placed[i] for i in range(len(anchors))]


@dataclass
class Chart:
    """Coordinates of the recovery chart, in the SVG's own units."""

    palette: ClassVar[dict] = PALETTE

    width: int = 760
    height: int = 300
    left: int = 56
    right: int = 56
    top: int = 44
    bottom: int = 44
    # The range shown (``recovery_chart``'s ``shown`` once checked) and the ranges offered, as
    # ``{"key", "label", "current"}``.
    shown: str = "all"
    ranges: list[dict] = field(default_factory=list)
    # Whether the patient has any symptom log at all, drawn in this range or not.
    logged: bool = False
    first: date | None = None
    last: date | None = None
    spasm_points: list[dict] = field(default_factory=list)
    grade_points: list[dict] = field(default_factory=list)
    treatments: list[dict] = field(default_factory=list)
    x_ticks: list[dict] = field(default_factory=list)
    spasm_ticks: list[dict] = field(default_factory=list)
    grade_ticks: list[dict] = field(default_factory=list)

    @property
    def plot_right(self) -> int:
        return self.width - self.right

    @property
    def plot_bottom(self) -> int:
        return self.height - self.bottom

    @property
    def spasm_line(self) -> str:
        return " ".join(f"{p['x']},{p['y']}" for p in self.spasm_points)

    @property
    def grade_line(self) -> str:
        return " ".join(f"{p['x']},{p['y']}" for p in self.grade_points)

    @property
    def empty(self) -> bool:
        return not (self.spasm_points or self.grade_points)

    @property
    def reported(self) -> bool:
        """Whether a point drawn is the patient's own report."""
        return any(p["reported"] for p in self.spasm_points + self.grade_points)

    def treatment_label_y(self, row: int) -> int:
        """The baseline of a row of treatment labels: the first row clears the grade axis's "4",
        which is written level with the top of the plot, right where the newest label tends to be."""
        return self.top - 12 - row * (LABEL_HEIGHT + 2)

    @property
    def tick_label_y(self) -> int:
        return self.plot_bottom + 18

    @property
    def spasm_tick_x(self) -> int:
        return self.left - 6

    @property
    def grade_tick_x(self) -> int:
        return self.plot_right + 6


def _nice_ceiling(value: float) -> int:
    """The axis top: the smallest of 1, 2, 5 times a power of ten at or above ``value``."""
    if value <= 0:
        return 10
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor >= value:
                return step * factor
        step *= 10


def _newest_first(treatments: list[Treatment]) -> list[Treatment]:
    return sorted(treatments, key=lambda t: (t.started_on, t.pk or 0), reverse=True)


def _range_of(shown: str, marked: list[Treatment], today: date) -> tuple[str, date | None, date | None]:
    """The range asked for as (key, first day, last day), None where it is open; anything not
    understood, a retracted or another patient's treatment among them, is everything."""
    if shown == "year":
        return "year", today - YEAR, today
    if isinstance(shown, str) and shown.startswith("since-"):
        since = next((t for t in marked if f"since-{t.pk}" == shown), None)
        if since is not None:
            return shown, since.started_on, None
    return "all", None, None


def _ranges_offered(shown: str, marked: list[Treatment]) -> list[dict]:
    newest = _newest_first(marked)
    since = newest[:SINCE_CHOICES] + [t for t in newest[SINCE_CHOICES:] if f"since-{t.pk}" == shown]
    choices = [("year", "Last year"), ("all", "All")] + [
        (f"since-{t.pk}", f"Since {t.get_kind_display().lower()} of {t.started_on.isoformat()}")
        for t in since
    ]
    return [{"key": key, "label": label, "current": key == shown} for key, label in choices]


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _tick_days(first: date, last: date, *, months: int = 0, days: int = 0) -> list[date]:
    """Every ``days``-th day from ``first``, or the first day of every ``months``-th month (January
    among them) within ``first``..``last``."""
    if days:
        return [first + timedelta(days=n) for n in range(0, (last - first).days + 1, days)]
    index = _month_index(first) + (first.day != 1)
    index += -index % months
    ticks = []
    while (day := date(index // 12, index % 12 + 1, 1)) <= last:
        ticks.append(day)
        index += months
    return ticks


def _tick_label(day: date, *, months: int) -> str:
    if months >= 12:
        return str(day.year)
    if months:
        return dateformat.format(day, "M Y")
    return day.isoformat()


# The x-axis steps tried in turn, finest first: the first whose labels all fit is drawn.
TICK_STEPS = (
    {"days": 7},
    {"days": 14},
    {"months": 1},
    {"months": 2},
    {"months": 3},
    {"months": 6},
    {"months": 12},
    {"months": 24},
    {"months": 60},
)


def _x_ticks(chart: Chart, x_of) -> list[dict]:
    """Dates along the x-axis at calendar steps (weeks, months, years): the finest step whose
    labels all fit; when none fits, the coarsest, thinned."""
    ticks: list[dict] = []
    for step in TICK_STEPS:
        days = _tick_days(chart.first, chart.last, **step)
        anchors = [(x_of(day), _tick_label(day, months=step.get("months", 0))) for day in days]
        placed = labels_lay_out(anchors, rows=1, low=0, high=chart.width, gap=TICK_GAP)
        ticks = [
            {"at": x, "x": p.x, "label": label}
            for (x, label), p in zip(anchors, placed, strict=True)
            if p.row is not None
        ]
        if len(ticks) == len(anchors):
            break
    return ticks


def recovery_chart(
    assessments: list[Assessment],
    treatments: list[Treatment],
    *,
    shown: str = "all",
    today: date | None = None,
) -> Chart:
    """Spasms per day (left axis) and Cohen-Albert grade 0-4 (right axis) against time, with the
    start of each treatment marked, over the range ``shown``: "year" (the 365 days up to
    ``today``), "all", or "since-<treatment pk>" (from that treatment's start); any other value
    shows everything. Retracted assessments and treatments are not drawn."""
    today = today or timezone.localdate()
    marked = [t for t in treatments if t.status != TreatmentStatus.ENTERED_IN_ERROR]
    key, start, end = _range_of(shown, marked, today)
    chart = Chart(shown=key, ranges=_ranges_offered(key, marked))
    logs = sorted(
        (
            a
            for a in assessments
            if a.status == AssessmentStatus.FINAL
            and (a.spasms_per_day is not None or a.cohen_albert_grade is not None)
        ),
        key=lambda a: (a.assessed_on, a.pk or 0),
    )
    chart.logged = bool(logs)

    def within(day: date) -> bool:
        return (start is None or start <= day) and (end is None or day <= end)

    logs = [a for a in logs if within(a.assessed_on)]
    marked = [t for t in marked if within(t.started_on)]
    if not logs:
        return chart
    days = [a.assessed_on for a in logs] + [t.started_on for t in marked]
    first, last = start or min(days), end or max(days)
    if key.startswith("since-"):
        last = max(last, today)
    if last - first < MIN_SPAN:
        if start is None:
            first, last = first - MIN_SPAN / 2, last + MIN_SPAN / 2
        else:
            last = first + MIN_SPAN
    chart.first, chart.last = first, last
    span = (last - first).days
    plot_width = chart.plot_right - chart.left
    plot_height = chart.plot_bottom - chart.top

    def x_of(day: date) -> float:
        return round(chart.left + plot_width * (day - first).days / span, 1)

    spasm_top = _nice_ceiling(float(max((a.spasms_per_day or Decimal(0)) for a in logs)))

    def y_of(value: float, top: float) -> float:
        return round(chart.plot_bottom - plot_height * value / top, 1)

    for a in logs:
        point = {
            "x": x_of(a.assessed_on),
            "on": a.assessed_on.isoformat(),
            "source": a.source,
            "reported": a.source == AssessmentSource.PATIENT,
        }
        if a.spasms_per_day is not None:
            value = a.spasms_per_day.normalize()
            chart.spasm_points.append(
                {**point, "y": y_of(float(a.spasms_per_day), spasm_top), "value": f"{value:f}"}
            )
        if a.cohen_albert_grade is not None:
            y = y_of(a.cohen_albert_grade, 4)
            # The square mark is 7 units wide, centred on its point.
            corner = {"corner_x": round(point["x"] - 3.5, 1), "corner_y": round(y - 3.5, 1)}
            chart.grade_points.append({**point, **corner, "y": y, "value": a.cohen_albert_grade})
    marked = sorted(marked, key=lambda t: (t.started_on, t.pk or 0))
    anchors = [(x_of(t.started_on), t.get_kind_display()) for t in marked]
    placed = labels_lay_out(anchors, rows=TREATMENT_LABEL_ROWS, low=0, high=chart.width)
    for t, (x, label), p in zip(marked, anchors, placed, strict=True):
        chart.treatments.append(
            {
                "x": x,
                "on": t.started_on.isoformat(),
                "label": label,
                "label_x": p.x,
                "label_y": None if p.row is None else chart.treatment_label_y(p.row),
            }
        )
    chart.x_ticks = _x_ticks(chart, x_of)
    for n in range(5):
        chart.spasm_ticks.append({"y": y_of(spasm_top * n / 4, spasm_top), "label": f"{spasm_top * n / 4:g}"})
        chart.grade_ticks.append({"y": y_of(n, 4), "label": str(n)})
    return chart
