"""The staff panel in a real browser: Debian's Chromium, headless, driven by Playwright (issue 6, item 6).

The server is pytest-django's live server on the test database; the data are committed
(transactional tests), so what the browser shows is what the services stored. Each step checks
the page the way a member of staff would read it, then the rows behind it. Screenshots land in
``test-artifacts/browser/``.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from clinic.roles import Role
from followups import services as followups
from followups.codes import OutcomeCategory, ReminderKind, ReminderStatus, VisitStatus
from followups.models import PatientFlag, Reminder, TreatmentOutcome, Visit
from tests.admin.conftest import CLINICAL_MARKERS, LOGS, at_clinic, days, log_in, screenshot

# The migrations' rows come back before the record is planted: an earlier transactional test
# emptied every table.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_defaults"),
]


def local(when) -> str:
    """A time as the admin writes it (clinic time zone, to the minute)."""
    return timezone.localtime(when).strftime("%Y-%m-%d %H:%M")


def open_patient_page(page, patient) -> None:
    """From the patient list, the way staff get there: search the MRN, open the patient by name."""
    page.goto("/admin/patients/patient/")
    page.fill("#searchbar", patient.mrn)
    page.press("#searchbar", "Enter")
    page.click(f'[data-test="row-patient-{patient.pk}"]')
    expect(page.locator('[data-test="patient-page"]')).to_be_visible()


def test_a_clinician_follows_a_patient_from_the_dashboard_to_a_rescheduled_visit(
    planted, make_staff, browser_page, today
):
    page, patient, course = browser_page, planted["patient"], planted["course"]
    followups.visit_create(
        patient=patient, purpose="Check", scheduled_for=at_clinic(today + days(3)), status=VisitStatus.PLANNED
    )
    log_in(page, make_staff(Role.CLINICIAN))

    # The dashboard: each flag the patient carries is a count of one, linking to the patient.
    expect(page.locator('[data-test="dashboard"]')).to_be_visible()
    flags = list(PatientFlag.objects.filter(patient=patient).values_list("code", flat=True))
    assert flags, "the planted record raises flags"
    for code in flags:
        expect(page.locator(f'[data-test="dashboard-flag-{code}"]')).to_have_attribute("data-count", "1")
    week = Visit.objects.filter(
        status__in=(VisitStatus.PLANNED, VisitStatus.BOOKED),
        scheduled_for__date__gte=today,
        scheduled_for__date__lte=today + timedelta(days=7),
    ).count()
    assert week >= 1
    expect(page.locator('[data-test="dashboard-visits-week"]')).to_have_attribute("data-count", str(week))
    screenshot(page, "clinician-1-dashboard")
    page.click(f'[data-test="dashboard-flag-{flags[0]}"]')
    expect(page.locator("#result_list")).to_contain_text(patient.mrn)

    # The patient page and its recovery chart: one point per symptom log, a mark per treatment.
    open_patient_page(page, patient)
    chart = page.locator('[data-test="recovery-chart"]')
    expect(chart).to_be_visible()
    points = chart.locator('[data-test="chart-spasms"]')
    expect(points).to_have_count(len(LOGS))
    drawn = {Decimal(points.nth(i).get_attribute("data-value")) for i in range(len(LOGS))}
    assert drawn == {Decimal(spasms) for spasms, _ in LOGS.values()}
    grades = chart.locator('[data-test="chart-grade"]')
    assert sorted(int(grades.nth(i).get_attribute("data-value")) for i in range(len(LOGS))) == sorted(
        grade for _, grade in LOGS.values()
    )
    marks = chart.locator('[data-test="chart-treatment"]')
    assert {marks.nth(i).get_attribute("data-date") for i in range(marks.count())} == {
        planted["toxin"].started_on.isoformat(),
        course.started_on.isoformat(),
    }
    screenshot(page, "clinician-2-patient-page")
    screenshot(page, "clinician-3-recovery-chart", element=page.locator('[data-test="patient-chart"]'))

    # An assessment recorded at the next visit: the visit is done and the outcome turns to cured.
    outcome = page.locator(f'[data-test="outcome-{course.pk}"] [data-test="outcome-category"]')
    expect(outcome).to_have_attribute("data-category", OutcomeCategory.IMPROVED)
    visit = patient.visits.filter(status=VisitStatus.PLANNED).order_by("scheduled_for").first()
    page.click(f'[data-test="visit-{visit.pk}-assess"]')
    page.fill("#id_spasms_per_day", "0")
    page.select_option("#id_cohen_albert_grade", "0")
    page.click("input[name=_save]")
    expect(page.locator('[data-test="patient-page"]')).to_be_visible()
    expect(outcome).to_have_attribute("data-category", OutcomeCategory.CURED)
    expect(page.locator(f"#visit-{visit.pk}")).to_have_attribute("data-status", VisitStatus.COMPLETED)
    assert TreatmentOutcome.objects.get(treatment=course).category == OutcomeCategory.CURED
    screenshot(page, "clinician-4-assessment-recorded")

    # A visit booked, then rescheduled: its reminders follow the new time, the old ones are cancelled.
    later = timezone.now() + timedelta(days=9)  # both reminders still ahead after the moves
    target = (
        patient.visits.filter(status=VisitStatus.PLANNED, scheduled_for__gte=later)
        .order_by("scheduled_for")
        .first()
    )
    first = timezone.localtime(target.scheduled_for).replace(hour=9, minute=30)
    second = first + timedelta(days=3, hours=5)
    for when in (first, second):
        page.locator(f'[data-test="visit-{target.pk}-menu"] > summary').click()  # the row's actions menu
        form = page.locator(f'[data-test="visit-{target.pk}-book"]')
        form.locator("input[type=datetime-local]").fill(when.strftime("%Y-%m-%dT%H:%M"))
        form.locator("button[type=submit]").click()
        expect(page.locator(f"#visit-{target.pk}")).to_have_attribute("data-status", VisitStatus.BOOKED)
        expect(page.locator(f"#visit-{target.pk} td").first).to_have_text(local(when))

    rows = f'tr[data-test="reminder"][data-visit="{target.pk}"]'
    pending = page.locator(f'{rows}[data-status="{ReminderStatus.PENDING}"]')
    expect(pending).to_have_count(2)
    for i in range(2):
        expect(pending.nth(i).locator("td").first).to_have_text(local(second))
    # The reminders the reschedule cancelled are folded away with the skipped ones; unfolded, they show.
    page.locator('[data-test="reminders-quiet"] > summary').click()
    cancelled = page.locator(f'{rows}[data-status="{ReminderStatus.CANCELLED}"]')
    assert {cancelled.nth(i).locator("td").first.inner_text() for i in range(cancelled.count())} >= {
        local(first)
    }
    stored = Reminder.objects.filter(visit=target, status=ReminderStatus.PENDING)
    assert sorted((r.kind, r.visit_time) for r in stored) == [
        (ReminderKind.VISIT_1D, second),
        (ReminderKind.VISIT_7D, second),
    ]
    screenshot(page, "clinician-5-visit-rescheduled")


def test_the_front_desk_sees_contact_visits_and_reminders_and_nothing_clinical(
    planted, make_staff, browser_page
):
    page, patient = browser_page, planted["patient"]
    log_in(page, make_staff(Role.FRONT_DESK))

    # The home page offers no clinical list, and no flag counts.
    nav = page.locator("#content-main")
    for section in ("Diagnoses", "Treatments", "Assessments", "Imaging studies", "Patient flags"):
        expect(nav.get_by_role("link", name=section, exact=True)).to_have_count(0)
    expect(page.locator('[data-test="dashboard-flags"]')).to_have_count(0)
    screenshot(page, "front-desk-1-dashboard")

    open_patient_page(page, patient)
    expect(page.locator('[data-test="patient-demographics"]')).to_contain_text(patient.email)
    expect(page.locator('[data-test="patient-visits"] tr[data-test="visit"]').first).to_be_visible()
    expect(page.locator('[data-test="patient-reminders"] tr[data-test="reminder"]').first).to_be_visible()
    text = page.locator("body").inner_text()
    html = page.content()
    shown = [marker for marker in CLINICAL_MARKERS if marker in text or marker in html]
    assert shown == []
    screenshot(page, "front-desk-2-patient-page")

    # Typing a clinical list's address is refused too.
    response = page.goto(f"/admin/patients/diagnosis/{planted['diagnosis'].pk}/change/")
    assert response.status == 403
