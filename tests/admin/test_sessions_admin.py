"""Clinic sessions in the staff panel (issue 13, DOMAIN.md section 12): templates written through
their service, the calendar by day and by week, and a session cancelled for a day with its reason.
Whoever books visits keeps the calendar: front desk, nurses and clinicians."""

import re
from datetime import date, timedelta

import pytest
from django.contrib.messages import get_messages

from clinic.models import AuditEvent
from followups.codes import ReminderKind, ReminderStatus, VisitKind, VisitStatus
from followups.models import ClinicSession, Reminder, SessionTemplate, Slot, Visit
from followups.session_calendar import week_start
from followups.visit_moves import visit_move
from tests.admin.conftest import at_clinic, client_for, days, session_template
from tests.factories import PatientFactory

TEMPLATES = "/admin/followups/sessiontemplate/"
WEEK = "/admin/followups/clinicsession/week/"
DAY = "/admin/followups/clinicsession/day/"
WRITERS = ["clinician", "nurse", "front_desk"]


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def cancel_url(session) -> str:
    return f"/admin/followups/clinicsession/{session.pk}/cancel/"


def article(html: str, session) -> str:
    """The part of a calendar page that shows one session."""
    start = html.index(f'id="session-{session.pk}"')
    return html[start : html.index("</article>", start)]


def next_monday(today: date) -> date:
    return week_start(today) + timedelta(days=7)


def booked_visit(patient, slot, *, kind=VisitKind.REVIEW, purpose="Review") -> Visit:
    """A planned visit whose window holds the slot's day, booked into the slot."""
    on = slot.session.on
    visit = Visit.objects.create(
        patient=patient,
        purpose=purpose,
        visit_kind=kind,
        scheduled_for=at_clinic(on),
        window_start=on - days(3),
        window_end=on + days(3),
        status=VisitStatus.PLANNED,
        source="manual",
    )
    return visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot)


def template_form(**changes) -> dict:
    data = {
        "label": "Botulinum clinic (room 4)",
        "weekday": "3",
        "starts_at": "14:00",
        "ends_at": "16:00",
        "slot_minutes": "30",
        "capacity": "2",
        "valid_from": date.today().isoformat(),
        "valid_to": "",
        "visit_kinds": [VisitKind.INJECTION, VisitKind.REVIEW],
    }
    data.update(changes)
    return data


# --- templates ----------------------------------------------------------------------------------


@pytest.mark.parametrize("who", WRITERS)
def test_adding_a_template_generates_its_sessions_and_says_how_many(no_templates, request, who, today):
    client = request.getfixturevalue(who)

    response = client.post(f"{TEMPLATES}add/", template_form(valid_from=today.isoformat()))

    assert response.status_code == 302, response.content.decode()[:3000]
    template = SessionTemplate.objects.get()
    assert (template.label, template.weekday, template.capacity) == ("Botulinum clinic (room 4)", 3, 2)
    assert set(template.kind_rows.values_list("visit_kind", flat=True)) == {"injection", "review"}
    sessions = ClinicSession.objects.filter(template=template)
    assert sessions.count() in (26, 27)
    assert {s.on.weekday() for s in sessions} == {3}
    assert Slot.objects.filter(session__template=template).count() == 4 * sessions.count()
    assert f"Sessions ahead: {sessions.count()} generated, 0 removed." in messages_of(response)


def test_the_form_offers_the_visit_kinds_as_checkboxes_and_the_weekdays_by_name(no_templates, clinician):
    html = clinician.get(f"{TEMPLATES}add/").content.decode()

    for kind in VisitKind.values:
        assert f'type="checkbox" name="visit_kinds" value="{kind}"' in html
    assert '<option value="0">Monday</option>' in html
    assert '<option value="6">Sunday</option>' in html


def test_changing_the_hours_remakes_the_empty_sessions_and_keeps_those_with_bookings(
    no_templates, clinician, today
):
    booked_day = today + days(9)
    template = session_template(on=booked_day, starts="09:00", ends="10:00")
    sessions = ClinicSession.objects.filter(template=template)
    total = sessions.count()
    kept = sessions.get(on=booked_day)
    visit = booked_visit(PatientFactory(), kept.slots.first())
    change_form = clinician.get(f"{TEMPLATES}{template.pk}/change/").content.decode()
    assert re.findall(r'name="visit_kinds" value="(\w+)"[^>]*checked', change_form) == ["review"]
    form = template_form(
        label="Review clinic (room 1)",
        weekday=str(template.weekday),
        starts_at="09:00",
        ends_at="11:00",
        slot_minutes="20",
        capacity="1",
        valid_from=template.valid_from.isoformat(),
        visit_kinds=[VisitKind.REVIEW],
    )

    response = clinician.post(f"{TEMPLATES}{template.pk}/change/", form)

    assert response.status_code == 302, response.content.decode()[:3000]
    assert (
        f"Sessions ahead: {total - 1} generated, {total - 1} removed, 1 with bookings kept as they were: "
        "check their visits in the calendar if the hours changed." in messages_of(response)
    )
    kept.refresh_from_db()
    assert kept.label == "Review clinic (room 1)"
    assert kept.slots.count() == 3  # its slots as they were, the booking in the first
    assert Visit.objects.get(pk=visit.pk).slot.session == kept
    remade = sessions.exclude(pk=kept.pk).first()
    assert remade.slots.count() == 6


def test_a_refused_template_shows_the_service_s_messages_and_writes_nothing(no_templates, clinician):
    response = clinician.post(f"{TEMPLATES}add/", template_form(visit_kinds=[], ends_at="13:00"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert errors["visit_kinds"] == ["Name at least one kind of visit the session serves."]
    assert errors["ends_at"] == ["The session ends after it starts."]
    assert not SessionTemplate.objects.exists()
    assert not ClinicSession.objects.exists()


def test_the_template_list_shows_day_hours_and_kinds(no_templates, front_desk, today):
    session_template(on=next_monday(today), kinds=(VisitKind.POST_OP_CHECK, VisitKind.REVIEW), label="Ward 3")

    html = front_desk.get(TEMPLATES).content.decode()

    assert "Ward 3" in html and "Monday" in html and "09:00–10:00" in html
    assert "Post-operative check, Review" in html


def test_a_template_is_never_deleted_it_ends_with_its_last_day(no_templates, clinician, today):
    template = session_template(on=next_monday(today))

    assert clinician.get(f"{TEMPLATES}{template.pk}/delete/").status_code == 403
    assert "delete_selected" not in clinician.get(TEMPLATES).content.decode()
    assert "deletelink" not in clinician.get(f"{TEMPLATES}{template.pk}/change/").content.decode()


# --- the calendar -------------------------------------------------------------------------------


@pytest.fixture
def clinic_week(no_templates, today):
    """Next week: a review clinic on Monday with one patient booked, an injection clinic on
    Wednesday cancelled for a holiday."""
    monday = next_monday(today)
    review = session_template(on=monday, label="Review clinic (room 1)")
    injection = session_template(
        on=monday + days(2), kinds=(VisitKind.INJECTION,), label="Injection clinic (room 2)", capacity=2
    )
    review_session = review.sessions.get(on=monday)
    patient = PatientFactory(family_name="Okafor", given_name="Adaeze", email_reminders=True)
    visit = booked_visit(patient, review_session.slots.order_by("starts_at")[1])
    injection_session = injection.sessions.get(on=monday + days(2))
    ClinicSession.objects.filter(pk=injection_session.pk).update(
        cancelled=True, cancel_reason="Public holiday"
    )
    return {
        "monday": monday,
        "review": review_session,
        "injection": injection_session,
        "visit": visit,
        "patient": patient,
    }


def test_the_week_view_shows_each_session_with_its_hours_kinds_and_places(clinic_week, front_desk):
    monday = clinic_week["monday"]

    response = front_desk.get(f"{WEEK}?on={(monday + days(4)).isoformat()}")

    assert response.status_code == 200
    html = response.content.decode()
    assert re.findall(r'data-test="calendar-day" data-date="([\d-]+)"', html) == [
        (monday + days(n)).isoformat() for n in range(7)
    ]
    review = article(html, clinic_week["review"])
    assert "Review clinic (room 1)" in review and "09:00–10:00" in review and "Review" in review
    assert 'data-booked="1" data-free="2"' in review
    visit, patient = clinic_week["visit"], clinic_week["patient"]
    assert f'href="/admin/patients/patient/{patient.pk}/page/#visit-{visit.pk}">Okafor, Adaeze</a>' in review
    assert "<time>09:20</time>" in review


def test_a_cancelled_session_is_shown_as_cancelled_with_its_reason(clinic_week, front_desk):
    html = front_desk.get(f"{WEEK}?on={clinic_week['monday'].isoformat()}").content.decode()

    injection = article(html, clinic_week["injection"])
    assert 'data-cancelled="yes"' in injection
    assert "Cancelled: Public holiday" in injection
    assert 'data-test="session-places"' not in injection
    assert 'data-test="session-cancel"' not in injection
    assert 'data-test="session-cancel"' in article(html, clinic_week["review"])


def test_the_week_view_steps_a_week_and_the_day_view_a_day(clinic_week, clinician, today):
    monday = clinic_week["monday"]

    week = clinician.get(f"{WEEK}?on={(monday + days(2)).isoformat()}").content.decode()
    day = clinician.get(f"{DAY}?on={monday.isoformat()}").content.decode()

    assert f'href="{WEEK}?on={(monday - days(7)).isoformat()}" data-test="calendar-previous"' in week
    assert f'href="{WEEK}?on={(monday + days(7)).isoformat()}" data-test="calendar-next"' in week
    assert f'href="{DAY}?on={(monday - days(1)).isoformat()}" data-test="calendar-previous"' in day
    assert f'href="{DAY}?on={(monday + days(1)).isoformat()}" data-test="calendar-next"' in day
    assert f'href="{WEEK}?on={today.isoformat()}" data-test="calendar-today"' in week
    # The next week holds none of this week's sessions.
    later = clinician.get(f"{WEEK}?on={(monday + days(7)).isoformat()}").content.decode()
    assert f'id="session-{clinic_week["review"].pk}"' not in later


def test_the_day_view_lists_each_slot_with_its_places_and_patients(clinic_week, nurse):
    monday, visit = clinic_week["monday"], clinic_week["visit"]

    html = nurse.get(f"{DAY}?on={monday.isoformat()}").content.decode()

    slots = re.findall(r'data-test="slot" data-slot="\d+" data-booked="(\d)" data-free="(\d)"', html)
    assert slots == [("0", "1"), ("1", "0"), ("0", "1")]
    assert f'data-test="session-visit" data-visit="{visit.pk}"' in html
    assert clinic_week["patient"].mrn in html
    assert f'id="session-{clinic_week["injection"].pk}"' not in html


@pytest.mark.parametrize("view", [WEEK, DAY])
@pytest.mark.parametrize("asked", ["next-tuesday", "9999-12-31", "0001-01-01", "2026-02-30"])
def test_a_day_that_is_no_date_or_a_typo_shows_today(clinic_week, clinician, today, view, asked):
    response = clinician.get(f"{view}?on={asked}")

    assert response.status_code == 200
    assert response.context["calendar"].first == (week_start(today) if view == WEEK else today)


def test_the_session_list_and_a_session_lead_to_the_calendar(clinic_week, clinician):
    session = clinic_week["review"]

    assert clinician.get("/admin/followups/clinicsession/")["Location"] == WEEK
    assert (
        clinician.get(f"/admin/followups/clinicsession/{session.pk}/change/")["Location"]
        == f"{DAY}?on={session.on.isoformat()}"
    )


@pytest.mark.parametrize("view", [WEEK, DAY])
@pytest.mark.parametrize("clinics", [1, 5])
def test_the_calendar_costs_the_same_whatever_the_number_of_sessions(
    no_templates, clinician, today, view, clinics, django_assert_max_num_queries
):
    monday = next_monday(today)
    patients = [PatientFactory() for _ in range(2)]
    for n in range(clinics):
        # A week of clinics, one a day; a day of clinics, all on the Monday.
        on = monday + days(n) if view == WEEK else monday
        template = session_template(on=on, label=f"Clinic {n}", capacity=2)
        for slot in template.sessions.get(on=on).slots.all():
            for patient in patients:
                booked_visit(patient, slot)

    with django_assert_max_num_queries(10):
        response = clinician.get(f"{view}?on={monday.isoformat()}")

    assert response.content.decode().count('data-test="session-visit"') == clinics * 3 * 2


def test_reading_the_calendar_is_audited_for_each_patient_it_names(clinic_week, front_desk):
    visit, patient = clinic_week["visit"], clinic_week["patient"]

    front_desk.get(f"{WEEK}?on={clinic_week['monday'].isoformat()}")

    rows = AuditEvent.objects.filter(channel="admin", resource="visit", object_id=str(visit.uuid))
    assert [(row.patient_id, row.action) for row in rows] == [(patient.uuid, AuditEvent.Action.READ)]


def test_the_front_desk_calendar_names_patients_but_nothing_clinical(
    planted, no_templates, front_desk, today
):
    patient = planted["patient"]
    on = today + days(9)
    session = session_template(on=on).sessions.get(on=on)
    booked_visit(patient, session.slots.first(), purpose="Re-injection visit (day 84)")

    pages = [front_desk.get(f"{view}?on={on.isoformat()}").content.decode() for view in (WEEK, DAY)]

    for html in pages:
        assert patient.family_name in html
        # The kind of clinic the visit needs, never its purpose (which names the treatment).
        assert "Re-injection" not in html
        for marker in ("PLANTED-", "Carbamazepine", "HLA-B", "Cohen-Albert", "37.25", "recovery-chart"):
            assert marker not in html


def test_the_dashboard_links_to_the_calendar(db, front_desk):
    html = front_desk.get("/admin/").content.decode()

    assert f'href="{DAY}" id="dashboard-sessions-today"' in html
    assert f'href="{WEEK}" id="dashboard-sessions-week"' in html


# --- cancelling a session -----------------------------------------------------------------------


def test_the_cancel_page_says_whose_appointments_go(clinic_week, front_desk):
    html = front_desk.get(cancel_url(clinic_week["review"])).content.decode()

    assert "Okafor, Adaeze" in html
    assert "goes back to planned and waits on the call list" in html
    assert 'name="reason"' in html


@pytest.mark.parametrize("who", WRITERS)
def test_cancelling_a_session_sends_its_visits_back_to_planned_and_tells_the_patients(
    clinic_week, request, who
):
    client = request.getfixturevalue(who)
    session, visit = clinic_week["review"], clinic_week["visit"]

    response = client.post(cancel_url(session), {"reason": "Staff training day"})

    assert response.status_code == 302
    assert response["Location"] == f"{DAY}?on={session.on.isoformat()}"
    session.refresh_from_db()
    assert (session.cancelled, session.cancel_reason) == (True, "Staff training day")
    visit.refresh_from_db()
    assert (visit.status, visit.slot_id) == (VisitStatus.PLANNED, None)
    assert visit.clinic_cancelled_at is not None
    told = Reminder.objects.get(visit=visit, kind=ReminderKind.APPOINTMENT_CANCELLED)
    assert told.status == ReminderStatus.PENDING
    [message] = messages_of(response)
    assert message.startswith(
        f"Review clinic (room 1) on {session.on:%A} {session.on.day} {session.on:%B %Y}"
    )
    assert "1 booked visit(s) went back to planned" in message


def test_a_cancellation_without_a_reason_is_asked_again_and_changes_nothing(clinic_week, clinician):
    session, visit = clinic_week["review"], clinic_week["visit"]

    response = clinician.post(cancel_url(session), {"reason": "   "})

    assert response.status_code == 200
    assert response.context["form"].errors["reason"] == ["Say why the session is cancelled."]
    session.refresh_from_db()
    assert not session.cancelled
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.BOOKED


def test_a_session_cancelled_already_or_over_is_refused_with_the_service_s_words(
    clinic_week, clinician, today
):
    over = ClinicSession.objects.create(
        template=clinic_week["review"].template,
        on=today - days(7),
        starts_at=clinic_week["review"].starts_at,
        ends_at=clinic_week["review"].ends_at,
        label="Review clinic (room 1)",
    )

    again = clinician.post(cancel_url(clinic_week["injection"]), {"reason": "Holiday"})
    past = clinician.post(cancel_url(over), {"reason": "Holiday"})

    assert again.status_code == past.status_code == 200
    assert again.context["form"].non_field_errors() == ["This session is cancelled already."]
    assert past.context["form"].non_field_errors() == ["This session is over: it cannot be cancelled."]
    assert ClinicSession.objects.get(pk=clinic_week["injection"].pk).cancel_reason == "Public holiday"
    assert not ClinicSession.objects.get(pk=over.pk).cancelled


def test_an_unknown_session_is_a_404(db, clinician):
    assert clinician.get("/admin/followups/clinicsession/999999/cancel/").status_code == 404
    assert clinician.get("/admin/followups/clinicsession/nope/cancel/").status_code == 404


# --- roles --------------------------------------------------------------------------------------


def test_a_staff_user_without_a_role_has_no_calendar_and_no_templates(clinic_week, make_staff):
    client = client_for(make_staff(None))

    assert client.get(WEEK).status_code == 403
    assert client.get(DAY).status_code == 403
    assert client.get(TEMPLATES).status_code == 403
    assert client.get(f"{TEMPLATES}add/").status_code == 403
    assert client.post(cancel_url(clinic_week["review"]), {"reason": "Nope"}).status_code == 403
    assert not ClinicSession.objects.get(pk=clinic_week["review"].pk).cancelled


@pytest.mark.parametrize("who", WRITERS)
def test_everyone_who_books_visits_keeps_the_calendar(clinic_week, request, who):
    client = request.getfixturevalue(who)

    assert client.get(WEEK).status_code == 200
    assert client.get(TEMPLATES).status_code == 200
    assert client.get(f"{TEMPLATES}add/").status_code == 200
    assert client.get(cancel_url(clinic_week["review"])).status_code == 200
    index = client.get("/admin/followups/").content.decode()
    assert "/admin/followups/clinicsession/" in index and TEMPLATES in index
