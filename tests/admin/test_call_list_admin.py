"""The call list and the lost-to-follow-up list in the staff panel (issue 14, DOMAIN.md section 9):
who sees what, each outcome recorded through a row's form and what it does to the list, refusals
shown on the row, the CSV exports, the patient page's contact history, and a cost that does not grow
with the list."""

import csv
import io
import re

import pytest
from django.contrib.messages import get_messages
from django.utils import formats, timezone

from clinic.admin_csv import csv_cell
from clinic.models import AuditEvent
from followups.calls.admin import PER_PAGE
from followups.calls.selectors import call_list, lost_to_follow_up_list
from followups.codes import CallReason, ContactOutcome, FlagCode, VisitKind, VisitStatus
from followups.flags_store import flags_sync
from followups.models import ContactAttempt, PatientFlag, Slot, Visit
from tests.admin.conftest import CLINICAL_MARKERS, at_clinic, client_for, days, session_template
from tests.factories import PatientFactory, bulk_patients
from tests.followups.conftest import night, record_counts

CALL_URL = "/admin/followups/contactattempt/call-list/"
LOST_URL = "/admin/followups/contactattempt/lost/"
# A purpose that names the treatment, as protocol visits' purposes do.
PURPOSE = "Toxin re-injection PLANTED-PURPOSE"


def overdue_visit(patient, *, ended_ago=7, purpose=PURPOSE, kind=VisitKind.REVIEW) -> Visit:
    """A planned visit whose window closed ``ended_ago`` days ago, unbooked: overdue."""
    today = timezone.localdate()
    visit = Visit.objects.create(
        patient=patient,
        purpose=purpose,
        visit_kind=kind,
        scheduled_for=at_clinic(today - days(ended_ago + 3)),
        window_start=today - days(ended_ago + 6),
        window_end=today - days(ended_ago),
        status=VisitStatus.PLANNED,
        source="manual",
    )
    flags_sync(patient=patient)  # as the nightly run stores it: the lists read the stored flags
    return visit


def due(**fields):
    patient = PatientFactory(
        **{"phone": "+49 30 1234567", "email_reminders": True, "family_name": "Lindqvist", **fields}
    )
    return patient, overdue_visit(patient)


def rows(html: str) -> list[int]:
    """The patients of the page's rows, in order."""
    return [int(pk) for pk in re.findall(r'data-test="call-row" data-patient="(\d+)"', html)]


def row_html(html: str, patient) -> str:
    """One row and its form row."""
    start = html.index(f'id="row-{patient.pk}"')
    end = html.find('class="hfs-call-row"', start)
    return html[start : end if end > 0 else html.index("</tbody>", start)]


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def record(client, patient, visit=None, *, url=CALL_URL, after=None, page=1, channel="phone", **fields):
    """POST a row's form as the browser sends it."""
    data = {"row": patient.pk, f"row{patient.pk}-channel": channel}
    if visit is not None:
        data["visit"] = visit.pk
    if after is not None:
        data["after"] = after
    for name, value in fields.items():
        data[f"row{patient.pk}-{name}"] = value
    return client.post(f"{url}?page={page}", data)


def listed(today=None) -> list[int]:
    return [p.pk for p in call_list(today=today)]


@pytest.fixture
def lindqvist(db):
    return due()


# --- who sees what ------------------------------------------------------------------------------


def test_the_front_desk_sees_each_row_with_its_form_and_nothing_clinical(planted, front_desk, today):
    patient = planted["patient"]
    visit = overdue_visit(patient, ended_ago=40)

    response = front_desk.get(CALL_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert patient.pk in rows(html)
    row = row_html(html, patient)
    assert 'href="tel:+49301234567"' in row and "+49 30 1234567" in row
    assert f'href="/admin/patients/patient/{patient.pk}/page/"' in row
    assert 'data-test="call-consent">yes<' in row
    assert "Review" in row and str(CallReason.WINDOW_CLOSED.label) in row
    assert 'data-test="call-days-overdue">40<' in row
    assert f'data-visit="{visit.pk}"' in row
    assert 'data-test="attempt-form"' in row and "csrfmiddlewaretoken" in row
    for name in ("channel", "outcome", "remind_on", "seen_on", "note", "scheduled_for"):
        assert f'name="row{patient.pk}-{name}"' in row
    # Nothing of the clinical record anywhere on the page: no purpose, no clinical word.
    assert "PLANTED-PURPOSE" not in html and 'data-test="call-purpose"' not in html
    lowered = html.lower()
    for word in ("diagnos", "treatment", "purpose", "toxin", "carbamazepine"):
        assert word not in lowered, word
    for marker in CLINICAL_MARKERS:
        assert marker not in html, marker


@pytest.mark.parametrize("role", ["nurse", "clinician"])
def test_clinicians_and_nurses_see_the_purpose(lindqvist, role, request):
    client = request.getfixturevalue(role)
    patient, _ = lindqvist

    html = client.get(CALL_URL).content.decode()

    assert f'data-test="call-purpose">{PURPOSE}<' in row_html(html, patient)
    # A nurse reads the list; recording an attempt is for those who write contact data.
    assert ('data-test="attempt-form"' in html) is (role == "clinician")


def test_a_nurse_may_not_record_an_attempt(lindqvist, nurse):
    patient, visit = lindqvist

    response = record(nurse, patient, visit, outcome=ContactOutcome.NO_ANSWER)

    assert response.status_code == 403
    assert not ContactAttempt.objects.exists()


def test_staff_without_a_role_are_refused(lindqvist, make_staff):
    client = client_for(make_staff(None))

    assert client.get(CALL_URL).status_code == 403
    assert client.get(f"{CALL_URL}csv/").status_code == 403
    assert client.get(LOST_URL).status_code == 403


def test_the_list_keeps_the_selectors_order_marks_risk_and_unreachable_and_pages_by_50(db, front_desk, today):
    patients = [due(family_name=f"Row{n:02d}")[0] for n in range(PER_PAGE + 5)]
    risky = patients[-1]
    PatientFlag.objects.create(
        patient=risky, code=FlagCode.CONSIDER_MVD_EVALUATION, detail="", since=today - days(3)
    )
    unreachable = patients[0]
    for n in range(3):
        ContactAttempt.objects.create(
            patient=unreachable,
            at=timezone.now() - days(n + 1),
            channel="phone",
            outcome=ContactOutcome.NO_ANSWER,
        )

    first = front_desk.get(CALL_URL).content.decode()
    second = front_desk.get(f"{CALL_URL}?page=2").content.decode()

    assert rows(first) + rows(second) == listed()
    assert len(rows(first)) == PER_PAGE and rows(first)[0] == risky.pk
    assert 'data-test="call-high-risk">High risk<' in row_html(first, risky)
    assert rows(second)[-1] == unreachable.pk
    assert 'data-test="call-unreachable">Unreachable<' in row_html(second, unreachable)
    assert 'data-count="55"' in first


# --- every outcome through the form -------------------------------------------------------------


def test_no_answer_keeps_the_patient_with_the_attempt_shown_and_goes_to_the_next_row(db, front_desk):
    (first, visit), (second, _) = due(family_name="Aalto"), due(family_name="Berg")
    assert listed() == [first.pk, second.pk]

    response = record(
        front_desk, first, visit, after=second.pk, outcome=ContactOutcome.NO_ANSWER, note="8 rings"
    )

    assert response.status_code == 302
    assert response["Location"] == f"{CALL_URL}?page=1#row-{second.pk}"
    assert messages_of(response) == [
        f"{first.given_name} {first.family_name} — No answer: recorded, stays on the list."
    ]
    attempt = ContactAttempt.objects.get()
    assert (attempt.patient, attempt.visit, attempt.outcome, attempt.note) == (
        first,
        visit,
        ContactOutcome.NO_ANSWER,
        "8 rings",
    )
    assert attempt.by.username.startswith("front_desk")
    assert AuditEvent.objects.filter(
        action="create", resource="contactattempt", patient_id=first.uuid
    ).exists()
    html = front_desk.get(CALL_URL).content.decode()
    assert rows(html) == [first.pk, second.pk]
    assert "Phone: No answer" in row_html(html, first)


def test_call_later_hides_the_patient_until_that_day(lindqvist, front_desk, today):
    patient, visit = lindqvist
    on = today + days(9)

    response = record(front_desk, patient, visit, outcome=ContactOutcome.CALL_LATER, remind_on=on.isoformat())

    assert response.status_code == 302
    assert messages_of(response)[0].endswith(f"Call later: hidden until {formats.date_format(on, 'j M Y')}.")
    assert patient.pk not in rows(front_desk.get(CALL_URL).content.decode())
    # The list as of a later day reads what that day's night stored.
    night(today + days(8))
    assert patient.pk not in listed(today + days(8))
    night(on)
    assert patient.pk in listed(on)


def test_agreeing_books_the_slot_chosen_among_those_offered_and_the_patient_leaves(
    lindqvist, no_templates, front_desk, today
):
    patient, visit = lindqvist
    on = today + days(5)
    session = session_template(on=on, label="Review clinic (room 1)").sessions.get(on=on)
    first, second, _ = session.slots.order_by("starts_at")

    plain = front_desk.get(CALL_URL).content.decode()
    opened = front_desk.get(f"{CALL_URL}?page=1&book={visit.pk}").content.decode()

    assert f'href="{CALL_URL}?page=1&amp;book={visit.pk}#row-{patient.pk}"' in plain
    assert 'data-test="attempt-slot"' not in plain
    offered = re.findall(r'data-test="attempt-slot" data-slot="(\d+)" data-inside="(yes|no)"', opened)
    # The window closed a week ago: the nearest free slots after it, marked outside it.
    assert offered[:3] == [(str(s.pk), "no") for s in session.slots.order_by("starts_at")]
    assert len(offered) == 6
    assert "outside the window" in row_html(opened, patient)
    assert 'value="agreed_to_visit" selected' in row_html(opened, patient)

    response = record(front_desk, patient, visit, outcome=ContactOutcome.AGREED_TO_VISIT, slot=second.pk)

    assert response.status_code == 302
    when = formats.date_format(timezone.localtime(second.starts_at), "D j M H:i")
    assert messages_of(response)[0].endswith(f"Booked for {when} (Review clinic (room 1)).")
    visit.refresh_from_db()
    assert (visit.status, visit.slot_id) == (VisitStatus.BOOKED, second.pk)
    assert Slot.objects.get(pk=second.pk).booked == 1 and Slot.objects.get(pk=first.pk).booked == 0
    assert ContactAttempt.objects.get().outcome == ContactOutcome.AGREED_TO_VISIT
    assert patient.pk not in rows(front_desk.get(CALL_URL).content.decode())


def test_agreeing_to_a_free_time_outside_the_window_needs_the_box_ticked(lindqvist, front_desk, today):
    patient, visit = lindqvist
    when = f"{(today + days(3)).isoformat()}T10:30"

    refused = record(front_desk, patient, visit, outcome=ContactOutcome.AGREED_TO_VISIT, scheduled_for=when)
    done = record(
        front_desk,
        patient,
        visit,
        outcome=ContactOutcome.AGREED_TO_VISIT,
        scheduled_for=when,
        confirm_outside_window="on",
    )

    assert refused.status_code == 200
    assert "outside the visit&#x27;s window" in row_html(refused.content.decode(), patient)
    assert done.status_code == 302
    visit.refresh_from_db()
    assert (visit.status, visit.slot_id) == (VisitStatus.BOOKED, None)
    assert timezone.localtime(visit.scheduled_for).strftime("%Y-%m-%d %H:%M") == when.replace("T", " ")
    assert messages_of(done)[0].endswith(
        f"Booked for {formats.date_format(timezone.localtime(visit.scheduled_for), 'D j M H:i')}."
    )


def test_a_missed_visit_agreed_to_is_rebooked_into_one_of_the_next_30_days_slots(
    db, no_templates, front_desk, today
):
    patient = PatientFactory(phone="0301234")
    missed = Visit.objects.create(
        patient=patient,
        purpose="Review",
        scheduled_for=at_clinic(today - days(5)),
        window_start=today - days(7),
        window_end=today - days(3),
        status=VisitStatus.MISSED,
        source="manual",
    )
    flags_sync(patient=patient)  # as the nightly run stores it: the lists read the stored flags
    on = today + days(4)
    slot = session_template(on=on).sessions.get(on=on).slots.order_by("starts_at").first()

    opened = front_desk.get(f"{CALL_URL}?book={missed.pk}").content.decode()
    assert f'data-slot="{slot.pk}" data-inside="yes"' in row_html(opened, patient)
    response = record(front_desk, patient, missed, outcome=ContactOutcome.AGREED_TO_VISIT, slot=slot.pk)

    assert response.status_code == 302
    assert "Rebooked for" in messages_of(response)[0]
    rebooked = Visit.objects.get(rebooked_from=missed)
    assert (rebooked.status, rebooked.slot_id) == (VisitStatus.BOOKED, slot.pk)
    assert patient.pk not in listed()


def test_a_wrong_number_marks_the_contact_data_for_update_on_the_patient_page(
    lindqvist, front_desk, clinician
):
    patient, visit = lindqvist

    response = record(front_desk, patient, visit, outcome=ContactOutcome.WRONG_NUMBER)

    assert response.status_code == 302
    assert messages_of(response)[0].endswith("Wrong number: contact details marked for update.")
    page = f"/admin/patients/patient/{patient.pk}/page/"
    assert f'data-test="flag-{FlagCode.CONTACT_DETAILS_INVALID}"' in clinician.get(page).content.decode()
    assert 'data-test="contact-details-invalid"' in front_desk.get(page).content.decode()
    # Still to reach, by other means: the patient stays on the list.
    assert patient.pk in listed()


def test_seen_elsewhere_completes_the_visit_and_the_patient_leaves(lindqvist, front_desk, today):
    patient, visit = lindqvist
    on = today - days(2)

    response = record(
        front_desk, patient, visit, outcome=ContactOutcome.ALREADY_SEEN_ELSEWHERE, seen_on=on.isoformat()
    )

    assert response.status_code == 302
    visit.refresh_from_db()
    assert (visit.status, timezone.localdate(visit.scheduled_for)) == (VisitStatus.COMPLETED, on)
    assert patient.pk not in listed()


@pytest.mark.parametrize(
    "outcome", [ContactOutcome.DECLINED_FOLLOW_UP, ContactOutcome.MOVED_AWAY, ContactOutcome.DECEASED]
)
def test_an_answer_that_ends_follow_up_takes_the_patient_off_both_lists(
    lindqvist, front_desk, today, outcome
):
    patient, visit = lindqvist

    response = record(front_desk, patient, visit, outcome=outcome)

    assert response.status_code == 302
    assert messages_of(response)[0].endswith("follow-up ended, off the lists.")
    patient.refresh_from_db()
    assert patient.follow_up_ended_on == today
    assert patient.pk not in listed()
    assert patient.pk not in rows(front_desk.get(CALL_URL).content.decode())


def test_left_message_stays_and_three_unanswered_make_the_patient_unreachable(db, front_desk):
    (patient, visit), (other, _) = due(family_name="Aalto"), due(family_name="Berg")
    for outcome in (ContactOutcome.LEFT_MESSAGE, ContactOutcome.NO_ANSWER, ContactOutcome.NO_ANSWER):
        assert record(front_desk, patient, visit, outcome=outcome).status_code == 302

    html = front_desk.get(CALL_URL).content.decode()

    assert rows(html) == [other.pk, patient.pk]
    assert 'data-test="call-unreachable"' in row_html(html, patient)


# --- refusals on the row ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field", "text"),
    [
        ({"outcome": "call_later"}, "remind_on", "Give the day to call again, after today."),
        ({"outcome": "agreed_to_visit"}, "slot", "Book the visit in the same step"),
        ({"outcome": "no_answer", "remind_on": "2020-01-01"}, "remind_on", "Only a call-later attempt"),
        ({"outcome": "already_seen_elsewhere"}, "seen_on", "Give the day the patient was seen elsewhere."),
        ({"outcome": "maybe"}, "outcome", "Select a valid choice."),
        ({"outcome": ""}, "outcome", "This field is required."),
        ({"outcome": "no_answer", "channel": "pigeon"}, "channel", "Select a valid choice."),
        ({"outcome": "call_later", "remind_on": "31/02/2026"}, "remind_on", "Enter a valid date."),
        ({"outcome": "agreed_to_visit", "slot": "99999999"}, "slot", "This slot no longer exists"),
        ({"outcome": "agreed_to_visit", "slot": "²"}, "slot", "This slot no longer exists"),
        (
            {"outcome": "agreed_to_visit", "scheduled_for": "soon"},
            "scheduled_for",
            "Enter a valid date/time.",
        ),
        ({"outcome": "no_answer", "note": "x" * 501}, "note", "at most 500 characters"),
    ],
)
def test_a_refusal_is_shown_on_the_row_and_nothing_is_written(lindqvist, front_desk, fields, field, text):
    patient, visit = lindqvist
    fields = {"channel": "phone", **fields}
    before = record_counts()

    response = record(front_desk, patient, visit, **fields)

    assert response.status_code == 200
    row = row_html(response.content.decode(), patient)
    form = row[row.index('data-test="attempt-form"') :]
    assert 'class="errorlist' in form
    assert text in form.replace("&#x27;", "'")
    # The message sits next to its field (a booking's, in the row's booking box).
    if field == "slot":
        box = form[
            form.index('data-test="attempt-booking"') : form.index(f'name="row{patient.pk}-scheduled_for"')
        ]
        assert "errorlist" in box and text in box.replace("&#x27;", "'")
    else:
        field_at = form.index(f'name="row{patient.pk}-{field}"')
        assert form.rfind("errorlist", 0, field_at) > form.rfind("hfs-field", 0, field_at)
    assert record_counts() == before
    assert not ContactAttempt.objects.exists()


def test_a_post_naming_no_patient_or_another_patients_visit_is_refused_without_error(lindqvist, front_desk):
    patient, visit = lindqvist
    other, other_visit = due(family_name="Zed")

    nobody = front_desk.post(f"{CALL_URL}?page=1", {"row": "abc"})
    foreign = record(front_desk, patient, other_visit, outcome=ContactOutcome.NO_ANSWER)

    assert nobody.status_code == 302 and messages_of(nobody) == ["This patient is not on the list any more."]
    assert foreign.status_code == 200
    assert "This visit belongs to another patient." in row_html(foreign.content.decode(), patient)
    assert not ContactAttempt.objects.exists()


# --- the lost-to-follow-up list -----------------------------------------------------------------


def test_the_lost_list_holds_those_overdue_without_a_visit_for_a_year_with_the_same_form(
    db, front_desk, today
):
    lost, lost_visit = due(family_name="Lost")
    Visit.objects.filter(pk=lost_visit.pk).update(
        window_start=today - days(400),
        window_end=today - days(390),
        scheduled_for=at_clinic(today - days(395)),
    )
    recent, _ = due(family_name="Recent")
    Visit.objects.create(
        patient=recent,
        purpose="Review",
        scheduled_for=at_clinic(today - days(100)),
        window_start=today - days(101),
        window_end=today - days(99),
        status=VisitStatus.COMPLETED,
        source="manual",
    )
    for patient in (lost, recent):  # the rows were written directly: store their flags as a refresh would
        flags_sync(patient=patient)

    html = front_desk.get(LOST_URL).content.decode()

    assert rows(html) == [p.pk for p in lost_to_follow_up_list()] == [lost.pk]
    assert 'data-test="attempt-form"' in row_html(html, lost)
    response = record(
        front_desk,
        lost,
        lost_visit,
        url=LOST_URL,
        outcome=ContactOutcome.CALL_LATER,
        remind_on=(today + days(5)).isoformat(),
    )
    assert response["Location"] == f"{LOST_URL}?page=1#call-rows"
    # No snooze on this list: the patient is still lost, and still shown.
    assert rows(front_desk.get(LOST_URL).content.decode()) == [lost.pk]
    assert "Asked to be called later" in row_html(front_desk.get(LOST_URL).content.decode(), lost)


# --- the CSV exports ----------------------------------------------------------------------------


def read_csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_the_csv_has_the_rows_of_the_list_in_its_order_without_purpose_for_the_front_desk(
    db, front_desk, clinician, today
):
    (first, visit), _ = due(family_name="Aalto"), due(family_name="Berg")
    ContactAttempt.objects.create(
        patient=first, at=at_clinic(today - days(1), 9), channel="phone", outcome=ContactOutcome.NO_ANSWER
    )

    response = front_desk.get(f"{CALL_URL}csv/")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"] == f'attachment; filename="call-list-{today.isoformat()}.csv"'
    header, *body = read_csv(response)
    assert header == [
        "Name",
        "MRN",
        "Phone",
        "E-mail consent",
        "Visit kind",
        "Due day",
        "Window start",
        "Window end",
        "Reason",
        "Days overdue",
        "High risk",
        "Unreachable",
        "Last attempt at",
        "Last attempt channel",
        "Last attempt outcome",
    ]
    assert [row[1] for row in body] == [p.mrn for p in call_list()]
    assert body[[row[1] for row in body].index(first.mrn)] == [
        f"{first.given_name} Aalto",
        first.mrn,
        "'+49 30 1234567",
        "yes",
        "Review",
        visit.due_on.isoformat(),
        visit.window_start.isoformat(),
        visit.window_end.isoformat(),
        "Window closed unbooked",
        "7",
        "no",
        "no",
        f"{(today - days(1)).isoformat()} 09:00",
        "Phone",
        "No answer",
    ]
    assert "PLANTED-PURPOSE" not in response.content.decode()
    assert AuditEvent.objects.filter(path=f"{CALL_URL}csv/", action="read").count() == 2

    clinical = read_csv(clinician.get(f"{CALL_URL}csv/"))
    assert clinical[0][-1] == "Purpose" and {row[-1] for row in clinical[1:]} == {PURPOSE}
    lost = front_desk.get(f"{LOST_URL}csv/")
    assert lost["Content-Disposition"] == f'attachment; filename="lost-to-follow-up-{today.isoformat()}.csv"'
    assert read_csv(lost) == [header]


@pytest.mark.parametrize("value", ["=1+1", "+49 30", "-2", "@SUM(A1)", "\tx", '=HYPERLINK("http://x")'])
def test_a_cell_a_spreadsheet_would_read_as_a_formula_is_quoted(value):
    assert csv_cell(value) == f"'{value}"


def test_names_that_look_like_formulas_reach_the_csv_as_text(db, front_desk):
    due(family_name='=HYPERLINK("http://evil.example")', given_name="@Eve", phone="-1")

    (_, row) = read_csv(front_desk.get(f"{CALL_URL}csv/"))

    assert row[0] == '\'@Eve =HYPERLINK("http://evil.example")'
    assert row[2] == "'-1"


# --- the patient page's contact history ---------------------------------------------------------


def test_the_patient_page_shows_the_contact_history_newest_first_and_links_to_the_form(
    lindqvist, front_desk, nurse, today
):
    patient, visit = lindqvist
    record(front_desk, patient, visit, outcome=ContactOutcome.NO_ANSWER, note="Rang twice")
    record(
        front_desk, patient, visit, outcome=ContactOutcome.CALL_LATER, remind_on=(today + days(3)).isoformat()
    )
    page = f"/admin/patients/patient/{patient.pk}/page/"

    html = front_desk.get(page).content.decode()

    section = html[html.index('id="patient-contacts"') : html.index('id="patient-timeline"')]
    outcomes = re.findall(r'data-test="contact-attempt" data-outcome="([a-z_]+)"', section)
    assert outcomes == [ContactOutcome.CALL_LATER, ContactOutcome.NO_ANSWER]
    assert "Rang twice" in section and f"call again on {(today + days(3)).isoformat()}" in section
    assert "front_desk-" in section and "Review, " in section and "PLANTED-PURPOSE" not in section
    assert 'data-test="contact-attempt-add"' in section
    assert 'data-test="contact-attempt-add"' not in nurse.get(page).content.decode()
    assert 'data-what="contact"' in html


def test_the_record_page_of_a_patient_records_and_goes_back_to_the_patient_page(lindqvist, front_desk):
    patient, visit = lindqvist
    url = f"/admin/followups/contactattempt/record/{patient.pk}/"

    shown = front_desk.get(url)
    done = front_desk.post(
        url,
        {
            "row": patient.pk,
            "visit": visit.pk,
            f"row{patient.pk}-channel": "letter",
            f"row{patient.pk}-outcome": "left_message",
        },
    )

    assert shown.status_code == 200
    assert f'name="visit" value="{visit.pk}"' in shown.content.decode()
    assert "PLANTED-PURPOSE" not in shown.content.decode()
    assert done.status_code == 302
    assert done["Location"] == f"/admin/patients/patient/{patient.pk}/page/#patient-contacts"
    assert ContactAttempt.objects.get().channel == "letter"


def test_a_patient_with_nothing_due_can_still_be_recorded_as_moved_away(db, front_desk, today):
    patient = PatientFactory()
    url = f"/admin/followups/contactattempt/record/{patient.pk}/"

    shown = front_desk.get(url).content.decode()
    done = front_desk.post(
        url,
        {"row": patient.pk, f"row{patient.pk}-channel": "phone", f"row{patient.pk}-outcome": "moved_away"},
    )

    assert 'data-test="attempt-nothing-due"' in shown
    assert done.status_code == 302
    patient.refresh_from_db()
    assert patient.follow_up_ended_on == today


def test_the_record_page_is_closed_to_nurses_and_unknown_patients_are_404(lindqvist, nurse, front_desk):
    patient, _ = lindqvist

    assert nurse.get(f"/admin/followups/contactattempt/record/{patient.pk}/").status_code == 403
    assert front_desk.get("/admin/followups/contactattempt/record/999999/").status_code == 404
    assert front_desk.get("/admin/followups/contactattempt/record/x/").status_code == 404


# --- the attempts' own admin and the dashboard --------------------------------------------------


def test_attempts_are_listed_read_only_with_filters(lindqvist, front_desk):
    patient, visit = lindqvist
    other, _ = due(family_name="Other")
    record(front_desk, patient, visit, outcome=ContactOutcome.NO_ANSWER)
    record(front_desk, other, None, outcome=ContactOutcome.WRONG_NUMBER)
    base = "/admin/followups/contactattempt/"

    everyone = front_desk.get(base)
    one = front_desk.get(f"{base}?patient={patient.pk}")
    wrong = front_desk.get(f"{base}?outcome__exact=wrong_number")

    assert everyone.status_code == 200 and len(everyone.context["cl"].result_list) == 2
    assert [a.patient_id for a in one.context["cl"].result_list] == [patient.pk]
    assert [a.patient_id for a in wrong.context["cl"].result_list] == [other.pk]
    assert front_desk.get(f"{base}?channel__exact=email").context["cl"].result_list.count() == 0
    assert front_desk.get(f"{base}add/").status_code == 403
    attempt = ContactAttempt.objects.get(patient=patient)
    detail = front_desk.get(f"{base}{attempt.pk}/change/")
    assert detail.status_code == 200 and "PLANTED-PURPOSE" not in detail.content.decode()
    assert front_desk.post(f"{base}{attempt.pk}/delete/").status_code == 403


def test_the_dashboard_links_to_both_lists_with_their_counts(db, front_desk, today):
    due(family_name="One")
    lost, visit = due(family_name="Two")
    Visit.objects.filter(pk=visit.pk).update(window_start=today - days(400), window_end=today - days(390))
    flags_sync(patient=lost)  # the row was changed directly: store its flags as a refresh would

    html = front_desk.get("/admin/").content.decode()

    assert re.search(rf'href="{CALL_URL}"[^>]*data-test="dashboard-calls-call_list" data-count="2"', html)
    assert re.search(rf'href="{LOST_URL}"[^>]*data-test="dashboard-calls-lost" data-count="1"', html)


# --- the cost -----------------------------------------------------------------------------------


def bulk_due(count: int, today) -> None:
    """``count`` patients with an overdue visit each, written in two queries; their flags then
    stored as the nightly run stores them (the lists read the stored flags)."""
    patients = bulk_patients(count, today)
    Visit.objects.bulk_create(
        Visit(
            patient=p,
            purpose=PURPOSE,
            scheduled_for=at_clinic(today - days(10 + n % 30)),
            window_start=today - days(14 + n % 30),
            window_end=today - days(7 + n % 30),
            status=VisitStatus.PLANNED,
            source="manual",
        )
        for n, p in enumerate(patients)
    )
    for patient in patients:
        flags_sync(patient=patient, today=today)


@pytest.mark.parametrize("count", [10, 500])
def test_the_page_costs_the_same_whatever_the_length_of_the_list(
    db, front_desk, today, count, django_assert_max_num_queries
):
    bulk_due(count, today)
    front_desk.get(CALL_URL)  # the session and the user, as on any later page

    # The session, the user and its role, two of Django's permission checks; the count, the page
    # of patients, their visits; the audit of the rows shown.
    with django_assert_max_num_queries(9):
        html = front_desk.get(CALL_URL).content.decode()
    with django_assert_max_num_queries(9):
        lost = front_desk.get(LOST_URL)

    assert len(rows(html)) == min(count, PER_PAGE)
    assert lost.status_code == 200


@pytest.mark.parametrize("count", [10, 500])
def test_the_csv_costs_the_same_whatever_the_length_of_the_list(
    db, front_desk, today, count, django_assert_max_num_queries
):
    bulk_due(count, today)

    with django_assert_max_num_queries(6):
        response = front_desk.get(f"{CALL_URL}csv/")

    assert len(read_csv(response)) == count + 1


@pytest.mark.parametrize("count", [10, 500])
def test_opening_a_rows_slots_adds_a_fixed_cost(
    db, no_templates, clinician, today, count, django_assert_max_num_queries
):
    bulk_due(count, today)
    session_template(on=today + days(3))
    visit = Visit.objects.order_by("window_end", "id").first()

    # The page's nine, and the free slots of that row's visit (inside its window, then after it).
    with django_assert_max_num_queries(11):
        html = clinician.get(f"{CALL_URL}?book={visit.pk}").content.decode()

    assert html.count('data-test="attempt-slot"') == 6
