"""The recovery chart of the patient page: spasms per day and Cohen-Albert grade against time.

``recovery_chart`` lays the chart out as plain numbers for an inline SVG, so the page needs no
script and no asset from outside the project.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from followups.codes import AssessmentStatus
from followups.models import Assessment
from patients.models import Treatment


@dataclass
class Chart:
    """Coordinates of the recovery chart, in the SVG's own units."""

    width: int = 760
    height: int = 280
    left: int = 56
    right: int = 56
    top: int = 20
    bottom: int = 44
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


def recovery_chart(
    assessments: list[Assessment],
    treatments: list[Treatment],
    *,
    shown: str = "all",
    today: date | None = None,
) -> Chart:
    """Spasms per day (left axis) and Cohen-Albert grade 0-4 (right axis) against time, with the
    start of each treatment marked. Retracted assessments are not drawn."""
    chart = Chart()
    logs = sorted(
        (a for a in assessments if a.status == AssessmentStatus.FINAL),
        key=lambda a: (a.assessed_on, a.pk),
    )
    logs = [a for a in logs if a.spasms_per_day is not None or a.cohen_albert_grade is not None]
    if not logs:
        return chart
    marked = [t for t in treatments if t.status != "entered_in_error"]
    days = [a.assessed_on for a in logs] + [t.started_on for t in marked]
    first, last = min(days), max(days)
    if (last - first).days < 30:
        first, last = first - timedelta(days=15), last + timedelta(days=15)
    span = (last - first).days
    plot_width = chart.plot_right - chart.left
    plot_height = chart.plot_bottom - chart.top

    def x_of(day: date) -> float:
        return round(chart.left + plot_width * (day - first).days / span, 1)

    spasm_top = _nice_ceiling(float(max((a.spasms_per_day or Decimal(0)) for a in logs)))

    def y_of(value: float, top: float) -> float:
        return round(chart.plot_bottom - plot_height * value / top, 1)

    for a in logs:
        on = a.assessed_on.isoformat()
        if a.spasms_per_day is not None:
            value = a.spasms_per_day.normalize()
            chart.spasm_points.append(
                {
                    "x": x_of(a.assessed_on),
                    "y": y_of(float(a.spasms_per_day), spasm_top),
                    "on": on,
                    "value": f"{value:f}",
                }
            )
        if a.cohen_albert_grade is not None:
            chart.grade_points.append(
                {
                    "x": x_of(a.assessed_on),
                    "y": y_of(a.cohen_albert_grade, 4),
                    "on": on,
                    "value": a.cohen_albert_grade,
                }
            )
    for t in marked:
        if first <= t.started_on <= last:
            chart.treatments.append(
                {"x": x_of(t.started_on), "on": t.started_on.isoformat(), "label": t.get_kind_display()}
            )
    for n in range(5):
        day = first + timedelta(days=round(span * n / 4))
        chart.x_ticks.append({"x": x_of(day), "label": day.isoformat()})
        chart.spasm_ticks.append({"y": y_of(spasm_top * n / 4, spasm_top), "label": f"{spasm_top * n / 4:g}"})
        chart.grade_ticks.append({"y": y_of(n, 4), "label": str(n)})
    return chart
