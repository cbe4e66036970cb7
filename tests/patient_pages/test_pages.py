"""The patient's booking and rebooking pages through Django's test client, as a phone's browser
meets them: CSRF enforced, a fresh address per test, no script, nothing clinical on any page."""

import logging
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.core import signing
from django.db.models import F
from django.templatetags.static import static
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import time_format

from followups.codes import VisitStatus
from followups.models import Slot, Visit
from followups.patient_links import BOOKING, OPT_OUT, REBOOKING, booking_link_valid_until, link_token
from followups.visit_moves import visit_move
from patients.services import patient_archive, patient_update
from tests.followups.conftest import days
from tests.patient_pages.conftest import (
    assert_nothing_clinical,
    html,
    inside,
    rebooking_path,
    slot_choices,
    some_address,
    stored,
    submit,
)
from tests.patient_pages.conftest import booking_path as link


def assert_clear_page(response, status: int, heading: str) -> None:
    assert response.status_code == status
    page = html(response)
    assert heading in page
    assert settings.CLINIC_PHONE in page


# --- booking a planned visit --------------------------------------------------------------------


def test_the_page_offers_the_window_s_free_slots_grouped_by_day(phone, planned):
    response = phone.get(link(planned))

    assert response.status_code == 200
    page = html(response)
    offered = inside(planned)
    assert slot_choices(response) == [str(slot.uuid) for slot in offered]
    assert page.count("<fieldset") == len({slot.session.on for slot in offered})
    assert page.count('type="submit"') == 1
    assert "Book your follow-up visit" in page
    assert_nothing_clinical(page, planned)


def test_choosing_a_slot_books_it_and_redirects_to_a_confirmation(phone, planned):
    slot, path = inside(planned)[2], link(planned)

    response = submit(phone, path, {"slot": str(slot.uuid)})

    assert (response.status_code, response["Location"]) == (302, path + "done/")
    visit = stored(planned)
    assert (visit.status, visit.slot_id) == (VisitStatus.BOOKED, slot.pk)
    confirmation = phone.get(response["Location"])
    assert confirmation.status_code == 200
    page = html(confirmation)
    assert "Your appointment is booked" in page
    assert "We are sending you a confirmation by e-mail" in page
    assert time_format(timezone.localtime(slot.starts_at).time(), "TIME_FORMAT") in page
    assert_nothing_clinical(page, planned)


def test_a_post_without_its_csrf_token_is_refused_with_a_clear_page(phone, planned):
    phone.get(link(planned))  # the cookie is there; the form's token is not sent

    response = phone.post(link(planned), {"slot": str(inside(planned)[0].uuid)})

    assert_clear_page(response, 403, "Please try again")
    assert stored(planned).status == VisitStatus.PLANNED


def test_staff_pages_keep_django_s_csrf_page(phone, db):
    response = phone.post("/admin/login/", {"username": "x", "password": "y"})

    assert response.status_code == 403
    assert "CSRF verification failed" in html(response)


def test_sending_no_slot_asks_to_choose_one(phone, planned):
    response = submit(phone, link(planned), {})

    assert response.status_code == 400
    assert "Please choose a time." in html(response)
    assert slot_choices(response)


def test_a_slot_taken_meanwhile_lists_the_slots_again_with_a_message(phone, planned):
    page = phone.get(link(planned))
    slot = inside(planned)[0]
    Slot.objects.filter(pk=slot.pk).update(booked=F("capacity"))  # another patient was quicker
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html(page)).group(1)

    response = phone.post(link(planned), {"slot": str(slot.uuid), "csrfmiddlewaretoken": token})

    assert response.status_code == 409
    assert "that time has just been taken" in html(response)
    assert str(slot.uuid) not in slot_choices(response) and slot_choices(response)
    assert stored(planned).status == VisitStatus.PLANNED


def test_a_slot_outside_the_window_sent_by_hand_is_refused(phone, planned):
    outside = Slot.objects.filter(session__on=planned.window_end + days(1)).first()

    response = submit(phone, link(planned), {"slot": str(outside.uuid)})

    assert response.status_code == 409
    assert "can no longer be booked" in html(response)
    assert stored(planned).status == VisitStatus.PLANNED


def test_without_free_slots_the_page_says_to_call(phone, planned):
    Slot.objects.update(booked=F("capacity"))

    response = phone.get(link(planned))

    assert response.status_code == 200
    assert 'data-test="no-slots"' in html(response) and settings.CLINIC_PHONE in html(response)
    assert "<form" not in html(response)


def test_the_confirmation_of_nothing_is_the_page_itself(phone, planned):
    path = link(planned)

    response = phone.get(path + "done/")

    assert (response.status_code, response["Location"]) == (302, path)


def test_times_are_shown_in_the_patient_s_time_zone(phone, planned):
    patient_update(patient=planned.patient, timezone="America/New_York")

    page = html(phone.get(link(planned)))

    assert "Times are shown in the America/New_York time zone." in page
    first = inside(planned)[0].starts_at.astimezone(ZoneInfo("America/New_York"))
    assert f"{time_format(first.time(), 'TIME_FORMAT')}</span>" in page


# --- a booked visit: move or cancel, until 24 hours before --------------------------------------


@pytest.fixture
def booked(phone, planned):
    slot = inside(planned)[0]
    assert submit(phone, link(planned), {"slot": str(slot.uuid)}).status_code == 302
    return stored(planned)


def test_a_booked_visit_shows_the_appointment_with_change_and_cancel(phone, booked):
    path = link(booked)
    response = phone.get(path)

    page = html(response)
    assert response.status_code == 200
    assert 'data-test="appointment"' in page
    assert f'href="{path}change/"' in page and f'href="{path}cancel/"' in page
    assert "<form" not in page  # nothing changes from this page by itself
    assert_nothing_clinical(page, booked)


def test_choosing_another_time_moves_the_booking(phone, booked):
    path = link(booked)
    change = phone.get(path + "change/")
    choices = slot_choices(change)
    assert str(booked.slot.uuid) not in choices

    response = submit(phone, path, {"slot": choices[-1]}, form_on=path + "change/")

    assert (response.status_code, response["Location"]) == (302, path + "done/")
    moved = stored(booked)
    assert str(moved.slot.uuid) == choices[-1]
    assert Slot.objects.get(pk=booked.slot_id).booked == 0
    assert_nothing_clinical(html(change), booked)


def test_cancelling_asks_first_then_plans_the_visit_again(phone, booked):
    path = link(booked)
    ask = phone.get(path + "cancel/")
    assert "Cancel your appointment?" in html(ask)
    assert stored(booked).status == VisitStatus.BOOKED  # opening the page changes nothing

    response = submit(phone, path + "cancel/")

    assert (response.status_code, response["Location"]) == (302, path + "done/")
    assert stored(booked).status == VisitStatus.PLANNED
    done = phone.get(response["Location"])
    assert "Your booking is cancelled" in html(done)
    assert f'href="{path}"' in html(done)
    assert slot_choices(phone.get(path))  # the same link books again
    assert_nothing_clinical(html(ask) + html(done), booked)


@pytest.fixture
def tomorrow_morning(planned):
    """Booked by staff a few hours ahead (a free time, outside the window): too late to change online."""
    return visit_move(
        visit=planned,
        to=VisitStatus.BOOKED,
        scheduled_for=timezone.now() + timedelta(hours=5),
        confirm_outside_window=True,
    )


def test_less_than_24_hours_before_the_page_says_to_call(phone, tomorrow_morning):
    for path in ("", "change/", "cancel/"):
        response = phone.get(link(tomorrow_morning) + path)
        assert response.status_code == 200
        assert 'data-test="phone-only"' in html(response) and settings.CLINIC_PHONE in html(response)
        assert 'name="slot"' not in html(response)


def test_a_late_cancel_is_refused_with_the_clinic_s_phone(phone, planned, booked):
    page = phone.get(link(booked) + "cancel/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html(page)).group(1)
    Visit.objects.filter(pk=booked.pk).update(scheduled_for=timezone.now() + timedelta(hours=23))

    response = phone.post(link(booked) + "cancel/", {"csrfmiddlewaretoken": token})

    assert response.status_code == 409
    assert "less than 24 hours away" in html(response) and settings.CLINIC_PHONE in html(response)
    assert stored(booked).status == VisitStatus.BOOKED


# --- links that do not work, visits with nothing to do ------------------------------------------


def test_an_expired_link_is_a_410_page_with_the_clinic_s_phone(phone, planned, today):
    token = link_token(BOOKING, planned.uuid, today - days(1))

    for path in ("", "change/", "cancel/", "done/"):
        response = phone.get(reverse("patient-booking", args=[token]) + path)
        assert_clear_page(response, 410, "This link has expired")


@pytest.mark.parametrize("how", ["cut short", "forged", "another purpose", "no such visit"])
def test_a_link_that_names_nothing_is_a_404_page_with_the_clinic_s_phone(phone, planned, how):
    genuine = link(planned)
    path = {
        "cut short": genuine[:-12] + "/",
        "forged": reverse(
            "patient-booking",
            args=[signing.dumps([str(planned.uuid), "2999-01-01"], key="not-the-clinic-key", compress=True)],
        ),
        "another purpose": reverse(
            "patient-booking", args=[link_token(REBOOKING, planned.uuid, booking_link_valid_until(planned))]
        ),
        "no such visit": reverse(
            "patient-booking",
            args=[link_token(BOOKING, "00000000-0000-4000-8000-000000000000", planned.window_end)],
        ),
    }[how]

    assert_clear_page(phone.get(path), 404, "This link does not work")
    assert_clear_page(submit(phone, path, form_on=genuine), 404, "This link does not work")


def post_again(client, path, data):
    """The form sent once more, as the browser's back button and a second tap send it."""
    return client.post(path, {**data, "csrfmiddlewaretoken": client.cookies["csrftoken"].value})


@pytest.mark.parametrize("state", ["cancelled", "completed", "archived"])
def test_a_visit_with_nothing_to_book_gets_a_clear_page(phone, planned, state):
    if state == "cancelled":
        visit_move(visit=planned, to=VisitStatus.CANCELLED, reason="The patient moved away.")
        heading = "This visit was cancelled"
    elif state == "completed":
        visit_move(visit=planned, to=VisitStatus.COMPLETED, now=planned.scheduled_for)
        heading = "This visit has taken place"
    else:
        patient_archive(patient=planned.patient)
        heading = "This visit cannot be booked online"

    response = phone.get(link(planned))

    assert_clear_page(response, 200, heading)
    assert "<form" not in html(response)
    assert_nothing_clinical(html(response), planned)


# --- the rebooking link -------------------------------------------------------------------------


def test_a_missed_visit_is_rebooked_once_through_its_link(phone, missed, today):
    path = rebooking_path(missed)
    page = phone.get(path)
    assert "Book a new appointment" in html(page)
    choices = slot_choices(page)
    assert choices

    response = submit(phone, path, {"slot": choices[0]})

    assert (response.status_code, response["Location"]) == (302, path + "done/")
    rebooked = Visit.objects.get(rebooked_from=missed)
    assert (rebooked.status, str(rebooked.slot.uuid)) == (VisitStatus.BOOKED, choices[0])
    done = phone.get(response["Location"])
    assert "Your appointment is booked" in html(done)

    again = post_again(phone, path, {"slot": choices[1]})
    assert again.status_code == 409
    assert "You have already booked a new appointment with this link." in html(again)
    assert Visit.objects.filter(rebooked_from=missed).count() == 1
    later = phone.get(path)
    assert "You have booked a new appointment" in html(later) and not slot_choices(later)
    assert_nothing_clinical(html(page) + html(done) + html(again) + html(later), missed)


# --- protection: rate limits, logs ---------------------------------------------------------------


def test_a_link_opened_too_often_gets_a_429_page(phone, planned, settings):
    settings.PATIENT_PAGES_RATE_PER_LINK = "3/h"
    path = link(planned)
    for _ in range(3):
        assert phone.get(path).status_code == 200

    response = phone.get(path)

    assert_clear_page(response, 429, "Please wait a moment")
    assert response["Retry-After"] == "60"
    # The limit is the link's, from any address, and counts its POSTs too.
    other = Client(enforce_csrf_checks=True, REMOTE_ADDR=some_address())
    assert other.get(path).status_code == 429
    assert post_again(phone, path, {"slot": str(inside(planned)[0].uuid)}).status_code == 429
    assert stored(planned).status == VisitStatus.PLANNED


def test_an_address_trying_link_after_link_gets_a_429_page(phone, planned, settings):
    settings.PATIENT_PAGES_RATE_PER_ADDRESS = "3/h"
    for n in range(3):
        assert phone.get(reverse("patient-booking", args=[f"guess-{n}"])).status_code == 404

    assert_clear_page(phone.get(link(planned)), 429, "Please wait a moment")


def test_without_the_cache_the_pages_still_answer(phone, planned, settings):
    settings.CACHES = {
        **settings.CACHES,
        "nowhere": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        },
    }
    settings.RATELIMIT_USE_CACHE = "nowhere"

    assert phone.get(link(planned)).status_code == 200


def test_behind_the_proxy_the_address_is_the_one_the_proxy_saw(phone, planned, settings):
    settings.NUM_PROXIES = 1
    settings.PATIENT_PAGES_RATE_PER_ADDRESS = "2/h"
    proxy = {"REMOTE_ADDR": "10.255.255.254"}
    first, second = some_address(), some_address()

    for _ in range(2):
        assert phone.get(link(planned), HTTP_X_FORWARDED_FOR=first, **proxy).status_code == 200
    # Another patient behind the same proxy is not held back; a forged first entry changes nothing.
    assert phone.get(link(planned), HTTP_X_FORWARDED_FOR=second, **proxy).status_code == 200
    assert phone.get(link(planned), HTTP_X_FORWARDED_FOR=f"1.2.3.4, {first}", **proxy).status_code == 429


def test_with_no_proxy_a_forwarded_header_is_no_new_address(phone, planned, settings):
    # NUM_PROXIES 0: nobody in front appends to X-Forwarded-For, so whatever is there the client wrote.
    settings.NUM_PROXIES = 0
    settings.PATIENT_PAGES_RATE_PER_ADDRESS = "2/h"

    statuses = [phone.get(link(planned), HTTP_X_FORWARDED_FOR=some_address()).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]


def test_a_link_s_token_never_reaches_the_log(phone, planned, today, caplog):
    expired = link_token(BOOKING, planned.uuid, today - days(1))
    genuine = link(planned)
    forged = genuine[:-12] + "/"

    with caplog.at_level(logging.INFO):
        phone.get(reverse("patient-booking", args=[expired]))
        phone.get(forged)
        phone.post(genuine, {"slot": "x"})  # refused by the CSRF check

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged.count("/p/visit/[token]/") == 3
    for token in (expired, forged.split("/")[3], genuine.split("/")[3]):
        assert token not in logged


# --- every page: phone-sized, no script, the patient's language ----------------------------------


def test_pages_are_phone_sized_and_need_nothing_from_elsewhere(phone, planned):
    page = html(phone.get(link(planned)))

    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert "<script" not in page.lower()
    assert re.findall(r'(?:href|src)="([^"]+)"', page)
    for url in re.findall(r'(?:href|src)="([^"]+)"', page):
        assert url.startswith(("/", "tel:")), f"{url} is not served by the project"
    stylesheet = static("followups/patient.css")
    assert f'<link rel="stylesheet" href="{stylesheet}">' in page
    assert finders.find("followups/patient.css")
    assert 'lang="en"' in page


def test_the_page_is_in_the_patient_s_language(phone, planned):
    patient_update(patient=planned.patient, preferred_language="de")

    response = phone.get(link(planned))

    assert '<html lang="de">' in html(response)
    assert response["Content-Language"] == "de"
    # Django's own German names of the days; the project's catalogues come with their issue.
    assert re.search(r"(Montag|Dienstag|Mittwoch|Donnerstag|Freitag|Samstag|Sonntag), ", html(response))


def test_an_opt_out_token_never_reaches_the_log_either(planned, caplog):
    from django.test import Client

    token = link_token(OPT_OUT, planned.patient.uuid)
    mistyped = token[:-5]

    with caplog.at_level(logging.INFO):
        Client().get(reverse("reminders-opt-out", args=[mistyped]))  # a 404, logged by Django

    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "/reminders/opt-out/[token]/" in logged
    assert mistyped not in logged
