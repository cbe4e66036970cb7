"""A clinician keeps the whole record from the patient page, in a real browser at 1280 x 800 (issue 16).

Debian's Chromium, driven by Playwright, on pytest-django's live server: find the patient by phone
and by part of the MRN, record an MVD with a complication and then an assessment, see the visits the
operation planned; a toxin session over the 30-day limit is refused on its form (the running total
says so before saving); archiving asks first and is undone. Every page fits the viewport.
Screenshots land in ``test-artifacts/browser/``.
"""

from decimal import Decimal

import pytest
from playwright.sync_api import expect

from clinic.roles import Role
from followups import services as followups
from followups.codes import VisitStatus
from followups.models import Assessment, Visit
from patients.models import Patient, Treatment
from tests.admin.conftest import at_clinic, days, log_in, screenshot, waiting_patient
from tests.factories import PatientFactory, diagnosis_for, treatment_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_defaults"),
]

VIEWPORT = {"width": 1280, "height": 800}


@pytest.fixture
def page(chromium, live_server):
    context = chromium.new_context(base_url=live_server.url, viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


# The page's width, and any box whose content is wider than the box itself: the admin's lists
# scroll sideways inside their own box, which hides the columns on the right without widening the page.
OVERFLOW = """() => {
  const cut = [];
  for (const box of document.querySelectorAll("#content *:not(.visually-hidden)")) {
    const style = getComputedStyle(box);
    if (["auto", "scroll", "hidden"].includes(style.overflowX) && box.scrollWidth > box.clientWidth + 1) {
      cut.push(`${box.tagName.toLowerCase()}.${box.className}: ${box.scrollWidth} in ${box.clientWidth}`);
    }
  }
  return {page: document.documentElement.scrollWidth, cut};
}"""


def overflow(page) -> dict:
    return page.evaluate(OVERFLOW)


def fits(page, name: str) -> None:
    """Nothing on the page is wider than the window: no column cut off, no sideways scrolling."""
    found = overflow(page)
    assert found["page"] <= VIEWPORT["width"] and not found["cut"], f"{name}: {found}"


@pytest.fixture
def patient(db, today):
    patient = PatientFactory(
        email_reminders=True, phone="+49 30 1234567", mrn="HFS-2026-04711", family_name="Okafor"
    )
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(400))
    # A toxin session ten days ago: the next one may add at most 50 units of the same product.
    treatment_for(
        diagnosis,
        "botulinum_toxin",
        started_on=today - days(10),
        botulinum_toxin={
            "product": "onabotulinumtoxinA",
            "injections": [{"muscle": "orbicularis_oculi", "units": "150"}],
        },
    )
    PatientFactory(phone="+49 40 7654321", mrn="HFS-2025-00001", family_name="Other")
    return patient


def test_a_clinician_finds_a_patient_records_an_mvd_and_an_assessment_and_archives_with_a_way_back(
    page, make_staff, patient, today
):
    log_in(page, make_staff(Role.CLINICIAN))
    fits(page, "the dashboard")

    # Found by the phone as the caller reads it out, from the dashboard's search box.
    page.fill('[data-test="dashboard-search"] input[name="q"]', "+49 (30) 123-4567")
    page.press('[data-test="dashboard-search"] input[name="q"]', "Enter")
    expect(page.locator(f'[data-test="row-patient-{patient.pk}"]')).to_contain_text("Okafor")
    expect(page.get_by_text("HFS-2025-00001")).to_have_count(0)
    # And by the part of the MRN on a letter.
    page.fill("#searchbar", "4711")
    page.press("#searchbar", "Enter")
    expect(page.locator(f'[data-test="row-patient-{patient.pk}"]')).to_contain_text("Okafor")
    expect(page.get_by_text("HFS-2025-00001")).to_have_count(0)
    fits(page, "the patient list")
    screenshot(page, "record-patient-search")
    page.click(f'[data-test="row-patient-{patient.pk}"]')
    expect(page.locator('[data-test="patient-page"]')).to_be_visible()

    # An MVD with its vessel and a complication, recorded from the patient page.
    operated = today - days(12)
    page.click('[data-test="treatment-add-mvd"]')
    page.fill("#id_treatment-started_on", operated.isoformat())
    page.select_option("#id_mvd-technique", "interposition")
    page.check('input[name="mvd-offending_vessels"][value="aica"]')
    page.select_option("#id_complications-0-kind", "transient_facial_palsy")
    page.fill("#id_complications-0-onset_on", (operated + days(2)).isoformat())
    fits(page, "the MVD form")
    screenshot(page, "record-mvd-form")
    page.click('[data-test="treatment-save"]')

    expect(page.locator(".messagelist .success")).to_contain_text("recorded")
    mvd = Treatment.objects.get(patient=patient, kind="mvd")
    row = page.locator(f"#treatment-{mvd.pk}")
    expect(row).to_contain_text("Transient facial palsy")
    planned = Visit.objects.filter(treatment=mvd, status=VisitStatus.PLANNED).count()
    assert planned >= 5
    expect(page.locator('[data-test="visit"][data-status="planned"]')).to_have_count(
        Visit.objects.filter(patient=patient, status=VisitStatus.PLANNED).count()
    )

    # An assessment, its grade picked by the scale's words, back on the patient page.
    page.click('[data-test="assessment-add"]')
    page.fill("#id_spasms_per_day", "2")
    page.select_option(
        "#id_cohen_albert_grade",
        label="1 — increased blinking or slight twitching only with external stimuli",
    )
    fits(page, "the assessment form")
    screenshot(page, "record-assessment-form")
    page.click('input[name="_save"]')
    expect(page.locator('[data-test="patient-page"]')).to_be_visible()
    assessment = Assessment.objects.get(patient=patient)
    assert (assessment.cohen_albert_grade, assessment.spasms_per_day) == (1, Decimal("2"))
    fits(page, "the patient page")
    screenshot(page, "record-patient-page")

    # A toxin session that would make 210 units in 30 days: the running total warns, the save refuses.
    page.click('[data-test="treatment-add-botulinum_toxin"]')
    page.fill("#id_botulinum_toxin-units_orbicularis_oculi", "40")
    page.fill("#id_botulinum_toxin-units_zygomaticus", "20")
    total = page.locator('[data-test="toxin-total"]')
    expect(total).to_contain_text("Total of this session: 60 U")
    expect(total).to_contain_text("210 U within 30 days")
    expect(total).to_have_class("hfs-total hfs-over")
    page.click('[data-test="treatment-save"]')
    expect(page.locator('[data-test="toxin-error"]')).to_contain_text("at most 200 units")
    # The units typed are still there to correct.
    expect(page.locator("#id_botulinum_toxin-units_zygomaticus")).to_have_value("20")
    screenshot(page, "record-toxin-refused")
    assert Treatment.objects.filter(patient=patient, kind="botulinum_toxin").count() == 1
    page.fill("#id_botulinum_toxin-units_orbicularis_oculi", "30")
    expect(total).not_to_have_class("hfs-total hfs-over")
    page.click('[data-test="crumb-patient"]')

    # Archiving asks first; "No" leaves everything as it was; "Yes" archives; restoring undoes it.
    page.click("#patient-archive")
    expect(page.locator('[data-test="patient-archive-confirm"]')).to_contain_text("can restore them")
    screenshot(page, "record-archive-confirm")
    page.click('[data-test="archive-cancel"]')
    assert not Patient.objects.get(pk=patient.pk).archived
    page.click("#patient-archive")
    page.click('[data-test="archive-confirm"]')
    expect(page.locator('[data-test="archived"]')).to_contain_text("yes")
    assert not Visit.objects.filter(patient=patient, status=VisitStatus.PLANNED).exists()
    page.click("#patient-restore")
    expect(page.locator('[data-test="archived"]')).to_contain_text("no")
    assert Visit.objects.filter(treatment=mvd, status=VisitStatus.PLANNED).count() == planned


# Each list, and whether its rows name the patient with the phone to call (the worklists of visits,
# flags and reminders, and the patient list); the rest are reached from the patient page.
LISTS = {
    "/admin/": False,
    "/admin/patients/patient/": True,
    "/admin/followups/visit/?worklist=overdue": True,
    "/admin/followups/visit/?worklist=week": True,
    "/admin/followups/visit/": True,
    "/admin/followups/patientflag/": True,
    "/admin/followups/reminder/": True,
    "/admin/followups/assessment/": False,
    "/admin/followups/contactattempt/call-list/": False,
    "/admin/followups/contactattempt/lost/": False,
    "/admin/patients/treatment/": False,
    "/admin/patients/diagnosis/": False,
}


def test_no_list_is_wider_than_the_window_and_each_worklist_row_names_the_patient_and_phone(
    page, make_staff, planted, today
):
    patient = planted["patient"]
    # Rows for the overdue list and the call and lost lists: a patient whose review window closed
    # 40 days ago without a booking (the planted patient attends, so is not overdue).
    waiting_patient("Adeyemi", 40, today)
    followups.visit_create(patient=patient, purpose="Check", scheduled_for=at_clinic(today + days(3)))
    log_in(page, make_staff(Role.CLINICIAN))
    wide, unnamed = {}, []
    for url, names_patients in LISTS.items():
        page.goto(url)
        found = overflow(page)
        if found["page"] > VIEWPORT["width"] or found["cut"]:
            wide[url] = found
        if names_patients:
            rows = page.locator("#result_list tbody tr")
            assert rows.count(), f"{url} has no rows to check"
            for row in rows.all():
                named = row.locator('[data-test^="row-patient-"]').count() == 1
                if not (named and row.locator('a[href^="tel:+49"]').count() == 1):
                    unnamed.append(url)
                    break
        screenshot(page, "list-" + url.strip("/").replace("/", "-").replace("?", "-").replace("=", "-"))
    assert wide == {}
    assert unnamed == []
