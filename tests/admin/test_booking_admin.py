"""Booking from the patient page (issue 13, DOMAIN.md section 12): staff pick one of the slots
suggested for a planned visit (or rebook a missed one into a slot), or give a free time; they come
back to the patient page at the visit, and a refusal (the slot just taken) is a message there."""

import re
from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.utils import formats, timezone

from followups.codes import VisitKind, VisitStatus
from followups.models import ClinicSession, Slot, Visit
from followups.visit_moves import visit_move
from tests.admin.conftest import at_clinic, client_for, days, session_template
from tests.factories import PatientFactory


def page_url(patient) -> str:
    return f"/admin/patients/patient/{patient.pk}/page/"


def book_slot_url(visit) -> str:
    return f"/admin/followups/visit/{visit.pk}/book-slot/"


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def offers(html: str) -> list[tuple[str, str]]:
    """The slots offered on the page, as (slot id, inside the window: yes or no)."""
    return re.findall(r'data-test="slot-offer" data-slot="(\d+)" data-inside="(yes|no)"', html)


def planned_visit(patient, on, *, before=2, after=2, purpose="Review") -> Visit:
    return Visit.objects.create(
        patient=patient,
        purpose=purpose,
        visit_kind=VisitKind.REVIEW,
        scheduled_for=at_clinic(on),
        window_start=on - days(before),
        window_end=on + days(after),
        status=VisitStatus.PLANNED,
        source="manual",
    )


def when(slot) -> str:
    return formats.date_format(timezone.localtime(slot.starts_at), "j F Y, H:i")


@pytest.fixture
def review_clinic(no_templates, today):
    """A review clinic every week from ten days ahead (09:00, 09:20, 09:40, one place each) and a
    planned review whose window (days 8 to 12) holds only its first session."""
    on = today + days(10)
    template = session_template(on=on, label="Review clinic (room 1)")
    patient = PatientFactory(email_reminders=True)
    return {
        "on": on,
        "session": template.sessions.get(on=on),
        "later": template.sessions.get(on=on + days(7)),
        "visit": planned_visit(patient, on),
        "patient": patient,
    }


def slots(session) -> list[Slot]:
    return list(session.slots.order_by("starts_at"))


def test_the_page_offers_the_free_slots_inside_the_window_for_the_visit_chosen(review_clinic, front_desk):
    visit, session = review_clinic["visit"], review_clinic["session"]

    plain = front_desk.get(page_url(visit.patient)).content.decode()
    html = front_desk.get(f"{page_url(visit.patient)}?book={visit.pk}").content.decode()

    assert offers(plain) == []
    assert f'href="{page_url(visit.patient)}?book={visit.pk}#visit-{visit.pk}-slots"' in plain
    assert offers(html) == [(str(slot.pk), "yes") for slot in slots(session)]
    panel = html[html.index(f'id="visit-{visit.pk}-slots"') :]
    on = review_clinic["on"]
    assert f"{on:%a} {on.day} {on:%b %Y}" in panel
    for time_of_day in ("09:00", "09:20", "09:40"):
        assert f"<td>{time_of_day}</td>" in panel
    assert "<td>Review clinic (room 1)</td>" in panel and "<td>1</td>" in panel
    assert 'data-test="slot-outside"' not in panel


def test_without_a_free_slot_inside_the_window_the_nearest_after_are_offered_marked_outside(
    review_clinic, clinician
):
    for slot in slots(review_clinic["session"]):
        visit_move(
            visit=planned_visit(PatientFactory(), review_clinic["on"]), to=VisitStatus.BOOKED, slot=slot
        )
    visit = review_clinic["visit"]

    html = clinician.get(f"{page_url(visit.patient)}?book={visit.pk}").content.decode()

    shown = offers(html)
    assert shown[:3] == [(str(slot.pk), "no") for slot in slots(review_clinic["later"])]
    assert html.count('data-test="slot-outside"') == len(shown)
    assert "No slot is free inside the window: these are the nearest after it." in html


def test_picking_a_slot_books_the_visit_and_comes_back_to_it_on_the_page(review_clinic, front_desk):
    visit, slot = review_clinic["visit"], slots(review_clinic["session"])[1]

    response = front_desk.post(book_slot_url(visit), {"slot": slot.pk})

    assert response.status_code == 302
    assert response["Location"] == f"{page_url(visit.patient)}#visit-{visit.pk}"
    assert messages_of(response) == [f"Review: booked for {when(slot)} (Review clinic (room 1))."]
    visit.refresh_from_db()
    assert (visit.status, visit.slot_id, visit.scheduled_for) == (VisitStatus.BOOKED, slot.pk, slot.starts_at)
    assert Slot.objects.get(pk=slot.pk).booked == 1
    page = front_desk.get(page_url(visit.patient)).content.decode()
    assert f'data-test="visit-{visit.pk}-session"' in page


def test_a_slot_just_taken_is_refused_with_a_message_and_fresh_offers(review_clinic, clinician):
    visit, taken = review_clinic["visit"], slots(review_clinic["session"])[0]
    offered = clinician.get(f"{page_url(visit.patient)}?book={visit.pk}").content.decode()
    assert (str(taken.pk), "yes") in offers(offered)
    # Someone else books the last place while the page is open.
    visit_move(visit=planned_visit(PatientFactory(), review_clinic["on"]), to=VisitStatus.BOOKED, slot=taken)

    response = clinician.post(book_slot_url(visit), {"slot": taken.pk})

    assert response.status_code == 302
    assert response["Location"] == f"{page_url(visit.patient)}?book={visit.pk}#visit-{visit.pk}-slots"
    assert messages_of(response) == ["Not booked: This slot has just been taken: choose another."]
    visit.refresh_from_db()
    assert (visit.status, visit.slot_id) == (VisitStatus.PLANNED, None)
    assert Slot.objects.get(pk=taken.pk).booked == 1
    again = clinician.get(response["Location"]).content.decode()
    assert str(taken.pk) not in [slot_id for slot_id, _ in offers(again)]


def test_a_slot_of_a_session_cancelled_meanwhile_is_refused(review_clinic, clinician):
    visit, slot = review_clinic["visit"], slots(review_clinic["session"])[0]
    ClinicSession.objects.filter(pk=review_clinic["session"].pk).update(
        cancelled=True, cancel_reason="Holiday"
    )

    response = clinician.post(book_slot_url(visit), {"slot": slot.pk})

    assert response.status_code == 302
    assert messages_of(response) == ["Not booked: This session is cancelled."]
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.PLANNED


@pytest.mark.parametrize("slot", ["", "999999", "nope"])
def test_a_slot_that_is_not_there_is_refused(review_clinic, clinician, slot):
    visit = review_clinic["visit"]

    response = clinician.post(book_slot_url(visit), {"slot": slot})

    assert response.status_code == 302
    assert messages_of(response) == ["This slot no longer exists: choose another."]
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.PLANNED


def test_a_completed_visit_is_not_booked_into_a_slot(review_clinic, clinician, today):
    done = planned_visit(review_clinic["patient"], today, before=0, after=0, purpose="Today")
    visit_move(visit=done, to=VisitStatus.COMPLETED)

    response = clinician.post(book_slot_url(done), {"slot": slots(review_clinic["session"])[0].pk})

    assert response.status_code == 302
    [message] = messages_of(response)
    assert message.startswith("Not booked: This visit is completed")
    assert Visit.objects.get(pk=done.pk).status == VisitStatus.COMPLETED


def test_a_booked_visit_moves_to_another_slot_and_gives_its_place_back(review_clinic, nurse):
    visit = review_clinic["visit"]
    first, second = slots(review_clinic["session"])[:2]
    visit_move(visit=visit, to=VisitStatus.BOOKED, slot=first)

    html = nurse.get(f"{page_url(visit.patient)}?book={visit.pk}").content.decode()
    response = nurse.post(book_slot_url(visit), {"slot": second.pk})

    assert "Move to another slot" in html and str(first.pk) not in [s for s, _ in offers(html)]
    assert response.status_code == 302
    visit.refresh_from_db()
    assert visit.slot_id == second.pk
    assert [Slot.objects.get(pk=s.pk).booked for s in (first, second)] == [0, 1]


def test_a_missed_visit_is_rebooked_into_a_slot_of_the_next_30_days(review_clinic, clinician, today):
    missed = planned_visit(review_clinic["patient"], today - days(5), purpose="Missed review")
    visit_move(visit=missed, to=VisitStatus.MISSED)
    in_30_days = Slot.objects.filter(
        session__on__range=(today, today + days(30)), session__template=review_clinic["session"].template
    ).order_by("starts_at")
    beyond = Slot.objects.filter(session__on__gt=today + days(30))
    assert beyond.exists()

    html = clinician.get(f"{page_url(missed.patient)}?book={missed.pk}").content.decode()
    slot = slots(review_clinic["later"])[2]
    response = clinician.post(book_slot_url(missed), {"slot": slot.pk})

    assert offers(html) == [(str(s.pk), "yes") for s in in_30_days[:10]]
    assert not {str(s.pk) for s in beyond} & {slot_id for slot_id, _ in offers(html)}
    assert 'data-test="slot-outside"' not in html
    rebooked = Visit.objects.get(rebooked_from=missed)
    assert (rebooked.status, rebooked.slot_id, rebooked.scheduled_for) == (
        VisitStatus.BOOKED,
        slot.pk,
        slot.starts_at,
    )
    assert response["Location"] == f"{page_url(missed.patient)}#visit-{rebooked.pk}"
    assert messages_of(response) == [f"Review: rebooked for {when(slot)} (Review clinic (room 1))."]


def test_a_free_time_booked_from_the_page_comes_back_to_the_visit(review_clinic, clinician, today):
    visit = review_clinic["visit"]
    html = clinician.get(page_url(visit.patient)).content.decode()
    back = f"{page_url(visit.patient)}#visit-{visit.pk}"
    assert f'name="next" value="{back}"' in html
    free_time = review_clinic["on"] + days(1)

    response = clinician.post(
        f"/admin/followups/visit/{visit.pk}/act/",
        {"action": "book", "book-scheduled_for": f"{free_time}T15:00", "next": back},
    )

    assert response.status_code == 302 and response["Location"] == back
    visit.refresh_from_db()
    assert (visit.status, visit.slot_id) == (VisitStatus.BOOKED, None)
    assert messages_of(response) == [f"Review: booked for {free_time.day} {free_time:%B %Y}, 15:00."]


def test_slots_are_offered_only_to_staff_who_book_and_only_for_the_patient_s_own_visits(
    review_clinic, make_staff, clinician
):
    visit = review_clinic["visit"]
    other = PatientFactory()
    no_role = client_for(make_staff(None))

    elsewhere = clinician.get(f"{page_url(other)}?book={visit.pk}")
    nonsense = clinician.get(f"{page_url(visit.patient)}?book=soon")

    assert elsewhere.status_code == nonsense.status_code == 200
    assert offers(elsewhere.content.decode()) == offers(nonsense.content.decode()) == []
    assert (
        no_role.post(book_slot_url(visit), {"slot": slots(review_clinic["session"])[0].pk}).status_code == 403
    )
    assert clinician.get(book_slot_url(visit)).status_code == 403
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.PLANNED


@pytest.mark.parametrize("others", [0, 20])
def test_the_page_with_offers_costs_the_same_whatever_the_number_of_visits(
    review_clinic, clinician, today, others, django_assert_max_num_queries
):
    visit = review_clinic["visit"]
    Visit.objects.bulk_create(
        Visit(
            patient=visit.patient,
            purpose=f"Check {n}",
            visit_kind=VisitKind.REVIEW,
            scheduled_for=at_clinic(today + timedelta(days=n + 40)),
            window_start=today + timedelta(days=n + 40),
            window_end=today + timedelta(days=n + 42),
            status=VisitStatus.PLANNED,
            source="manual",
        )
        for n in range(others)
    )

    with django_assert_max_num_queries(17):
        html = clinician.get(f"{page_url(visit.patient)}?book={visit.pk}").content.decode()

    assert len(offers(html)) == 3


def test_the_visit_s_actions_page_leads_to_its_slots_while_it_can_be_booked(review_clinic, clinician):
    visit = review_clinic["visit"]
    act = f"/admin/followups/visit/{visit.pk}/act/"
    slots_link = f'href="{page_url(visit.patient)}?book={visit.pk}#visit-{visit.pk}-slots"'

    bookable = clinician.get(act).content.decode()
    visit_move(visit=visit, to=VisitStatus.CANCELLED, reason="Moved away")
    cancelled = clinician.get(act).content.decode()

    assert slots_link in bookable
    assert 'data-test="visit-act-slots"' not in cancelled


def test_a_slot_offered_after_the_window_books_with_one_click(review_clinic, clinician):
    """The page marks it "outside the window": picking it is the confirmation."""
    for slot in slots(review_clinic["session"]):
        visit_move(
            visit=planned_visit(PatientFactory(), review_clinic["on"]), to=VisitStatus.BOOKED, slot=slot
        )
    visit, later = review_clinic["visit"], slots(review_clinic["later"])[0]

    response = clinician.post(book_slot_url(visit), {"slot": later.pk})

    assert response.status_code == 302
    visit.refresh_from_db()
    assert (visit.status, visit.slot_id) == (VisitStatus.BOOKED, later.pk)


@pytest.mark.parametrize("odd", ["\u00b2", "\u0663", "99999999999999999999999"])
def test_an_id_that_is_no_row_id_is_a_clear_answer_never_an_error(review_clinic, clinician, odd):
    visit = review_clinic["visit"]

    page = clinician.get(f"{page_url(visit.patient)}?book={odd}")
    slot = clinician.post(book_slot_url(visit), {"slot": odd})

    assert page.status_code == 200
    assert slot.status_code == 302 and messages_of(slot) == ["This slot no longer exists: choose another."]
