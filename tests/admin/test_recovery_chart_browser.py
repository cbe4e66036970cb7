"""The recovery chart of a long record in a real browser at 1280 x 800 (issue 16): 24 toxin sessions
and four years of symptom logs, some reported by the patient. No drawn label covers another (as
Chromium lays the text out), the time range is chosen with plain links, the patient's own reports
are open marks, and every colour keeps WCAG AA contrast on the admin's light and dark backgrounds.
Screenshots land in ``test-artifacts/browser/``.
"""

import re
from decimal import Decimal
from itertools import combinations
from pathlib import Path

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from clinic.roles import Role
from followups import services as followups
from followups.codes import AssessmentSource
from followups.recovery_chart import label_width
from patients import codes
from tests.admin.conftest import days, log_in, screenshot
from tests.factories import PatientFactory, diagnosis_for, treatment_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_defaults"),
]

VIEWPORT = {"width": 1280, "height": 800}
SESSIONS = 24
# Each session 20 U, 84 days apart: well inside 200 U in 30 days.
APART = 84
LOG_EVERY = 42
# WCAG AA: 4.5:1 for text; the chart's colours are used as text and as lines and marks (3:1).
TEXT_CONTRAST = 4.5
# axe-core from npm (package.json), read from disk into the page, as test_accessibility_browser.py does.
AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => {
  const tags = ["wcag2a", "wcag2aa", "wcag21aa"];
  const result = await axe.run("#patient-chart", {runOnly: {type: "tag", values: tags}});
  return result.violations.map((v) => ({id: v.id, nodes: v.nodes.map((n) => n.target.join(" "))}));
}"""


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@pytest.fixture
def long_record(db, today):
    """24 toxin sessions 84 days apart, the first 24 x 84 days ago; a symptom log every 42 days
    from then on, every third one the patient's own report."""
    start = today - days(SESSIONS * APART)
    patient = PatientFactory()
    diagnosis = diagnosis_for(patient, diagnosed_on=start - days(30))
    sessions = [
        treatment_for(diagnosis, codes.TreatmentKind.BOTULINUM_TOXIN, started_on=start + days(n * APART))
        for n in range(SESSIONS)
    ]
    logs = [
        followups.assessment_record(
            patient=patient,
            assessed_on=start + days(7 + n * LOG_EVERY),
            spasms_per_day=str(60 - n),
            cohen_albert_grade=3 if n < 20 else 2 if n < 40 else 1,
            source=AssessmentSource.PATIENT if n % 3 == 2 else AssessmentSource.CLINICIAN,
        )
        for n in range((SESSIONS * APART - 7) // LOG_EVERY + 1)
    ]
    return {"patient": patient, "sessions": sessions, "logs": logs}


# The screen box of every text the chart writes (transforms applied, so the rotated axis titles
# too), its width in the SVG's units, and the SVG's own box.
TEXT_BOXES = """() => {
  const svg = document.querySelector('[data-test="recovery-chart"]');
  const box = (r) => ({left: r.left, top: r.top, right: r.right, bottom: r.bottom});
  return {
    svg: box(svg.getBoundingClientRect()),
    texts: [...svg.querySelectorAll("text")].map((t) => ({
      text: t.textContent, label: t.dataset.test === "chart-label", width: t.getBBox().width,
      ...box(t.getBoundingClientRect()),
    })),
  };
}"""

# The computed colour of each coloured thing against the chart's background.
COLOURS = """() => {
  const chart = document.querySelector('[data-test="patient-chart"]');
  const style = (selector, property) => getComputedStyle(chart.querySelector(selector))[property];
  return {
    background: style("svg", "backgroundColor"),
    spasms: style("polyline.spasms", "stroke"),
    grade: style("polyline.grade", "stroke"),
    treatment: style(".treatment", "stroke"),
    "treatment label": style(".treatment-label", "fill"),
    "spasms legend": style(".spasms-key", "color"),
    "grade legend": style(".grade-key", "color"),
    "treatment legend": style(".treatment-key", "color"),
    ticks: style(".tick", "fill"),
    "open mark inside": style('.reported[data-test="chart-spasms"]', "fill"),
  };
}"""


def rgb(css: str) -> tuple[int, int, int]:
    red, green, blue = (int(n) for n in re.findall(r"\d+", css)[:3])
    return red, green, blue


def contrast(one: str, other: str) -> float:
    def luminance(colour: str) -> float:
        channels = [c / 255 for c in rgb(colour)]
        r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    light, dark = sorted((luminance(one), luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def contrasts(page) -> dict[str, float]:
    """The contrast of each colour of the chart on its background; and axe-core finds nothing to
    say about the chart."""
    page.evaluate(AXE.read_text())
    assert page.evaluate(RUN_AXE) == []
    colours = page.evaluate(COLOURS)
    background = colours.pop("background")
    assert colours.pop("open mark inside") == background, "a patient's report is an open mark"
    return {name: round(contrast(colour, background), 2) for name, colour in colours.items()}


def intersecting(boxes: list[dict]) -> list[tuple[str, str]]:
    return [
        (a["text"], b["text"])
        for a, b in combinations(boxes, 2)
        if a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and b["top"] < a["bottom"]
    ]


def chart_points(page) -> dict[str, list]:
    chart = page.locator('[data-test="recovery-chart"]')
    spasms = chart.locator('[data-test="chart-spasms"]')
    return {
        "dates": [spasms.nth(i).get_attribute("data-date") for i in range(spasms.count())],
        "sources": [spasms.nth(i).get_attribute("data-source") for i in range(spasms.count())],
        "reported": chart.locator('[data-test="chart-spasms"].reported').count(),
        "treatments": chart.locator('[data-test="chart-treatment"]').count(),
    }


def test_a_long_record_has_readable_labels_a_time_range_and_open_marks_in_both_themes(
    long_record, make_staff, page, today
):
    patient, logs, sessions = long_record["patient"], long_record["logs"], long_record["sessions"]
    url = reverse("admin:patients_patient_page", args=[patient.pk])
    violations = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    log_in(page, make_staff(Role.CLINICIAN))
    page.goto(url)

    # Everything: a point per log, a mark per session, the patient's reports marked apart.
    drawn = chart_points(page)
    assert drawn["dates"] == [a.assessed_on.isoformat() for a in logs]
    assert drawn["treatments"] == SESSIONS
    reported = [a for a in logs if a.source == AssessmentSource.PATIENT]
    assert drawn["sources"].count("patient") == drawn["reported"] == len(reported) > 0
    expect(page.locator('[data-test="chart-legend-reported"]')).to_have_text(
        "○ □ open marks: reported by the patient"
    )
    expect(page.locator('[data-test="chart-range"][aria-current="true"]')).to_have_text("All")

    # No text of the chart covers another, each stays inside the chart, and each label is no wider
    # than the layout reckoned.
    boxes = page.evaluate(TEXT_BOXES)
    assert intersecting(boxes["texts"]) == []
    svg = boxes["svg"]
    for text in boxes["texts"]:
        assert svg["left"] <= text["left"] and text["right"] <= svg["right"], text
        assert svg["top"] <= text["top"] and text["bottom"] <= svg["bottom"], text
    labels = [t for t in boxes["texts"] if t["label"]]
    assert len([t for t in labels if t["text"] == "Botulinum toxin"]) >= 4
    assert all(t["width"] <= label_width(t["text"]) for t in labels), labels
    screenshot(page, "chart-1-all-light", element=page.locator('[data-test="patient-chart"]'))

    # The last year: only its logs and sessions, the link marked as the one shown.
    page.click('[data-test="chart-range"][data-range="year"]')
    page.wait_for_url(re.compile(r"\?chart=year#patient-chart$"))
    expect(page.locator('[data-test="chart-range"][aria-current="true"]')).to_have_text("Last year")
    year = chart_points(page)
    last_year = [a.assessed_on.isoformat() for a in logs if a.assessed_on >= today - days(365)]
    assert year["dates"] == last_year and 0 < len(last_year) < len(logs)
    assert year["treatments"] == len([t for t in sessions if t.started_on >= today - days(365)])
    assert intersecting(page.evaluate(TEXT_BOXES)["texts"]) == []
    screenshot(page, "chart-2-last-year-light", element=page.locator('[data-test="patient-chart"]'))

    # Since the newest session but one: its start is the chart's left edge.
    since = sessions[-2]
    link = page.locator(f'[data-test="chart-range"][data-range="since-{since.pk}"]')
    expect(link).to_have_text(f"Since botulinum toxin of {since.started_on.isoformat()}")
    link.click()
    page.wait_for_url(re.compile(rf"\?chart=since-{since.pk}#patient-chart$"))
    assert chart_points(page)["dates"] == [
        a.assessed_on.isoformat() for a in logs if a.assessed_on >= since.started_on
    ]
    first_mark = page.locator('[data-test="chart-treatment"] line').first
    left_axis = page.locator('[data-test="recovery-chart"] > line.axis').nth(1)
    assert float(first_mark.get_attribute("x1")) == float(left_axis.get_attribute("x1"))

    # A range the page does not know is everything, never an error.
    for junk in ("since-999999", "%3Cscript%3E", "since-"):
        response = page.goto(f"{url}?chart={junk}")
        assert response.status == 200
        expect(page.locator('[data-test="chart-range"][aria-current="true"]')).to_have_text("All")

    # Light theme, then the system's dark theme while the admin's is "auto", then the admin's dark
    # theme chosen under a light system, and the admin's light theme chosen under a dark system.
    figures = {"light": contrasts(page)}
    page.emulate_media(color_scheme="dark")
    page.goto(url)
    figures["dark (auto)"] = contrasts(page)
    screenshot(page, "chart-3-all-dark", element=page.locator('[data-test="patient-chart"]'))
    page.goto(f"{url}?chart=year")
    screenshot(page, "chart-4-last-year-dark", element=page.locator('[data-test="patient-chart"]'))
    page.emulate_media(color_scheme="light")
    page.evaluate("localStorage.setItem('theme', 'dark')")
    page.goto(url)
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    figures["dark (chosen)"] = contrasts(page)
    page.emulate_media(color_scheme="dark")
    page.evaluate("localStorage.setItem('theme', 'light')")
    page.goto(url)
    figures["light (chosen)"] = contrasts(page)

    for theme, ratios in figures.items():
        assert min(ratios.values()) >= TEXT_CONTRAST, (theme, ratios)
    assert figures["dark (auto)"] == figures["dark (chosen)"]
    assert figures["light (chosen)"] == figures["light"]
    assert figures["dark (auto)"]["spasms"] != figures["light"]["spasms"]
    assert violations == []


def test_a_patient_with_logs_but_none_in_the_last_year_is_told_so(make_staff, page, today):
    patient = PatientFactory()
    followups.assessment_record(
        patient=patient, assessed_on=today - days(500), spasms_per_day=Decimal("12"), cohen_albert_grade=2
    )
    log_in(page, make_staff(Role.CLINICIAN))

    page.goto(reverse("admin:patients_patient_page", args=[patient.pk]) + "?chart=year")

    expect(page.locator('[data-test="chart-range-empty"]')).to_have_text("No symptom log in this range.")
    expect(page.locator('[data-test="recovery-chart"]')).to_have_count(0)
    page.click('[data-test="chart-range"][data-range="all"]')
    expect(page.locator('[data-test="chart-spasms"]')).to_have_count(1)
