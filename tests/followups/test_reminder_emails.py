"""The reminder e-mail (DOMAIN.md section 6): what it names, what it never names, its headers and
its calendar event.

The patient's record is full of clinical sentinels (diagnosis, treatment and assessment notes,
the family name, the visit's purpose); every test scans the whole message as it goes out, headers
and attachment included, both as raw bytes and decoded part by part.
"""

import re
from datetime import date, datetime, time, timedelta
from email import message_from_bytes, policy
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core import signing
from django.urls import resolve
from django.utils import dateformat, timezone
from icalendar import Calendar

from followups import services as followups
from followups.codes import ReminderKind, VisitStatus
from followups.models import Reminder
from followups.optout import opt_out
from followups.patient_links import OPT_OUT_SALT as SALT
from followups.patient_links import rebooking_url
from followups.reminders.messages import reminder_context, reminder_message
from followups.visit_moves import visit_move
from patients import codes
from tests.factories import PatientFactory, diagnosis_for, treatment_for

D7, D1, MISSED = ReminderKind.VISIT_7D, ReminderKind.VISIT_1D, ReminderKind.MISSED_VISIT
NEW_YORK = "America/New_York"
ADDRESS = "ada.example@patients.example"
SENTINELS = {
    "family name": "Sentinelfamily-9d2e",
    "diagnosis notes": "SENTINEL-DIAGNOSIS-4b7c",
    "treatment notes": "SENTINEL-TREATMENT-e18a",
    "assessment notes": "SENTINEL-ASSESSMENT-70f3",
    "visit purpose": "MVD review SENTINEL-PURPOSE-5a91",
}
# The condition, its treatments and drugs, in the words a mail could slip them in.
FORBIDDEN_WORDS = (
    "spasm",
    "hemifacial",
    "MVD",
    "microvascular",
    "decompression",
    "botulinum",
    "toxin",
    "carbamazepine",
    "oxcarbazepine",
)
# Fixed and far ahead, so that every reminder of it is still to come whatever today is.
YEAR = date.today().year + 3
VISIT_TIME = datetime(YEAR, 6, 17, 14, 30, tzinfo=ZoneInfo(NEW_YORK))
MAIL_DOMAIN = urlsplit(settings.SITE_URL).hostname


@pytest.fixture
def patient(db):
    patient = PatientFactory(
        given_name="Ada",
        family_name=SENTINELS["family name"],
        email=ADDRESS,
        email_reminders=True,
        timezone=NEW_YORK,
    )
    followups.assessment_record(
        patient=patient, assessed_on=date(2024, 2, 1), spasms_per_day=12, notes=SENTINELS["assessment notes"]
    )
    return patient


@pytest.fixture
def surgery(patient):
    diagnosis = diagnosis_for(patient, notes=SENTINELS["diagnosis notes"])
    return treatment_for(diagnosis, codes.TreatmentKind.MVD, notes=SENTINELS["treatment notes"])


@pytest.fixture
def visit(patient, surgery):
    """Booked at VISIT_TIME, due within the days around it: it can be rescheduled in that window."""
    on = timezone.localdate(VISIT_TIME)
    return followups.visit_create(
        patient=patient,
        treatment=surgery,
        purpose=SENTINELS["visit purpose"],
        scheduled_for=VISIT_TIME,
        window_start=on - timedelta(days=3),
        window_end=on + timedelta(days=7),
    )


def reminder_of(visit, kind) -> Reminder:
    return Reminder.objects.select_related("visit__patient").get(
        visit=visit, kind=kind, visit_time=visit.scheduled_for
    )


@pytest.fixture
def missed_reminder(patient, surgery):
    today = timezone.localdate()
    when = datetime.combine(today + timedelta(days=10), time(11), tzinfo=ZoneInfo(NEW_YORK))
    visit = followups.visit_create(patient=patient, purpose=SENTINELS["visit purpose"], scheduled_for=when)
    followups.visits_mark_missed_due(today=today + timedelta(days=12))
    visit.refresh_from_db()
    return reminder_of(visit, MISSED)


def parsed(message):
    return message_from_bytes(message.message().as_bytes(), policy=policy.default)


def decoded_parts(email) -> dict[str, str]:
    """Each leaf part's decoded text, by content type."""
    return {
        part.get_content_type(): part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")
        for part in email.walk()
        if not part.is_multipart()
    }


def body(message, content_type="text/plain") -> str:
    return decoded_parts(parsed(message))[content_type]


def assert_names_nothing_clinical(message):
    email = parsed(message)
    # The opt-out token is random base64: a three-letter word turns up in one of a few hundred.
    token = urlsplit(str(email["List-Unsubscribe"]).strip().strip("<>")).path.split("/")[-2]
    assert len(token) > 40

    def scrubbed(text: str) -> str:
        return text.replace(token, "<token>").lower()

    raw = scrubbed(message.message().as_bytes().decode("utf-8"))
    headers = {name: scrubbed(str(value)) for name, value in email.items()}
    parts = [scrubbed(content) for content in decoded_parts(email).values()]
    for text in (raw, *headers.values(), *parts):
        for what, sentinel in SENTINELS.items():
            assert sentinel.lower() not in text, what
        for word in FORBIDDEN_WORDS:
            assert word.lower() not in text, word
    # "HFS" stands for the condition too. The sender's display name comes from DEFAULT_FROM_EMAIL,
    # a deployment's setting; everything the reminder itself renders is checked.
    for name, value in headers.items():
        if name != "From":
            assert "hfs" not in value, name
    for content in parts:
        assert "hfs" not in content


def calendar_of(message) -> Calendar:
    email = parsed(message)
    [part] = [p for p in email.walk() if p.get_content_type() == "text/calendar"]
    assert part.get_filename() == "appointment.ics"
    assert part.get_content_charset() == "utf-8"
    # Read without the modern policy, which would quietly merge a doubled parameter.
    [raw_part] = [p for p in message_from_bytes(email.as_bytes()).walk() if p.get_filename()]
    assert raw_part.get_params() == [("text/calendar", ""), ("charset", "utf-8")]
    return Calendar.from_ical(part.get_payload(decode=True))


def event_of(message):
    [event] = calendar_of(message).walk("VEVENT")
    return event


# --- what it says -----------------------------------------------------------------------------


@pytest.mark.parametrize("kind", [D7, D1])
def test_a_visit_reminder_names_the_first_name_clinic_place_and_time_in_the_patients_zone(visit, kind):
    message = reminder_message(reminder_of(visit, kind))

    assert message.to == [ADDRESS]
    assert settings.CLINIC_NAME in message.subject
    expected = {
        "Dear Ada,",
        settings.CLINIC_NAME,
        settings.CLINIC_ADDRESS,
        settings.CLINIC_PHONE,
        f"June 17, {YEAR}",
        "2:30 p.m.",
        NEW_YORK,
    }
    for content_type in ("text/plain", "text/html"):
        text = body(message, content_type)
        for part in expected:
            assert part in text, (content_type, part)
        # 14:30 in New York is 20:30 at the clinic (Berlin): the patient's zone is the one shown.
        assert "8:30 p.m." not in text
        assert "opt-out" in text
    assert f"June 17, {YEAR}" in message.subject
    if kind == D1:
        # Absolute, never "tomorrow": a reminder sent late must still name the right day.
        assert "at 2:30 p.m." in message.subject and "tomorrow" not in message.subject.lower()


def test_the_missed_visit_email_asks_to_rebook_and_carries_no_calendar_event(missed_reminder):
    message = reminder_message(missed_reminder)

    local = missed_reminder.visit_time.astimezone(ZoneInfo(NEW_YORK))
    assert message.subject == f"We missed you at {settings.CLINIC_NAME}: please book a new appointment"
    text = body(message)
    assert "Dear Ada," in text
    assert "11 a.m." in text
    assert dateformat.format(local, "N j, Y") in text
    assert "Please choose a new time:" in text and f"Or call us on {settings.CLINIC_PHONE}." in text
    assert rebooking_url(missed_reminder.visit) in text
    assert message.attachments == []
    assert "text/calendar" not in {part.get_content_type() for part in parsed(message).walk()}
    assert_names_nothing_clinical(message)


@pytest.mark.parametrize("kind", [D7, D1])
def test_no_visit_reminder_names_the_diagnosis_treatment_notes_or_purpose(visit, kind):
    assert_names_nothing_clinical(reminder_message(reminder_of(visit, kind)))


def test_the_templates_see_only_the_allow_listed_context(visit):
    context = reminder_context(reminder_of(visit, D1))

    assert set(context) == {
        "kind",
        "first_name",
        "clinic_name",
        "clinic_address",
        "clinic_phone",
        "visit_date",
        "visit_time",
        "time_zone",
        "opt_out_url",
    }
    assert all(isinstance(value, str) for value in context.values())


def test_a_german_speaking_patient_gets_the_message_rendered_in_german(patient, visit):
    patient.preferred_language = "de"
    patient.save(update_fields=["preferred_language"])

    message = reminder_message(reminder_of(visit, D7))

    # No translations of the project's own strings exist yet: German dates and times do.
    text, html = body(message), body(message, "text/html")
    assert f"17. Juni {YEAR}" in text and "14:30" in text
    assert '<html lang="de">' in html
    assert_names_nothing_clinical(message)


# --- headers ----------------------------------------------------------------------------------


def test_list_unsubscribe_points_at_the_one_click_opt_out_of_this_patient(patient, visit):
    sent = reminder_message(reminder_of(visit, D1))
    message = parsed(sent)

    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = str(message["List-Unsubscribe"]).strip()
    assert unsubscribe.startswith("<") and unsubscribe.endswith(">")
    # On the wire as a plain <URL> (folded at most), never an RFC 2047 encoded word that mail
    # clients would not read as a link.
    raw = sent.message().as_bytes()
    assert re.search(rb"\nList-Unsubscribe:\s+" + re.escape(unsubscribe.encode()) + rb"\n", raw)
    url = urlsplit(unsubscribe[1:-1])
    assert f"{url.scheme}://{url.netloc}" == settings.SITE_URL
    match = resolve(url.path)
    assert match.func is opt_out
    assert signing.loads(match.kwargs["token"], salt=SALT) == str(patient.uuid)
    assert message["Auto-Submitted"] == "auto-generated"
    # Issue 19: List-Unsubscribe without List-Id is scored as spam; the id names the site only.
    assert message["List-Id"] == f"<reminders.{urlsplit(settings.SITE_URL).hostname}>"


def test_each_reminder_has_a_message_id_of_its_own_that_never_changes(visit):
    week_before, day_before = reminder_of(visit, D7), reminder_of(visit, D1)

    first = parsed(reminder_message(week_before))["Message-ID"]
    again = parsed(reminder_message(Reminder.objects.get(pk=week_before.pk)))["Message-ID"]
    other = parsed(reminder_message(day_before))["Message-ID"]

    assert first == again == f"<reminder-{week_before.uuid}@{MAIL_DOMAIN}>"
    assert other != first


# --- the calendar event -----------------------------------------------------------------------


def test_the_calendar_event_is_the_appointment_with_a_uid_per_visit(patient, visit):
    week_before = event_of(reminder_message(reminder_of(visit, D7)))
    day_before = event_of(reminder_message(reminder_of(visit, D1)))
    other_visit = followups.visit_create(
        patient=patient, purpose="Check", scheduled_for=VISIT_TIME + timedelta(days=30)
    )
    other = event_of(reminder_message(reminder_of(other_visit, D1)))

    assert str(week_before["UID"]) == str(day_before["UID"]) == f"visit-{visit.uuid}@{MAIL_DOMAIN}"
    assert str(other["UID"]) != str(day_before["UID"])
    assert day_before.decoded("DTSTART") == VISIT_TIME
    assert day_before.decoded("DTEND") == VISIT_TIME + timedelta(minutes=30)
    assert int(day_before["SEQUENCE"]) == 0
    assert str(day_before["LOCATION"]) == settings.CLINIC_ADDRESS
    assert settings.CLINIC_NAME in str(day_before["SUMMARY"])
    assert settings.CLINIC_PHONE in str(day_before["DESCRIPTION"])


def test_a_reschedule_keeps_the_uid_and_grows_the_sequence(visit):
    first_uid = str(event_of(reminder_message(reminder_of(visit, D1)))["UID"])

    for sequence, shift in ((1, timedelta(days=2)), (2, timedelta(days=3, hours=1))):
        moved = visit_move(visit=visit, to=VisitStatus.BOOKED, scheduled_for=VISIT_TIME + shift)
        event = event_of(reminder_message(reminder_of(moved, D1)))

        assert str(event["UID"]) == first_uid
        assert int(event["SEQUENCE"]) == sequence
        assert event.decoded("DTSTART") == VISIT_TIME + shift
