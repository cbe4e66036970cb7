"""Booking and the clinic's calendar in a real browser (issue 13): Debian's Chromium, headless, on a
laptop-sized screen (1366x900), driven by Playwright against the live server.

The front desk books a planned visit from the patient page by picking a suggested slot, meets a
slot taken meanwhile, and books a free time outside the window by confirming it; a nurse reads the
week, cancels a session for a day, and follows a patient from the calendar to their page. Each
step is checked as staff read it, then in the rows behind it. Screenshots land in
``test-artifacts/browser/``.
"""

import pytest
from playwright.sync_api import expect

from clinic.roles import Role
from followups.codes import ReminderKind, ReminderStatus, VisitKind, VisitStatus
from followups.models import ClinicSession, Reminder, SessionTemplate, Slot, Visit
from followups.session_calendar import week_start
from followups.visit_moves import visit_move
from tests.admin.conftest import at_clinic, days, log_in, screenshot, session_template
from tests.factories import PatientFactory

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def staff_page(chromium, live_server, seeded_defaults):
    """A fresh browser context on a 1366x900 screen; the clinic starts without session templates
    (the seeded default week is removed), so every session on screen is the test's own."""
    SessionTemplate.objects.all().delete()
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


def planned_visit(patient, on, purpose="Review") -> Visit:
    return Visit.objects.create(
        patient=patient,
        purpose=purpose,
        visit_kind=VisitKind.REVIEW,
        scheduled_for=at_clinic(on),
        window_start=on - days(2),
        window_end=on + days(2),
        status=VisitStatus.PLANNED,
        source="manual",
    )


def take(slot) -> Visit:
    """Another patient books ``slot``."""
    return visit_move(
        visit=planned_visit(PatientFactory(), slot.session.on), to=VisitStatus.BOOKED, slot=slot
    )


def test_the_front_desk_books_a_suggested_slot_from_the_patient_page(staff_page, make_staff, today):
    page = staff_page
    on = today + days(10)
    session = session_template(on=on, label="Review clinic (room 1)").sessions.get(on=on)
    first, second, third = session.slots.order_by("starts_at")
    take(first)
    patient = PatientFactory(family_name="Lindqvist", email_reminders=True)
    visit = planned_visit(patient, on)
    log_in(page, make_staff(Role.FRONT_DESK))

    # The visit's slots: the two still free inside its window, with their places.
    page.goto(f"/admin/patients/patient/{patient.pk}/page/")
    page.click(f'[data-test="visit-{visit.pk}-choose-slot"]')
    panel = page.locator(f'[data-test="visit-{visit.pk}-slots"]')
    expect(panel).to_be_visible()
    offers = panel.locator('[data-test="slot-offer"]')
    expect(offers).to_have_count(2)
    assert [offers.nth(i).get_attribute("data-slot") for i in range(2)] == [str(second.pk), str(third.pk)]
    expect(offers.nth(0)).to_contain_text("09:20")
    expect(offers.nth(0)).to_contain_text("Review clinic (room 1)")
    expect(panel.locator('[data-test="slot-outside"]')).to_have_count(0)
    screenshot(page, "booking-1-suggested-slots")

    # Booking the 09:20 slot: back on the page at the visit, booked, with its session.
    offers.nth(0).get_by_role("button", name="Book").click()
    page.wait_for_url(f"**/page/#visit-{visit.pk}")
    expect(page.locator(".messagelist .success")).to_contain_text("Review: booked for")
    row = page.locator(f"#visit-{visit.pk}")
    expect(row).to_have_attribute("data-status", VisitStatus.BOOKED)
    expect(row.locator(f'[data-test="visit-{visit.pk}-session"]')).to_have_text("Review clinic (room 1)")
    visit.refresh_from_db()
    assert (visit.slot_id, visit.scheduled_for) == (second.pk, second.starts_at)
    assert Slot.objects.get(pk=second.pk).booked == 1
    assert {r.kind for r in Reminder.objects.filter(visit=visit, status=ReminderStatus.PENDING)} >= {
        ReminderKind.VISIT_1D,
        ReminderKind.VISIT_7D,
    }
    screenshot(page, "booking-2-slot-booked")

    # A second visit: its last free slot is taken by someone else while the page is open.
    other = planned_visit(patient, on, purpose="Second review")
    page.goto(f"/admin/patients/patient/{patient.pk}/page/?book={other.pk}#visit-{other.pk}-slots")
    last = page.locator(f'[data-test="visit-{other.pk}-slots"] [data-test="slot-offer"]')
    expect(last).to_have_count(1)
    take(third)
    last.get_by_role("button", name="Book").click()
    expect(page.locator(".messagelist .error")).to_have_text(
        "Not booked: This slot has just been taken: choose another."
    )
    # The slots are offered afresh: none is free inside the window, so the next week's are,
    # each marked outside it.
    fresh = page.locator(f'[data-test="visit-{other.pk}-slots"]')
    expect(fresh.locator('[data-test="slots-outside-note"]')).to_be_visible()
    next_week = session.template.sessions.get(on=on + days(7)).slots.order_by("starts_at").first()
    expect(fresh.locator('[data-test="slot-offer"]').first).to_have_attribute("data-slot", str(next_week.pk))
    offered = fresh.locator('[data-test="slot-offer"]').count()
    assert offered > 0
    expect(fresh.locator('[data-test="slot-offer"][data-inside="no"]')).to_have_count(offered)
    expect(fresh.locator('[data-test="slot-outside"]')).to_have_count(offered)
    expect(fresh.locator('[data-test="slot-outside"]').first).to_have_text("outside the window")
    assert Visit.objects.get(pk=other.pk).status == VisitStatus.PLANNED
    screenshot(page, "booking-3-slot-taken")

    # A free time outside the window: refused until confirmed with the checkbox.
    outside = on + days(5)
    menu = page.locator(f'[data-test="visit-{other.pk}-menu"]')
    if menu.get_attribute("open") is None:
        menu.locator("summary").click()
    form = page.locator(f'[data-test="visit-{other.pk}-book"]')
    form.locator("input[type=datetime-local]").fill(f"{outside.isoformat()}T16:30")
    form.get_by_role("button", name="Book").click()
    expect(page.locator('[data-test="visit-act-book"] .errorlist')).to_contain_text(
        "is outside the visit's window"
    )
    screenshot(page, "booking-4-outside-window-asks")
    act = page.locator('[data-test="visit-act-book"]')
    act.locator("input[name=book-confirm_outside_window]").check()
    act.locator("input[type=submit]").click()
    page.wait_for_url(f"**/page/#visit-{other.pk}")
    expect(page.locator(f"#visit-{other.pk}")).to_have_attribute("data-status", VisitStatus.BOOKED)
    other.refresh_from_db()
    assert (other.slot_id, other.scheduled_for) == (None, at_clinic(outside, 16).replace(minute=30))


def test_a_nurse_reads_the_week_cancels_a_session_and_follows_a_patient(staff_page, make_staff, today):
    page = staff_page
    monday = week_start(today) + days(7)
    review = session_template(on=monday, label="Review clinic (room 1)").sessions.get(on=monday)
    injection = session_template(
        on=monday + days(2), kinds=(VisitKind.INJECTION,), label="Injection clinic (room 2)", capacity=2
    ).sessions.get(on=monday + days(2))
    patient = PatientFactory(family_name="Moreau", given_name="Claire", email_reminders=True)
    reviewed = take(review.slots.order_by("starts_at").first())
    injected = Visit.objects.create(
        patient=patient,
        purpose="Toxin re-injection",
        visit_kind=VisitKind.INJECTION,
        scheduled_for=at_clinic(monday + days(2)),
        window_start=monday,
        window_end=monday + days(4),
        status=VisitStatus.PLANNED,
        source="manual",
    )
    slot = injection.slots.order_by("starts_at")[1]
    injected = visit_move(visit=injected, to=VisitStatus.BOOKED, slot=slot)
    log_in(page, make_staff(Role.NURSE))

    # From the dashboard to this week, then the next one.
    page.click('[data-test="dashboard-sessions-week"]')
    calendar = page.locator('[data-test="clinic-calendar"]')
    expect(calendar).to_have_attribute("data-first", week_start(today).isoformat())
    page.click('[data-test="calendar-next"]')
    expect(calendar).to_have_attribute("data-first", monday.isoformat())
    expect(page.locator('[data-test="calendar-day"]')).to_have_count(7)
    card = page.locator(f"#session-{injection.pk}")
    expect(card.locator("h3")).to_have_text("Injection clinic (room 2)")
    expect(card.locator('[data-test="session-kinds"]')).to_have_text("Injection clinic")
    expect(card.locator('[data-test="session-hours"]')).to_have_text("09:00–10:00")
    expect(card.locator('[data-test="session-places"]')).to_have_attribute("data-booked", "1")
    expect(card.locator('[data-test="session-places"]')).to_have_attribute("data-free", "5")
    expect(card.get_by_role("link", name="Moreau, Claire")).to_be_visible()
    expect(page.locator(f"#session-{review.pk} [data-test='session-visit']")).to_have_count(1)
    screenshot(page, "calendar-1-week")

    # Cancelling the injection clinic: the page says whose appointment goes, and asks why.
    card.locator('[data-test="session-cancel"]').click()
    confirm = page.locator('[data-test="session-cancel-form"]')
    expect(confirm.locator('[data-test="session-cancel-booked"]')).to_contain_text("Moreau, Claire")
    page.click('[data-test="session-cancel-confirm"]')
    expect(page.locator(".errorlist")).to_contain_text("Say why the session is cancelled.")
    assert not ClinicSession.objects.get(pk=injection.pk).cancelled
    page.fill("#id_reason", "Injector on leave")
    screenshot(page, "calendar-2-cancel-asks-why")
    page.click('[data-test="session-cancel-confirm"]')

    # Back on the day: the session is cancelled with its reason, its visit gone back to planned.
    expect(page.locator('[data-test="clinic-calendar"]')).to_have_attribute("data-view", "day")
    expect(page.locator(".messagelist .success")).to_contain_text("1 booked visit(s) went back to planned")
    cancelled = page.locator(f"#session-{injection.pk}")
    expect(cancelled).to_have_attribute("data-cancelled", "yes")
    expect(cancelled.locator('[data-test="session-cancelled"]')).to_have_text("Cancelled: Injector on leave")
    screenshot(page, "calendar-3-session-cancelled")
    injected.refresh_from_db()
    assert (injected.status, injected.slot_id) == (VisitStatus.PLANNED, None)
    assert injected.clinic_cancelled_at is not None
    assert Visit.objects.get(pk=reviewed.pk).status == VisitStatus.BOOKED

    # The week shows it cancelled too; a patient's name leads to their page, at the visit.
    page.click('[data-test="calendar-week-view"]')
    expect(page.locator(f"#session-{injection.pk}")).to_have_attribute("data-cancelled", "yes")
    screenshot(page, "calendar-4-week-with-cancelled-session")
    booked_elsewhere = page.locator(f"#session-{review.pk} [data-test='session-visit'] a")
    booked_elsewhere.click()
    page.wait_for_url(f"**/page/#visit-{reviewed.pk}")
    expect(page.locator(f"#visit-{reviewed.pk}")).to_have_attribute("data-status", VisitStatus.BOOKED)
    page.goto(f"/admin/patients/patient/{patient.pk}/page/")
    expect(page.locator(f'[data-test="visit-{injected.pk}-clinic-cancelled"]')).to_be_visible()
