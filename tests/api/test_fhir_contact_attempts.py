"""Contact attempts as FHIR ``Communication`` resources (API.md "FHIR R4"; DOMAIN.md section 9).

Beside the sent reminders, in ``Communication?patient=`` and ``Patient/$everything``: an id of their
own, the patient as subject and recipient, the visit's Appointment as what they are about, the
channel as an HL7 ParticipationMode, ``completed`` or ``not-done`` with the outcome as the reason,
and never the note. Every resource validates with the R4B models (``assert_valid``).
"""

from __future__ import annotations

from datetime import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.roles import Role
from followups.calls.services import contact_attempt_record
from followups.codes import ContactChannel, ContactOutcome, ReminderKind
from followups.models import ContactAttempt, Reminder
from followups.services import visit_create
from tests.api.test_call_list_api import days, overdue_patient, today
from tests.api.test_fhir import FHIR, _send, by_type, everything, fhir_json, outcome, ref, search
from tests.followups.conftest import at_clinic

OUTCOME_SYSTEM = "https://hfs-followup.example/fhir/CodeSystem/contact-outcome"
OUTCOME_EXTENSION = "https://hfs-followup.example/fhir/StructureDefinition/contact-outcome"
PARTICIPATION_MODE = "http://terminology.hl7.org/CodeSystem/v3-ParticipationMode"
MEDIUM = {"phone": "PHONE", "email": "EMAILWRIT", "sms": "SMSWRIT", "letter": "MAILWRIT", "in_person": "FACE"}
NOT_DONE = {"no_answer", "wrong_number"}
NOTE = "Daughter says she is in Lisbon until spring"


def attempt(patient, visit=None, *, channel=ContactChannel.PHONE, outcome=ContactOutcome.NO_ANSWER, **more):
    return contact_attempt_record(
        patient=patient, visit=visit, channel=channel, outcome=outcome, note=NOTE, **more
    )


def communication_id(row: ContactAttempt) -> str:
    return f"{row.uuid}-contact-attempt"


# Each outcome once, each channel at least once, with what the outcome needs.
OUTCOMES = [
    (ContactOutcome.NO_ANSWER, ContactChannel.PHONE, {}),
    (ContactOutcome.LEFT_MESSAGE, ContactChannel.SMS, {}),
    (ContactOutcome.WRONG_NUMBER, ContactChannel.PHONE, {}),
    (ContactOutcome.CALL_LATER, ContactChannel.IN_PERSON, {"remind_on": "+3"}),
    (ContactOutcome.AGREED_TO_VISIT, ContactChannel.EMAIL, {"scheduled_for": "+5"}),
    (ContactOutcome.ALREADY_SEEN_ELSEWHERE, ContactChannel.LETTER, {"seen_on": "-2"}),
    (ContactOutcome.DECLINED_FOLLOW_UP, ContactChannel.PHONE, {}),
    (ContactOutcome.MOVED_AWAY, ContactChannel.LETTER, {}),
    (ContactOutcome.DECEASED, ContactChannel.PHONE, {}),
]


def _needs(more: dict) -> dict:
    found = {}
    for name, offset in more.items():
        on = today() + days(int(offset))
        found[name] = at_clinic(on, 10) if name == "scheduled_for" else on
    return found


@pytest.mark.parametrize(("what", "channel", "more"), OUTCOMES, ids=[o for o, _, _ in OUTCOMES])
def test_every_outcome_maps_to_a_valid_communication(clinician, db, what, channel, more):
    patient, visit = overdue_patient(3)
    row = attempt(patient, visit, channel=channel, outcome=what, confirm_outside_window=True, **_needs(more))

    found = by_type(search(clinician, "Communication", patient))["Communication"]
    resource = found[communication_id(row)]

    assert resource["subject"] == ref("Patient", patient) and resource["recipient"] == [
        ref("Patient", patient)
    ]
    assert resource["about"] == [ref("Appointment", visit)]
    assert datetime.fromisoformat(resource["sent"]) == row.at
    assert resource["status"] == ("not-done" if what in NOT_DONE else "completed")
    medium = {c["system"]: c["code"] for c in resource["medium"][0]["coding"]}
    assert medium[PARTICIPATION_MODE] == MEDIUM[channel]
    assert [e["valueCoding"]["code"] for e in resource["extension"] if e["url"] == OUTCOME_EXTENSION] == [
        what
    ]
    if what in NOT_DONE:
        assert [(c["system"], c["code"]) for c in resource["statusReason"]["coding"]] == [
            (OUTCOME_SYSTEM, what)
        ]
    else:
        assert "statusReason" not in resource
    assert not {"payload", "note", "basedOn"} & set(resource)


def test_attempts_sit_beside_sent_reminders_with_ids_of_their_own(api_as, db):
    patient, visit = overdue_patient(3, email_reminders=True)
    booked = visit_create(patient=patient, purpose="Review", scheduled_for=at_clinic(today() + days(20)))
    sent = _send(Reminder.objects.get(visit=booked, kind=ReminderKind.VISIT_7D))
    first = attempt(patient, visit)
    second = attempt(patient, channel=ContactChannel.EMAIL, outcome=ContactOutcome.LEFT_MESSAGE)
    other, _ = overdue_patient(3)
    attempt(other)

    response = api_as(Role.FRONT_DESK).get(f"{FHIR}Communication", {"patient": str(patient.uuid)})
    bundle = fhir_json(response)

    assert set(by_type(bundle)["Communication"]) == {
        str(sent.uuid),
        communication_id(first),
        communication_id(second),
    }
    # An attempt made without a visit is about nothing but the patient.
    assert "about" not in by_type(bundle)["Communication"][communication_id(second)]
    assert NOTE.encode() not in response.content
    assert b"Lisbon" not in response.content


def test_an_attempt_is_read_by_its_id_and_only_by_it(integration, db):
    patient, visit = overdue_patient(3)
    row = attempt(patient, visit, outcome=ContactOutcome.WRONG_NUMBER)

    read = fhir_json(integration.get(f"{FHIR}Communication/{communication_id(row)}"))

    assert read["id"] == communication_id(row) and read["status"] == "not-done"
    assert read["meta"]["lastUpdated"]
    outcome(integration.get(f"{FHIR}Communication/{row.uuid}"), 404, "not-found")
    outcome(integration.get(f"{FHIR}Communication/{row.uuid}-reminder"), 404, "not-found")


def test_everything_holds_the_attempts(clinician, db):
    patient, visit = overdue_patient(3)
    rows = [attempt(patient, visit), attempt(patient, visit, outcome=ContactOutcome.LEFT_MESSAGE)]

    bundle = everything(clinician, patient)

    assert set(by_type(bundle)["Communication"]) == {communication_id(row) for row in rows}
    assert set(by_type(bundle)["Appointment"]) >= {str(visit.uuid)}


def test_the_front_desk_reads_attempts_as_reminders_but_not_everything(api_as, db):
    patient, visit = overdue_patient(3)
    row = attempt(patient, visit)
    front_desk = api_as(Role.FRONT_DESK)

    assert fhir_json(front_desk.get(f"{FHIR}Communication/{communication_id(row)}"))["id"]
    outcome(front_desk.get(f"{FHIR}Patient/{patient.uuid}/$everything"), 403, "forbidden")


def test_a_search_costs_the_same_queries_for_one_attempt_or_ten(api_as, db):
    counts = {}
    for size in (1, 10):
        patient, visit = overdue_patient(3)
        for n in range(size):
            attempt(patient, visit, at=timezone.now() - days(n))
        client = api_as(Role.INTEGRATION_READ)  # each a first request: the same key bookkeeping
        with CaptureQueriesContext(connection) as queries:
            bundle = search(client, "Communication", patient)
        counts[size] = len(queries)
        assert len(by_type(bundle)["Communication"]) == size
    assert counts[1] == counts[10], counts
