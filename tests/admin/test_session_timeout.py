"""A signed-in staff session ends after SESSION_IDLE_MINUTES without a request (30 by default) and
SESSION_MAX_HOURS after signing in (10), whatever it did meanwhile (issue 20)."""

import time

import pytest

from clinic.middleware import LAST_SEEN_AT, SIGNED_IN_AT
from clinic.roles import Role
from tests.admin.conftest import client_for

pytestmark = pytest.mark.django_db

PAGE = "/admin/patients/patient/"


def signed_in(client) -> bool:
    response = client.get(PAGE)
    if response.status_code == 302:
        assert response["Location"].startswith("/admin/login/")
        return False
    assert response.status_code == 200
    return True


def shift(client, **seconds_ago) -> None:
    """Move the session's clocks back, as if that much time had passed."""
    session = client.session
    now = int(time.time())
    for key, ago in ((SIGNED_IN_AT, seconds_ago.get("signed_in")), (LAST_SEEN_AT, seconds_ago.get("seen"))):
        if ago is not None:
            session[key] = now - ago
    session.save()


@pytest.fixture
def front_desk_browser(make_staff):
    client = client_for(make_staff(Role.FRONT_DESK))
    assert signed_in(client)  # the first request starts the session's clocks
    return client


def test_settings_default_to_half_an_hour_idle_and_ten_hours_in_all(settings):
    assert (settings.SESSION_IDLE_SECONDS, settings.SESSION_COOKIE_AGE) == (30 * 60, 10 * 3600)


def test_a_session_idle_for_longer_than_the_limit_is_signed_out(front_desk_browser):
    shift(front_desk_browser, seen=31 * 60)

    assert not signed_in(front_desk_browser)
    assert not signed_in(front_desk_browser)  # and stays out: the session was flushed


def test_a_session_in_use_stays_signed_in_and_its_clock_moves_on(front_desk_browser):
    shift(front_desk_browser, signed_in=2 * 3600, seen=29 * 60)

    assert signed_in(front_desk_browser)
    assert time.time() - front_desk_browser.session[LAST_SEEN_AT] < 5


def test_requests_within_a_minute_do_not_rewrite_the_session(front_desk_browser):
    shift(front_desk_browser, seen=20)
    seen = front_desk_browser.session[LAST_SEEN_AT]

    assert signed_in(front_desk_browser)
    assert front_desk_browser.session[LAST_SEEN_AT] == seen


def test_a_session_older_than_its_maximum_ends_even_when_busy(front_desk_browser):
    shift(front_desk_browser, signed_in=10 * 3600 + 60, seen=10)

    assert not signed_in(front_desk_browser)


def test_a_form_posted_after_the_idle_limit_is_not_carried_out(front_desk_browser, planted):
    patient = planted["patient"]
    shift(front_desk_browser, seen=31 * 60)

    response = front_desk_browser.post(
        f"/admin/patients/patient/{patient.pk}/change/", {"phone": "+49 30 7654321"}
    )

    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")
    patient.refresh_from_db()
    assert patient.phone != "+49 30 7654321"
