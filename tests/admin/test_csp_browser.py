"""The Content-Security-Policy in a real browser (issue 20): every page staff and patients open runs
with it and Chromium reports no violation: no inline script, no style block without its nonce, no
asset from elsewhere. A violation would mean a page silently missing its script or its styles.
"""

from urllib.parse import urlsplit

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from clinic.roles import Role
from followups.models import Visit
from followups.patient_links import OPT_OUT, booking_url, link_url
from tests.admin.conftest import log_in, screenshot

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_defaults"),
]


def violations_on(page, paths: list[str]) -> dict[str, list[str]]:
    """Each path opened in turn; what Chromium said about the policy on each, if anything."""
    seen: dict[str, list[str]] = {}
    current = {"path": None}
    page.on(
        "console",
        lambda message: (
            seen.setdefault(current["path"], []).append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    for path in paths:
        current["path"] = path
        response = page.goto(path)
        assert response.status < 500, path
        assert "content-security-policy" in response.headers, path
        page.wait_for_load_state("networkidle")
    return seen


def test_the_staff_pages_run_under_the_policy_without_a_violation(planted, make_staff, browser_page):
    patient = planted["patient"]
    visit = Visit.objects.filter(patient=patient).order_by("scheduled_for").first()
    page = browser_page
    log_in(page, make_staff(Role.CLINICIAN))

    seen = violations_on(
        page,
        [
            "/admin/",
            reverse("admin:patients_patient_page", args=[patient.pk]),
            "/admin/patients/patient/",
            "/admin/followups/visit/",
            reverse("admin:followups_visit_act", args=[visit.pk]),
            reverse("admin:followups_clinicsession_week"),
            "/admin/followups/contactattempt/call-list/",
            "/api/docs/",
        ],
    )

    assert seen == {}
    # The pages still look as designed: the patient page's own styles applied (a nonce'd block).
    page.goto(reverse("admin:patients_patient_page", args=[patient.pk]))
    screenshot(page, "csp-patient-page")


def test_the_patient_pages_run_under_the_policy_without_a_violation(planted, browser_page):
    patient = planted["patient"]
    visit = Visit.objects.filter(patient=patient, status="planned").order_by("scheduled_for").first()
    assert visit is not None, "the planted course plans visits"
    paths = ["/p/visit/not-a-valid-link/", urlsplit(link_url(OPT_OUT, patient.uuid)).path]
    paths.append(urlsplit(booking_url(visit)).path)

    assert violations_on(browser_page, paths) == {}


def test_the_login_page_and_the_locked_out_page_run_under_the_policy(make_staff, browser_page):
    user = make_staff(Role.NURSE)
    page = browser_page
    seen = violations_on(page, ["/admin/login/"])
    for _ in range(5):  # the fifth wrong password is answered with the locked-out page
        page.fill("#id_username", user.username)
        page.fill("#id_password", "wrong")
        page.click("input[type=submit]")

    expect(page.locator('[data-test="locked-out"]')).to_be_visible()
    assert seen == {}
    screenshot(page, "login-locked-out")
