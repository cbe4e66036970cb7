"""The front desk works the call list in a real browser (issue 14): Debian's Chromium, headless, on a
laptop-sized screen (1366x900), driven by Playwright against the live server.

Three patients wait on the list; the first does not answer, the second asks to be called in a
fortnight, the third agrees to come and is booked into one of the free slots the row offers. The
list then changes as DOMAIN.md section 9 says: the first stays with the attempt shown, the other
two are gone. Screenshots land in ``test-artifacts/browser/``.
"""

import pytest
from django.utils import formats, timezone
from playwright.sync_api import expect

from clinic.roles import Role
from followups.codes import ContactOutcome, VisitStatus
from followups.models import ContactAttempt, SessionTemplate, Slot, Visit
from tests.admin.conftest import days, log_in, screenshot, session_template, waiting_patient

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

WIDTH, HEIGHT = 1366, 900


@pytest.fixture
def staff_page(chromium, live_server, seeded_defaults):
    """A fresh browser context on a 1366x900 screen; the clinic's only sessions are the test's."""
    SessionTemplate.objects.all().delete()
    context = chromium.new_context(base_url=live_server.url, viewport={"width": WIDTH, "height": HEIGHT})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def test_the_front_desk_works_the_call_list_for_three_patients(staff_page, make_staff, today):
    page = staff_page
    (aalto, aalto_visit), (berg, berg_visit), (castro, castro_visit) = (
        waiting_patient("Aalto", 30, today),
        waiting_patient("Berg", 20, today),
        waiting_patient("Castro", 10, today),
    )
    on = today + days(5)
    session = session_template(on=on, label="Review clinic (room 1)").sessions.get(on=on)
    first_slot = session.slots.order_by("starts_at").first()
    log_in(page, make_staff(Role.FRONT_DESK))

    # From the dashboard's tile to the list: three rows, the longest overdue first.
    tile = page.locator('[data-test="dashboard-calls-call_list"]')
    expect(tile).to_have_attribute("data-count", "3")
    tile.click()
    rows = page.locator('[data-test="call-row"]')
    expect(rows).to_have_count(3)
    assert [rows.nth(i).get_attribute("data-patient") for i in range(3)] == [
        str(aalto.pk),
        str(berg.pk),
        str(castro.pk),
    ]
    # On a laptop screen the first row's phone link and its whole form are in view, nothing clipped.
    phone = page.locator(f"#row-{aalto.pk} [data-test='call-phone']")
    expect(phone).to_be_visible()
    expect(phone).to_have_attribute("href", "tel:+49305500" + "30")
    form = page.locator(f"#attempt-{aalto.pk}")
    expect(form).to_be_visible()
    for element in (phone, form, form.locator('[data-test="attempt-record"]')):
        expect(element).to_be_in_viewport()
        box = element.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= WIDTH, box
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH
    expect(page.locator("#content-main")).not_to_contain_text("Toxin")
    screenshot(page, "call-list-1-three-to-call")

    # Aalto does not answer: recorded, back at the next row, Aalto still on the list.
    form.locator(f'[name="row{aalto.pk}-outcome"]').select_option(ContactOutcome.NO_ANSWER)
    form.locator(f'[name="row{aalto.pk}-note"]').fill("Rang 8 times")
    form.locator('[data-test="attempt-record"]').click()
    page.wait_for_url(f"**/call-list/?page=1#row-{berg.pk}")
    expect(page.locator(".messagelist .success")).to_contain_text("No answer: recorded, stays on the list.")
    expect(rows).to_have_count(3)
    expect(page.locator(f"#row-{aalto.pk} [data-test='call-last-attempt']")).to_contain_text(
        "Phone: No answer"
    )

    # Berg asks to be called in a fortnight: hidden until that day.
    later = today + days(14)
    berg_form = page.locator(f"#attempt-{berg.pk}")
    berg_form.locator(f'[name="row{berg.pk}-outcome"]').select_option(ContactOutcome.CALL_LATER)
    berg_form.locator(f'[name="row{berg.pk}-remind_on"]').fill(later.isoformat())
    berg_form.locator('[data-test="attempt-record"]').click()
    page.wait_for_url(f"**/call-list/?page=1#row-{castro.pk}")
    expect(page.locator(".messagelist .success")).to_contain_text(
        f"Call later: hidden until {formats.date_format(later, 'j M Y')}."
    )
    expect(rows).to_have_count(2)
    expect(page.locator(f"#row-{berg.pk}")).to_have_count(0)
    screenshot(page, "call-list-2-after-two-calls")

    # Castro agrees: the row's free slots (after the closed window, marked so), the first one booked.
    page.locator(f"#attempt-{castro.pk} [data-test='attempt-show-slots']").click()
    offers = page.locator(f"#attempt-{castro.pk} [data-test='attempt-slot']")
    expect(offers.first).to_be_visible()
    expect(offers.first).to_have_attribute("data-slot", str(first_slot.pk))
    expect(offers.first).to_contain_text("09:00 · Review clinic (room 1)")
    expect(offers.first).to_contain_text("outside the window")
    castro_form = page.locator(f"#attempt-{castro.pk}")
    expect(castro_form.locator(f'[name="row{castro.pk}-outcome"]')).to_have_value(
        ContactOutcome.AGREED_TO_VISIT
    )
    screenshot(page, "call-list-3-slots-offered")
    offers.first.locator("input[type=radio]").check()
    castro_form.locator('[data-test="attempt-record"]').click()
    when = formats.date_format(timezone.localtime(first_slot.starts_at), "D j M H:i")
    expect(page.locator(".messagelist .success")).to_contain_text(
        f"Booked for {when} (Review clinic (room 1))."
    )

    # The list now: Aalto alone, with the unanswered call.
    expect(rows).to_have_count(1)
    expect(rows.first).to_have_attribute("data-patient", str(aalto.pk))
    expect(rows.first.locator("[data-test='call-last-attempt']")).to_contain_text("Phone: No answer")
    screenshot(page, "call-list-4-one-left")

    # And in the rows behind the page.
    assert list(ContactAttempt.objects.order_by("at").values_list("patient", "outcome", "remind_on")) == [
        (aalto.pk, ContactOutcome.NO_ANSWER, None),
        (berg.pk, ContactOutcome.CALL_LATER, later),
        (castro.pk, ContactOutcome.AGREED_TO_VISIT, None),
    ]
    castro_visit.refresh_from_db()
    assert (castro_visit.status, castro_visit.slot_id) == (VisitStatus.BOOKED, first_slot.pk)
    assert Slot.objects.get(pk=first_slot.pk).booked == 1
    assert (
        Visit.objects.get(pk=aalto_visit.pk).status == Visit.objects.get(pk=berg_visit.pk).status == "planned"
    )

    # Aalto's page tells the story of the calls.
    rows.first.locator('[data-test="call-patient"]').click()
    history = page.locator('[data-test="patient-contacts"] [data-test="contact-attempt"]')
    expect(history).to_have_count(1)
    expect(history.first).to_contain_text("Rang 8 times")
