"""The one-click opt-out of e-mail reminders (DOMAIN.md section 6; RFC 8058), through the test client.

The client enforces CSRF checks as a browser's requests meet them: a mail client's one-click POST
carries no token, and must work all the same.
"""

import base64
import json
import time
import uuid
from datetime import timedelta

import pytest
from django.conf import settings
from django.core import signing
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from followups import services as followups
from followups.codes import ReminderStatus
from followups.models import Reminder
from followups.patient_links import OPT_OUT, link_token
from followups.patient_links import OPT_OUT_SALT as SALT
from followups.reminders.messages import reminder_message
from patients.services import patient_archive
from tests.factories import PatientFactory

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def patient(db):
    return PatientFactory(
        mrn="OPTOUT0042",
        given_name="Ada",
        family_name="Lovelace",
        email="ada.l@patients.example",
        email_reminders=True,
    )


@pytest.fixture
def visits(patient):
    now = timezone.now()
    return [
        followups.visit_create(patient=patient, purpose="Review", scheduled_for=now + timedelta(days=days))
        for days in (20, 40)
    ]


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


def opt_out_token(patient) -> str:
    return link_token(OPT_OUT, patient.uuid)


def link(patient) -> str:
    return reverse("reminders-opt-out", args=[opt_out_token(patient)])


def reminders_of(patient):
    return list(Reminder.objects.filter(visit__patient=patient).order_by("pk").values())


def post_one_click(browser, path):
    return browser.post(path, data=ONE_CLICK, content_type="application/x-www-form-urlencoded")


def assert_opted_out(patient, pending_before: list[int], history_before: int):
    patient.refresh_from_db()
    assert patient.email_reminders is False
    assert patient.email_reminders_consented_at is None
    assert not Reminder.objects.filter(visit__patient=patient, status=ReminderStatus.PENDING).exists()
    for reminder in Reminder.objects.filter(pk__in=pending_before):
        assert (reminder.status, reminder.status_reason) == (
            ReminderStatus.SKIPPED,
            "No consent to e-mail reminders.",
        )
    assert patient.history.count() == history_before + 1
    latest = patient.history.latest("history_date")
    assert (latest.history_type, latest.email_reminders) == ("~", False)


def pending_ids(patient) -> list[int]:
    pending = Reminder.objects.filter(visit__patient=patient, status=ReminderStatus.PENDING)
    ids = list(pending.values_list("pk", flat=True))
    assert len(ids) == 4
    return ids


def test_opening_the_link_asks_for_confirmation_and_changes_nothing(browser, patient, visits):
    reminders, history = reminders_of(patient), patient.history.count()

    response = browser.get(link(patient))

    assert response.status_code == 200
    page = response.content.decode()
    assert '<form method="post">' in page
    assert settings.CLINIC_NAME in page and settings.CLINIC_PHONE in page
    for private in (patient.mrn, patient.given_name, patient.family_name, patient.email):
        assert private not in page
    patient.refresh_from_db()
    assert patient.email_reminders is True
    assert patient.history.count() == history
    assert reminders_of(patient) == reminders


def test_the_button_on_the_page_records_the_opt_out(browser, patient, visits):
    pending, history = pending_ids(patient), patient.history.count()

    response = browser.post(link(patient))

    assert response.status_code == 200
    assert "no more appointment reminders" in response.content.decode()
    assert_opted_out(patient, pending, history)


def test_a_mail_clients_one_click_post_records_the_opt_out_without_a_csrf_token(browser, patient, visits):
    pending, history = pending_ids(patient), patient.history.count()

    response = post_one_click(browser, link(patient))

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content.decode() == "You will receive no more e-mail reminders."
    assert_opted_out(patient, pending, history)


def test_the_link_in_a_reminder_e_mail_opts_the_patient_out(browser, patient, visits):
    reminder = Reminder.objects.filter(visit=visits[0]).first()
    header = reminder_message(reminder).extra_headers["List-Unsubscribe"]
    url = header.strip("<>")
    assert url.startswith(settings.SITE_URL)
    pending, history = pending_ids(patient), patient.history.count()

    response = post_one_click(browser, url.removeprefix(settings.SITE_URL))

    assert response.status_code == 200
    assert_opted_out(patient, pending, history)


def test_opting_out_again_changes_nothing_more(browser, patient, visits):
    post_one_click(browser, link(patient))
    reminders, history = reminders_of(patient), patient.history.count()

    again = post_one_click(browser, link(patient))
    page = browser.post(link(patient))

    assert (again.status_code, page.status_code) == (200, 200)
    assert patient.history.count() == history
    assert reminders_of(patient) == reminders


def _tampered(token: str) -> str:
    payload, signature = token.rsplit(":", 1)
    return f"{payload}:{'A' if signature[0] != 'A' else 'B'}{signature[1:]}"


@pytest.mark.parametrize(
    "make_token",
    [
        lambda patient: _tampered(opt_out_token(patient)),
        lambda patient: signing.dumps(str(patient.uuid), salt="another.purpose"),
        lambda patient: signing.dumps(str(uuid.uuid4()), salt=SALT),
        lambda patient: signing.dumps("not-a-uuid", salt=SALT),
        lambda patient: str(patient.uuid),
    ],
    ids=["bad-signature", "other-salt", "no-such-patient", "not-a-public-id", "unsigned-id"],
)
def test_a_link_that_is_not_ours_is_not_found_and_changes_nothing(browser, patient, visits, make_token):
    path = reverse("reminders-opt-out", args=[make_token(patient)])
    reminders, history = reminders_of(patient), patient.history.count()

    responses = [browser.get(path), browser.post(path), post_one_click(browser, path)]

    assert [r.status_code for r in responses] == [404, 404, 404]
    patient.refresh_from_db()
    assert patient.email_reminders is True
    assert patient.history.count() == history
    assert reminders_of(patient) == reminders


def test_the_token_carries_the_signed_public_id_and_nothing_else(patient):
    token = opt_out_token(patient)

    assert signing.loads(token, salt=SALT) == str(patient.uuid)
    payload = token.split(":", 1)[0]
    assert json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))) == str(patient.uuid)
    # The rest is a timestamp and the signature. (Long values only: a short name could turn up in
    # random base64 by chance.)
    for private in (patient.mrn, patient.family_name, patient.email):
        assert private.lower() not in token.lower()
    assert signing.loads(opt_out_token(PatientFactory()), salt=SALT) != str(patient.uuid)


class TenYearsAgo(signing.TimestampSigner):
    def timestamp(self):
        return signing.b62_encode(int(time.time()) - 10 * 365 * 24 * 3600)


def test_the_link_in_an_old_e_mail_still_works(browser, patient, visits):
    old_token = TenYearsAgo(salt=SALT).sign_object(str(patient.uuid))
    path = reverse("reminders-opt-out", args=[old_token])
    pending, history = pending_ids(patient), patient.history.count()

    assert browser.get(path).status_code == 200
    assert post_one_click(browser, path).status_code == 200
    assert_opted_out(patient, pending, history)


def test_only_get_and_post_are_answered(browser, patient):
    assert browser.put(link(patient)).status_code == 405
    assert browser.delete(link(patient)).status_code == 405


def test_the_pages_follow_the_browsers_language(browser, patient):
    confirm = browser.get(link(patient), headers={"accept-language": "de"})
    done = browser.post(link(patient), headers={"accept-language": "de"})

    assert '<html lang="de">' in confirm.content.decode()
    assert '<html lang="de">' in done.content.decode()


def test_an_archived_patient_can_still_withdraw_consent(browser, patient, visits):
    # The record is read-only while archived; the patient's consent is theirs to withdraw regardless
    # (an old reminder's link clicked after the clinic archived them was a 500).
    patient_archive(patient=patient)

    response = post_one_click(browser, link(patient))

    assert response.status_code == 200
    patient.refresh_from_db()
    assert (patient.email_reminders, patient.email_reminders_consented_at) == (False, None)
    assert patient.archived
    assert patient.history.first().history_change_reason == "opt-out by the patient's link"
