"""A booking link on a phone: Debian's Chromium, headless, driven by Playwright, scripts switched
off, on a 390 x 844 screen. The patient opens the link from the e-mail, picks a time and sees the
confirmation; the rows behind it are checked after. Screenshots land in test-artifacts/browser/.
"""

import pytest
from django.conf import settings
from playwright.sync_api import expect

from followups.codes import VisitStatus
from tests.admin.conftest import chromium, screenshot  # noqa: F401 (the browser fixture)
from tests.patient_pages.conftest import assert_nothing_clinical, booking_path, inside, stored

# The migrations' rows come back before the visit is planned: an earlier transactional test
# emptied every table.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_defaults"),
]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def phone_page(chromium, live_server):  # noqa: F811
    """A phone-sized browser with no script at all: the pages must work without one."""
    context = chromium.new_context(
        base_url=live_server.url, viewport=PHONE, is_mobile=True, has_touch=True, java_script_enabled=False
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def assert_fits_the_screen(page, width: int = PHONE["width"]) -> None:
    for part in ("header", "main", "footer"):
        box = page.locator(part).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, f"{part} is wider than the phone"


def test_a_patient_books_a_time_from_the_link_on_a_phone(phone_page, planned):
    page, path = phone_page, booking_path(planned)
    slot = inside(planned)[1]

    page.goto(path)
    expect(page.get_by_role("heading", name="Book your follow-up visit")).to_be_visible()
    expect(page.locator("input[name=slot]")).to_have_count(len(inside(planned)))
    # The stylesheet came from the project (the times are laid out as a grid, not a list).
    assert page.locator(".times").first.evaluate("e => getComputedStyle(e).display") == "grid"
    assert_fits_the_screen(page)
    assert_nothing_clinical(page.content(), planned)
    screenshot(page, "patient-booking-1-free-times")
    page.set_viewport_size({"width": 360, "height": 740})  # the narrowest phones in common use
    assert_fits_the_screen(page, 360)
    page.set_viewport_size(PHONE)

    page.locator(f'input[name=slot][value="{slot.uuid}"]').check()
    screenshot(page, "patient-booking-2-time-chosen")
    page.get_by_role("button", name="Book this time").click()

    page.wait_for_url(f"**{path}done/")
    expect(page.get_by_role("heading", name="Your appointment is booked")).to_be_visible()
    expect(page.locator('[data-test="appointment"]')).to_contain_text("Follow-up visit")
    expect(page.locator("footer")).to_contain_text(settings.CLINIC_PHONE)
    assert_fits_the_screen(page)
    assert_nothing_clinical(page.content(), planned)
    screenshot(page, "patient-booking-3-confirmed")

    visit = stored(planned)
    assert (visit.status, visit.slot_id, visit.scheduled_for) == (VisitStatus.BOOKED, slot.pk, slot.starts_at)

    # The same link later: the appointment, with the ways to move or cancel it.
    page.goto(path)
    expect(page.get_by_role("link", name="Choose another time")).to_be_visible()
    expect(page.get_by_role("link", name="Cancel this booking")).to_be_visible()
    screenshot(page, "patient-booking-4-appointment")

    # Another time, then no booking at all: both from the same link, each confirmed.
    page.get_by_role("link", name="Choose another time").click()
    expect(page.get_by_role("heading", name="Choose another time")).to_be_visible()
    later = inside(planned)[-1]
    page.locator(f'input[name=slot][value="{later.uuid}"]').check()
    screenshot(page, "patient-booking-5-another-time")
    page.get_by_role("button", name="Move my appointment to this time").click()
    page.wait_for_url(f"**{path}done/")
    assert stored(planned).slot_id == later.pk

    page.get_by_role("link", name="Cancel this booking").click()
    expect(page.get_by_role("heading", name="Cancel your appointment?")).to_be_visible()
    screenshot(page, "patient-booking-6-cancel-asked")
    page.get_by_role("button", name="Cancel this booking").click()
    page.wait_for_url(f"**{path}done/")
    expect(page.get_by_role("heading", name="Your booking is cancelled")).to_be_visible()
    assert_fits_the_screen(page)
    screenshot(page, "patient-booking-7-cancelled")
    assert stored(planned).status == VisitStatus.PLANNED
