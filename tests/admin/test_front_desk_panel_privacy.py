"""The front desk books visits by the kind of clinic they need and never reads their purpose (issue 20):
a purpose names the treatment ("Re-injection visit (day 84)", "Facial nerve check (day 10)", "Blood
count" of a carbamazepine course). Every page of the staff panel that shows a visit is opened as front
desk and as clinician: the purposes of real planned visits are absent for the one and present for the
other, and the front desk reads the kind of clinic instead."""

import re

import pytest
from django.contrib.messages import get_messages
from django.utils import timezone

from followups import services as followups
from followups.codes import VisitKind, VisitStatus
from followups.models import Reminder, Visit
from followups.visit_moves import visit_move
from patients import codes
from tests.admin.conftest import at_clinic, days, session_template
from tests.factories import PatientFactory, diagnosis_for, treatment_for

# Words of the seeded protocols' purposes (DOMAIN.md section 5) that name a treatment: the toxin
# session's, the carbamazepine course's, the surgery's.
PURPOSES = (
    "Re-injection",
    "Efficacy and side-effect",
    "Medication review",
    "Blood count",
    "Facial nerve",
)


def page_url(patient) -> str:
    return f"/admin/patients/patient/{patient.pk}/page/"


def visit_url(visit, page: str = "change") -> str:
    return f"/admin/followups/visit/{visit.pk}/{page}/"


def named(visit) -> str:
    return str(visit.get_visit_kind_display())


def purposes_in(html: str) -> list[str]:
    return [word for word in PURPOSES if word in html]


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def surgery(no_templates, today):
    """A decompression three days ago, its facial nerve check (day 10) planned a week ahead, and a
    post-operative clinic that day with places free."""
    patient = PatientFactory(family_name="Brennan", given_name="Orla", email_reminders=True)
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(200))
    treatment_for(diagnosis, codes.TreatmentKind.MVD, started_on=today - days(3))
    check = patient.visits.get(purpose__startswith="Facial nerve check")
    on = timezone.localdate(check.scheduled_for)
    clinic = session_template(
        on=on, kinds=(VisitKind.POST_OP_CHECK,), label="Thursday clinic (room 4)", capacity=2
    )
    return {"check": check, "session": clinic.sessions.get(on=on)}


@pytest.fixture
def record(planted, surgery, today):
    """The planted patient's carbamazepine course with its visits and a toxin session ten days ago
    with its review (day 21) ahead; its re-injection visit, moved back to a window that closed
    yesterday, missed and rebooked; and the surgery above."""
    patient = planted["patient"]
    toxin = treatment_for(
        planted["diagnosis"], codes.TreatmentKind.BOTULINUM_TOXIN, started_on=today - days(10)
    )
    reinjection = patient.visits.get(treatment=toxin, purpose__startswith="Re-injection")
    Visit.objects.filter(pk=reinjection.pk).update(
        scheduled_for=at_clinic(today - days(20)), window_start=today - days(20), window_end=today - days(1)
    )
    reinjection = visit_move(visit=Visit.objects.get(pk=reinjection.pk), to=VisitStatus.MISSED)
    rebooked = followups.visit_rebook(visit=reinjection, scheduled_for=at_clinic(today + days(5)))
    return {**planted, **surgery, "toxin": toxin, "reinjection": reinjection, "rebooked": rebooked}


def front_desk_pages(record) -> list[str]:
    """Every page of the panel that shows the record's visits to whoever books them."""
    patient, check = record["patient"], record["check"]
    visits = list(Visit.objects.filter(patient__in=[patient, check.patient]))
    reminders = list(Reminder.objects.filter(visit__in=visits))
    assert reminders, "the planted visits have reminders"
    on = timezone.localdate(check.scheduled_for).isoformat()
    return [
        "/admin/",
        "/admin/followups/visit/",
        "/admin/followups/visit/?worklist=today",
        "/admin/followups/visit/?worklist=week",
        "/admin/followups/visit/?worklist=overdue",
        f"/admin/followups/visit/?q={patient.mrn}",
        *(visit_url(visit) for visit in visits),
        *(visit_url(visit, "act") for visit in visits),
        page_url(patient),
        page_url(check.patient),
        f"{page_url(check.patient)}?book={check.pk}",
        f"{page_url(patient)}?book={record['reinjection'].pk}",
        "/admin/followups/reminder/",
        *(f"/admin/followups/reminder/{reminder.pk}/change/" for reminder in reminders),
        f"/admin/followups/clinicsession/week/?on={on}",
        f"/admin/followups/clinicsession/day/?on={on}",
        f"/admin/followups/clinicsession/{record['session'].pk}/cancel/",
        "/admin/followups/contactattempt/call-list/",
        "/admin/followups/contactattempt/lost/",
        "/admin/followups/contactattempt/call-list/csv/",
        f"/admin/followups/contactattempt/record/{patient.pk}/",
        "/admin/patients/patient/",
        f"/admin/patients/patient/{check.patient.pk}/change/",
    ]


def test_no_page_the_front_desk_opens_names_a_visits_purpose(record, front_desk):
    for url in front_desk_pages(record):
        response = front_desk.get(url)
        assert response.status_code == 200, url
        assert purposes_in(response.content.decode()) == [], url


def test_the_same_pages_name_every_purpose_to_a_clinician(record, clinician):
    """The scan above can fail: a clinician's pages carry the very purposes it looks for."""
    seen = "".join(clinician.get(url).content.decode() for url in front_desk_pages(record))

    assert purposes_in(seen) == list(PURPOSES)


# --- the visit list -------------------------------------------------------------------------------


def visit_rows(html: str) -> dict[int, str]:
    """Each row of the visit list, by visit id (read from its actions link)."""
    rows = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    return {int(m.group(1)): row for row in rows if (m := re.search(r'data-test="visit-actions-(\d+)"', row))}


def test_the_visit_list_shows_the_front_desk_the_kind_of_clinic_in_place_of_the_purpose(record, front_desk):
    rows = visit_rows(
        front_desk.get("/admin/followups/visit/?q=" + record["check"].patient.mrn).content.decode()
    )

    check = record["check"]
    assert named(check) == "Post-operative check"
    assert "Post-operative check" in rows[check.pk]
    assert "Facial nerve" not in rows[check.pk]


@pytest.mark.parametrize("who", ["clinician", "nurse"])
def test_the_visit_list_shows_clinicians_and_nurses_the_purpose(record, request, who):
    client = request.getfixturevalue(who)

    rows = visit_rows(client.get("/admin/followups/visit/?q=" + record["check"].patient.mrn).content.decode())

    assert "Facial nerve check (day 10)" in rows[record["check"].pk]


@pytest.mark.parametrize(
    "lookup",
    [
        "purpose__icontains=Re-injection",
        "purpose=Re-injection visit (day 84)",
        "treatment__id__exact={treatment}",
        "treatment={treatment}",
        "diagnosis__isnull=False",
        "protocol_day=84",
        "protocol_step__id__exact=1",
        "protocol_step__protocol__id__exact=1",
    ],
)
def test_the_front_desk_cannot_find_visits_by_purpose_or_treatment_through_the_address(
    record, front_desk, clinician, lookup
):
    query = lookup.format(treatment=record["toxin"].pk)

    refused = front_desk.get(f"/admin/followups/visit/?{query}")
    answered = clinician.get(f"/admin/followups/visit/?{query}")

    assert refused.status_code == 400
    assert answered.status_code == 200


def test_a_filtered_list_tells_a_clinician_which_visits_match(record, clinician):
    html = clinician.get("/admin/followups/visit/?purpose__icontains=Re-injection").content.decode()

    assert set(visit_rows(html)) == {record["reinjection"].pk, record["rebooked"].pk}


# --- a visit's page, its history and its actions --------------------------------------------------


def test_a_visits_page_shows_the_front_desk_its_kind_and_nothing_of_its_treatment(record, front_desk):
    rebooked = record["rebooked"]

    html = front_desk.get(visit_url(rebooked)).content.decode()

    assert purposes_in(html) == []
    assert "Injection clinic" in html
    breadcrumbs = re.search(r'<div class="breadcrumbs">(.*?)</div>', html, re.S).group(1)
    assert "Injection clinic" in breadcrumbs
    # The missed visit it rebooks, named by kind, day and state.
    missed_on = timezone.localdate(record["reinjection"].scheduled_for).isoformat()
    assert f"Injection clinic ({missed_on}, missed)" in html
    for field in (
        "field-purpose",
        "field-treatment",
        "field-diagnosis",
        "field-protocol_step",
        "field-protocol_day",
    ):
        assert field not in html, field
    assert visit_url(rebooked, "history") not in html


def test_a_visits_page_shows_a_clinician_its_purpose_treatment_and_history(record, clinician):
    rebooked = record["rebooked"]

    html = clinician.get(visit_url(rebooked)).content.decode()

    assert "Re-injection visit (day 84)" in html
    for field in ("field-purpose", "field-treatment", "field-rebooked_from"):
        assert field in html, field
    assert visit_url(rebooked, "history") in html


def test_a_visits_history_is_refused_to_the_front_desk_and_open_to_a_clinician(record, front_desk, clinician):
    visit = record["reinjection"]
    version = visit.history.earliest()
    pages = [visit_url(visit, "history"), f"{visit_url(visit, 'history')}{version.history_id}/"]

    for url in pages:
        assert front_desk.get(url).status_code == 403, url
        response = clinician.get(url)
        assert response.status_code == 200, url
        assert "Re-injection visit (day 84)" in response.content.decode(), url


def test_the_actions_page_names_the_visit_by_its_kind_for_the_front_desk(record, front_desk, clinician):
    check = record["check"]

    desk = front_desk.get(visit_url(check, "act")).content.decode()
    clinic = clinician.get(visit_url(check, "act")).content.decode()

    assert "<title>Post-operative check: actions" in desk
    assert re.search(r'data-test="visit-act-named">Post-operative check —', desk)
    assert "Facial nerve check (day 10): actions" in clinic


@pytest.mark.parametrize(
    "who, shown", [("front_desk", "Injection clinic ("), ("clinician", "Re-injection visit")]
)
def test_the_message_after_an_action_names_the_visit_as_its_reader_may(record, request, who, shown):
    client, visit = request.getfixturevalue(who), record["rebooked"]

    response = client.post(
        visit_url(visit, "act"), {"action": "cancel", "cancel-reason": "Moved abroad"}, follow=True
    )

    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.CANCELLED
    [message] = messages_of(response)
    assert message.startswith(f"Cancel: done ({shown}")
    if who == "front_desk":
        assert purposes_in(message + response.content.decode()) == []


def test_booking_a_slot_from_the_page_tells_the_front_desk_the_kind_of_clinic(record, front_desk):
    check, session = record["check"], record["session"]
    slot = session.slots.order_by("starts_at").first()

    offered = front_desk.get(f"{page_url(check.patient)}?book={check.pk}").content.decode()
    response = front_desk.post(visit_url(check, "book-slot"), {"slot": slot.pk}, follow=True)

    assert f'data-slot="{slot.pk}"' in offered
    assert Visit.objects.get(pk=check.pk).slot_id == slot.pk
    [message] = messages_of(response)
    assert message.startswith("Post-operative check: booked for ")
    assert purposes_in(message + response.content.decode()) == []


# --- the patient page -----------------------------------------------------------------------------


def cell(html: str, visit) -> str:
    return re.search(rf'data-test="visit-{visit.pk}-named">(.*?)</td>', html, re.S).group(1)


def timeline(html: str) -> list[str]:
    return re.findall(
        r'data-test="timeline-event" data-what="visit".*?<a href="#visit-\d+">(.*?)</a>', html, re.S
    )


def test_the_patient_page_names_each_visit_by_its_kind_for_the_front_desk(record, front_desk):
    patient = record["patient"]

    html = front_desk.get(page_url(patient)).content.decode()

    for visit in patient.visits.all():
        assert cell(html, visit) == named(visit)
    events = timeline(html)
    assert events and all(event.split(": ", 1)[1] in VisitKind.labels for event in events)
    assert "Visit missed: Injection clinic" in events
    assert "<th>Kind of clinic</th>" in html


def test_the_patient_page_names_each_visit_by_its_purpose_for_a_clinician(record, clinician):
    patient = record["patient"]

    html = clinician.get(page_url(patient)).content.decode()

    for visit in patient.visits.all():
        assert cell(html, visit).startswith(visit.purpose)
    assert "Visit missed: Re-injection visit (day 84)" in timeline(html)


# --- reminders and sessions -----------------------------------------------------------------------


def test_a_reminders_page_names_its_visit_by_kind_day_and_state_for_the_front_desk(
    record, front_desk, clinician
):
    reminder = Reminder.objects.filter(visit=record["check"]).first()
    url = f"/admin/followups/reminder/{reminder.pk}/change/"
    day = timezone.localdate(record["check"].scheduled_for).isoformat()

    desk = front_desk.get(url).content.decode()
    clinic = clinician.get(url).content.decode()

    assert f"Post-operative check ({day}, planned)" in desk
    assert "Facial nerve" not in desk
    assert "Facial nerve check (day 10)" in clinic


def test_the_session_cancel_page_lists_the_kind_of_each_appointment_for_the_front_desk(
    record, front_desk, clinician
):
    check, session = record["check"], record["session"]
    visit_move(visit=check, to=VisitStatus.BOOKED, slot=session.slots.order_by("starts_at").first())
    url = f"/admin/followups/clinicsession/{session.pk}/cancel/"

    desk = front_desk.get(url).content.decode()
    clinic = clinician.get(url).content.decode()

    assert f'<li data-visit="{check.pk}">' in desk
    assert "(" + check.patient.mrn + "): Post-operative check</li>" in desk
    assert "(" + check.patient.mrn + "): Facial nerve check (day 10)</li>" in clinic
