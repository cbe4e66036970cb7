"""What the schemathesis run (test_schemathesis.py) found, pinned as plain tests.

Each was a 500 or a response the schema does not describe, reached by a generated input; each test
sends that input (or its kind) again and checks the answer the contract asks for.
"""

from __future__ import annotations

import base64
import re
from datetime import date, datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest

from followups import services as follow_up
from followups.codes import VisitStatus
from followups.visit_moves import visit_move
from tests.api.conftest import API
from tests.api.seeding import aware
from tests.factories import PatientFactory, diagnosis_for

# RFC 3339 (the schema's "date-time") and FHIR both want an offset in whole minutes, or Z.
RFC3339_OFFSET = re.compile(r"(Z|[+-][0-9]{2}:[0-9]{2})$")


def cursor_at(position: str) -> str:
    """A cursor as DRF encodes one, at ``position`` (a client can craft it)."""
    return base64.b64encode(urlencode({"o": 0, "r": 0, "p": position}).encode()).decode()


@pytest.mark.parametrize("resource", ["visits", "diagnoses", "assessments", "treatments", "patients"])
def test_an_offset_postgresql_does_not_keep_is_the_same_moment_in_utc(clinician, db, resource):
    # +21:00 is a valid ISO 8601 offset; PostgreSQL refuses offsets beyond 15:59 (it was a 500).
    response = clinician.get(f"{API}{resource}/", {"updated_since": "2024-01-01T00:00:00+21:00"})
    assert response.status_code == 200, response.content


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-05:00"])
def test_a_date_time_with_no_moment_in_utc_is_a_400(clinician, db, moment):
    response = clinician.get(f"{API}visits/", {"updated_since": moment})
    assert response.status_code == 400
    assert set(response.json()) == {"updated_since"}


@pytest.mark.parametrize(
    ("worklist", "a_position", "no_position"),
    [
        # The due list is ordered by a date-time; the overdue list by a date, and (v2) the flagged
        # list too: `since` is the date of the fact behind the flag.
        ("due", "2024-01-01T00:00:00+21:00", "0001-01-01T00:00:00+01:00"),
        ("overdue", "2024-01-01", "2024-02-30"),
        ("flagged", "2024-01-01", "2024-01-01T00:00:00+21:00"),
    ],
)
def test_a_crafted_worklist_cursor_is_a_page_or_a_404_never_a_500(
    clinician, db, worklist, a_position, no_position
):
    path = f"{API}worklists/{worklist}/"
    crafted = clinician.get(path, {"cursor": cursor_at(a_position)})
    assert crafted.status_code == 200, crafted.content
    not_ours = clinician.get(path, {"cursor": cursor_at(no_position)})
    assert not_ours.status_code == 404, not_ours.content


@pytest.fixture
def missed_and_planned(db):
    patient = PatientFactory()  # born 1968-05-17
    missed = visit_move(
        visit=follow_up.visit_create(patient=patient, purpose="Review", scheduled_for=aware(5)),
        to=VisitStatus.MISSED,
        now=aware(6),  # as on the day after it: a visit is missed only once it has passed
    )
    planned = follow_up.visit_create(
        patient=patient, purpose="Review", scheduled_for=aware(6), status=VisitStatus.PLANNED
    )
    return missed, planned


def test_a_visit_is_not_rebooked_before_the_patients_birth(clinician, missed_and_planned):
    # Year 333 was accepted, and answered in Berlin's local mean time (+00:53:28): no date-time.
    missed, _ = missed_and_planned
    response = clinician.post(
        f"{API}visits/{missed.uuid}/rebook/", {"scheduled_for": "0333-08-09T07:13:57Z"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "scheduled_for": ["This date is before the patient's date of birth."],
        "error_codes": {"scheduled_for": ["before_birth"]},
    }
    assert not hasattr(type(missed).objects.get(pk=missed.pk), "rebooked_as")


def test_a_visit_is_not_booked_before_the_patients_birth(clinician, missed_and_planned):
    _, planned = missed_and_planned
    response = clinician.patch(
        f"{API}visits/{planned.uuid}/", {"scheduled_for": "1960-01-01T10:00:00+01:00"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "scheduled_for": ["This date is before the patient's date of birth."],
        "error_codes": {"scheduled_for": ["before_birth"]},
    }
    planned.refresh_from_db()
    assert planned.status == VisitStatus.PLANNED


def test_a_time_of_local_mean_time_is_answered_in_utc(clinician, db):
    """Before 1893 Berlin kept local mean time, +00:53:28: an offset RFC 3339 and FHIR cannot write.
    A visit of a patient born then is answered in UTC, the same moment."""
    patient = PatientFactory(date_of_birth=date(1880, 1, 1))
    diagnosis_for(patient, diagnosed_on=date(1885, 1, 1))
    moment = datetime(1885, 6, 1, 10, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    visit = follow_up.visit_create(patient=patient, purpose="Review", scheduled_for=moment)

    answered = clinician.get(f"{API}visits/{visit.uuid}/").json()["scheduled_for"]
    start = clinician.get(f"/fhir/Appointment/{visit.uuid}").json()["start"]

    for value in (answered, start):
        assert RFC3339_OFFSET.search(value), value
        assert datetime.fromisoformat(value) == moment
    # A time of today's offsets keeps the clinic's zone.
    recent = follow_up.visit_create(patient=patient, purpose="Review", scheduled_for=aware(3))
    answered = clinician.get(f"{API}visits/{recent.uuid}/").json()["scheduled_for"]
    assert datetime.fromisoformat(answered).utcoffset() in (timedelta(hours=1), timedelta(hours=2))
