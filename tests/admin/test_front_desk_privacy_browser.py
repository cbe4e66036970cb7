"""In a real browser (Debian's Chromium, headless): the front desk works the patient page and the visit
list by the kind of clinic each visit needs, and no purpose naming a treatment reaches the screen or
the page's source (issue 20)."""

import pytest
from playwright.sync_api import expect

from clinic.roles import Role
from patients import codes
from tests.admin.conftest import days, log_in, screenshot
from tests.admin.test_front_desk_panel_privacy import PURPOSES
from tests.factories import treatment_for

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_defaults"),
]


def purposes_on(page) -> list[str]:
    text, html = page.locator("body").inner_text(), page.content()
    return [word for word in PURPOSES if word in text or word in html]


def test_the_front_desk_reads_kinds_of_clinic_and_never_a_purpose(planted, make_staff, browser_page, today):
    page, patient = browser_page, planted["patient"]
    toxin = treatment_for(
        planted["diagnosis"], codes.TreatmentKind.BOTULINUM_TOXIN, started_on=today - days(10)
    )
    reinjection = patient.visits.get(treatment=toxin, purpose__startswith="Re-injection")
    log_in(page, make_staff(Role.FRONT_DESK))

    page.goto(f"/admin/patients/patient/{patient.pk}/page/")
    row = page.locator(f'[data-test="visit-{reinjection.pk}-named"]')
    expect(row).to_have_text("Injection clinic")
    expect(page.locator('[data-test="patient-timeline"]')).to_contain_text("Visit planned: Injection clinic")
    assert purposes_on(page) == []
    screenshot(page, "front-desk-privacy-1-patient-page")

    page.goto(f"/admin/followups/visit/?q={patient.mrn}")
    listed = page.locator(
        "#result_list tbody tr", has=page.locator(f'[data-test="visit-actions-{reinjection.pk}"]')
    )
    expect(listed).to_contain_text("Injection clinic")
    assert purposes_on(page) == []
    screenshot(page, "front-desk-privacy-2-visit-list")

    # The row's next step books it on the patient page; the visit's own actions are a page apart.
    expect(listed.locator(f'[data-test="visit-actions-{reinjection.pk}"]')).to_have_text("Book")
    page.goto(f"/admin/followups/visit/{reinjection.pk}/act/")
    expect(page.locator('[data-test="visit-act-named"]')).to_contain_text("Injection clinic")
    assert purposes_on(page) == []


def test_a_clinician_reads_the_same_pages_with_their_purposes(planted, make_staff, browser_page, today):
    """The scan above can fail: the same pages show a clinician the purposes it looks for."""
    page, patient = browser_page, planted["patient"]
    treatment_for(planted["diagnosis"], codes.TreatmentKind.BOTULINUM_TOXIN, started_on=today - days(10))
    log_in(page, make_staff(Role.CLINICIAN))

    page.goto(f"/admin/patients/patient/{patient.pk}/page/")
    expect(page.locator('[data-test="patient-visits"]')).to_contain_text("Re-injection visit (day 84)")
    assert set(purposes_on(page)) >= {
        "Re-injection",
        "Efficacy and side-effect",
        "Blood count",
        "Medication review",
    }

    page.goto(f"/admin/followups/visit/?q={patient.mrn}")
    expect(page.locator("#result_list")).to_contain_text("Re-injection visit (day 84)")
