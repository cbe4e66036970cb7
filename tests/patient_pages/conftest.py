"""Self-booking through a patient's links (DOMAIN.md section 12): the clinic's week, the visits
the links name, and a phone's browser as the test client sees it.

The sessions start from no templates, so the slots a page offers are exactly those made here:
an injection clinic every day of the week, its room named after the treatment (as the seeded
week names it), so a page that showed the session's label would show something clinical.
"""

import random
import re
from datetime import timedelta

import pytest
from django.conf import settings
from django.test import Client

from followups import booking
from followups import services as followups
from followups.codes import VisitKind, VisitStatus
from followups.models import Slot, Visit
from followups.patient_links import booking_url, rebooking_url
from followups.visit_moves import visit_move
from tests.factories import PatientFactory, session_template_row
from tests.followups import conftest as follow_up_fixtures
from tests.followups.conftest import at_clinic, days, live, record_toxin

# Fixtures of tests/followups shared here: the clinic's today, a recent diagnosis of ``patient``.
today = follow_up_fixtures.today
recent_diagnosis = follow_up_fixtures.recent_diagnosis

ROOM = "Injection clinic (room 2)"
# Nothing a forwarded link opens may name the visit's purpose, the treatment, the diagnosis or the
# clinic's rooms; the seeded re-injection step's purpose and the planted manual one included.
MISSED_PURPOSE = "Botulinum toxin re-injection review"
CLINICAL_WORDS = (
    "Re-injection",
    "injection",
    "botulinum",
    "toxin",
    "onabotulinum",
    "MVD",
    "decompression",
    "carbamazepine",
    "medication",
    "hemifacial",
    "HFS",
    "spasm",
    "diagnos",
    "treatment",
    "room 2",
    "review",
)


def clinic_template(*, weekday, valid_from, kinds=(VisitKind.INJECTION,), starts="09:00", ends="10:00"):
    return session_template_row(
        weekday=weekday, valid_from=valid_from, kinds=kinds, label=ROOM, starts=starts, ends=ends
    )


@pytest.fixture
def patient(db):
    """Names no word of a page could contain by chance, and consent to e-mails."""
    return PatientFactory(given_name="Philippa", family_name="Quintrell", email_reminders=True)


@pytest.fixture
def injection_clinic(no_templates, today):
    """Three slots of 20 minutes from 09:00 every day, one place each, 26 weeks ahead."""
    for weekday in range(7):
        clinic_template(weekday=weekday, valid_from=today)
    booking.sessions_generate(today=today)


@pytest.fixture
def planned(recent_diagnosis, injection_clinic, today):
    """A planned re-injection visit (window days 84 to 105 of a toxin session of today)."""
    visit = live(record_toxin(recent_diagnosis, today))[1]
    assert (visit.status, visit.visit_kind) == (VisitStatus.PLANNED, VisitKind.INJECTION)
    return visit


@pytest.fixture
def missed(patient, injection_clinic, today):
    """A manual injection visit the patient did not come to: its window closed two days ago."""
    visit = followups.visit_create(
        patient=patient,
        purpose=MISSED_PURPOSE,
        visit_kind=VisitKind.INJECTION,
        scheduled_for=at_clinic(today - days(5)),
        window_start=today - days(8),
        window_end=today - days(2),
        status=VisitStatus.PLANNED,
    )
    return visit_move(visit=visit, to=VisitStatus.MISSED)


def inside(visit):
    """The free injection slots inside the visit's window, earliest first."""
    return list(
        Slot.objects.filter(session__on__range=(visit.window_start, visit.window_end), booked=0).order_by(
            "starts_at"
        )
    )


def stored(visit) -> Visit:
    return Visit.objects.select_related("patient", "slot").get(pk=visit.pk)


def path_of(url: str) -> str:
    return url.removeprefix(settings.SITE_URL)


def booking_path(visit) -> str:
    return path_of(booking_url(visit))


def rebooking_path(missed) -> str:
    return path_of(rebooking_url(missed))


def some_address() -> str:
    # Each test its own address, so the rate limits' counts (in Redis, per minute) of one test
    # never reach the next.
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


@pytest.fixture
def phone():
    """A browser as Django's CSRF check meets it: a form posts only with the token of its page."""
    return Client(enforce_csrf_checks=True, REMOTE_ADDR=some_address())


CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def submit(client, page_path: str, data=None, *, form_on: str | None = None):
    """Open the page with the form (``form_on``, or the page posted to) and send it with its token."""
    page = client.get(form_on or page_path)
    tokens = CSRF_FIELD.findall(page.content.decode())
    assert tokens, f"no form on {form_on or page_path}"
    return client.post(page_path, {**(data or {}), "csrfmiddlewaretoken": tokens[0]})


def slot_choices(response) -> list[str]:
    return re.findall(r'name="slot" value="([0-9a-f-]{36})"', response.content.decode())


def html(response) -> str:
    return response.content.decode()


# The link's token (in the page's own links) and the form's CSRF token are random letters.
TOKENS = re.compile(r'/p/(?:visit|rebook)/[^/"]+/|name="csrfmiddlewaretoken" value="[^"]+"')


def assert_nothing_clinical(page: str, visit) -> None:
    shown = TOKENS.sub("", page).lower()
    for word in (*CLINICAL_WORDS, visit.purpose, visit.patient.given_name, visit.patient.family_name):
        assert word.lower() not in shown, f"{word!r} is on a patient page"


def hours(n: float) -> timedelta:
    return timedelta(hours=n)
