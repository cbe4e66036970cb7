"""Follow-up over the API (API.md): visits, assessments, outcomes and flags, reminders, worklists.

Every request goes through a real token client of its role against PostgreSQL, and every write
through the follow-up services, so these tests see what an integrator sees: fields, filters, the
services' messages as 400s, the role matrix, fixed query counts and the audit trail.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clinic.models import AuditEvent
from followups import services as followups
from followups.codes import (
    AssessmentStatus,
    FlagCode,
    ReminderKind,
    ReminderStatus,
    Trigger,
    VisitSource,
    VisitStatus,
)
from followups.flags_store import flags_sync
from followups.models import Assessment, AssessmentTrigger, PatientFlag, Reminder, Visit
from followups.visit_moves import visit_move
from patients import codes
from tests.api.conftest import API
from tests.factories import PatientFactory, diagnosis_for, treatment_for

VISIT_FIELDS = {
    "id",
    "patient",
    "treatment",
    "purpose",
    "scheduled_for",
    "window_start",
    "window_end",
    "status",
    "source",
    "cancel_reason",
    "sequence",
    "rebooked_from",
    "rebooked_as",
    "visit_kind",
    "slot",
    "due_on",
    "clinic_cancelled_at",
    "created_at",
    "updated_at",
}
ASSESSMENT_FIELDS = {
    "id",
    "patient",
    "visit",
    "assessed_on",
    "status",
    "spasms_per_day",
    "episode_duration_seconds",
    "cohen_albert_grade",
    "contraction_pattern",
    "smc_grade",
    "jankovic_severity",
    "jankovic_frequency",
    "jankovic_anchors",
    "jankovic_total",
    "house_brackmann_grade",
    "hfs7_items",
    "hfs7_total",
    "triggers",
    "adverse_effects",
    "notes",
    "source",
    "created_at",
    "updated_at",
}
OUTCOME_FIELDS = {
    "treatment",
    "treatment_kind",
    "category",
    "baseline",
    "current",
    "spasms_per_day_change_pct",
    "duration_change_pct",
    "grade_change",
    "soriano_baron",
    "days_to_spasm_free",
    "benefit_days",
    "qol_meaningful_improvement",
    "rule_version",
    "computed_at",
}
REMINDER_FIELDS = {
    "id",
    "visit",
    "patient",
    "kind",
    "scheduled_for",
    "visit_time",
    "status",
    "status_reason",
    "attempts",
    "sent_at",
    "last_error",
    "created_at",
    "updated_at",
}
PATIENT_BRIEF_FIELDS = {"id", "mrn", "given_name", "family_name"}
FLAG_FIELDS = {"id", "code", "detail", "since", "acknowledged_by", "acknowledged_at", "note"}


# --- helpers and fixtures -----------------------------------------------------------------------


def today() -> date:
    return timezone.localdate()


def days(n: int) -> timedelta:
    return timedelta(days=n)


def at(day: date, hour: int = 11) -> datetime:
    """``hour`` o'clock on ``day`` in the clinic's time zone."""
    return datetime.combine(day, time(hour), tzinfo=ZoneInfo(settings.CLINIC_TIME_ZONE))


def visit_on(patient, day: date, hour: int = 11, **fields) -> Visit:
    """A visit arranged by hand through its service (booked unless said otherwise)."""
    return followups.visit_create(patient=patient, purpose="Review", scheduled_for=at(day, hour), **fields)


def url(resource: str, obj=None, action: str = "") -> str:
    path = f"{API}{resource}/"
    if obj is not None:
        path += f"{obj if isinstance(obj, str) else obj.uuid}/"
    return path + (f"{action}/" if action else "")


def ids(response) -> list[str]:
    assert response.status_code == 200, response.data
    return [row["id"] for row in response.data["results"]]


@pytest.fixture
def ada(db):
    """A patient who agreed to e-mail reminders, not diagnosed yet: no visit is planned for her."""
    return PatientFactory(given_name="Ada", family_name="Lovelace", email_reminders=True)


def diagnosed(patient, days_ago: int = 30):
    """A confirmed primary diagnosis (without imaging: the patient is flagged ``imaging_missing``)."""
    return diagnosis_for(patient, diagnosed_on=today() - days(days_ago))


@pytest.fixture
def toxin(ada):
    """A toxin session of 14 days ago: its protocol plans visits ahead, the first one still planned."""
    return treatment_for(diagnosed(ada), codes.TreatmentKind.BOTULINUM_TOXIN, started_on=today() - days(14))


@pytest.fixture
def planned(toxin) -> Visit:
    return Visit.objects.filter(treatment=toxin, status=VisitStatus.PLANNED).order_by("scheduled_for").first()


# --- visits -------------------------------------------------------------------------------------


def test_a_visit_reads_with_the_fields_of_the_contract(clinician, toxin, planned):
    response = clinician.get(url("visits", planned))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == VISIT_FIELDS
    assert (body["id"], body["patient"], body["treatment"]) == (
        str(planned.uuid),
        str(toxin.patient.uuid),
        str(toxin.uuid),
    )
    assert (body["status"], body["source"], body["cancel_reason"], body["sequence"]) == (
        "planned",
        "protocol",
        "",
        0,
    )
    assert parse_datetime(body["scheduled_for"]) == planned.scheduled_for
    assert (body["window_start"], body["window_end"]) == (
        planned.window_start.isoformat(),
        planned.window_end.isoformat(),
    )
    assert (body["purpose"], body["rebooked_from"], body["rebooked_as"]) == (planned.purpose, None, None)
    assert (body["visit_kind"], body["slot"]) == (planned.visit_kind, None)
    # The toxin's day-21 review aims at its protocol day, whatever time planning gave it.
    assert body["due_on"] == (toxin.started_on + days(21)).isoformat()
    assert body["clinic_cancelled_at"] is None
    assert response["ETag"].startswith('"')


def test_visits_filter_by_patient_status_and_time(clinician, ada):
    first = visit_on(ada, today() + days(1))
    planned = visit_on(ada, today() + days(3), status=VisitStatus.PLANNED)
    third = visit_on(ada, today() + days(5))
    visit_on(PatientFactory(), today() + days(3))
    Visit.objects.filter(pk=first.pk).update(updated_at=timezone.now() - days(2))

    mine = {"patient": str(ada.uuid)}
    assert sorted(ids(clinician.get(url("visits"), mine))) == sorted(
        str(v.uuid) for v in (first, planned, third)
    )
    assert ids(clinician.get(url("visits"), {**mine, "status": "planned"})) == [str(planned.uuid)]
    # From inclusive, to exclusive: the visit at exactly scheduled_to is left out.
    window = {
        "scheduled_from": at(today() + days(3)).isoformat(),
        "scheduled_to": at(today() + days(5)).isoformat(),
    }
    assert ids(clinician.get(url("visits"), {**mine, **window})) == [str(planned.uuid)]
    since = (timezone.now() - days(1)).isoformat()
    assert sorted(ids(clinician.get(url("visits"), {**mine, "updated_since": since}))) == sorted(
        str(v.uuid) for v in (planned, third)
    )


@pytest.mark.parametrize(
    "params, field",
    [
        ({"colour": "blue"}, "colour"),
        ({"status": "postponed"}, "status"),
        ({"patient": "not-a-uuid"}, "patient"),
        ({"scheduled_from": "2025-03-01T10:00:00"}, "scheduled_from"),
        ({"scheduled_to": "tomorrow"}, "scheduled_to"),
    ],
)
def test_a_visit_list_refuses_a_parameter_it_does_not_know_or_cannot_read(clinician, params, field):
    response = clinician.get(url("visits"), params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_a_detail_refuses_list_parameters(clinician, planned):
    response = clinician.get(url("visits", planned), {"page_size": 5})

    assert response.status_code == 400
    assert response.json() == {"page_size": ["Unknown query parameter."]}


def test_staff_arrange_a_visit_by_hand_once_per_idempotency_key(front_desk, ada):
    body = {"patient": str(ada.uuid), "purpose": "Botox review", "scheduled_for": "2031-05-02T10:30:00+02:00"}

    first = front_desk.post(url("visits"), body, format="json", HTTP_IDEMPOTENCY_KEY="visit-1")
    retry = front_desk.post(url("visits"), body, format="json", HTTP_IDEMPOTENCY_KEY="visit-1")

    assert (first.status_code, retry.status_code) == (201, 201)
    assert retry.json() == first.json()
    visit = Visit.objects.get(patient=ada)
    created = first.json()
    assert created["id"] == str(visit.uuid)
    assert (created["source"], created["status"]) == ("manual", "booked")
    assert "treatment" not in created and "purpose" not in created  # the front desk's view (issue 20)
    assert parse_datetime(created["scheduled_for"]) == datetime.fromisoformat("2031-05-02T10:30:00+02:00")
    assert (created["window_start"], created["window_end"]) == ("2031-05-02", "2031-05-02")
    assert first["ETag"]


def test_a_planned_visit_can_be_arranged_for_a_treatment_within_a_window(nurse, toxin):
    body = {
        "patient": str(toxin.patient.uuid),
        "treatment": str(toxin.uuid),
        "purpose": "Extra review",
        "scheduled_for": at(today() + days(20)).isoformat(),
        "window_start": (today() + days(18)).isoformat(),
        "window_end": (today() + days(24)).isoformat(),
        "status": "planned",
    }

    response = nurse.post(url("visits"), body, format="json")

    assert response.status_code == 201, response.data
    visit = Visit.objects.get(uuid=response.json()["id"])
    assert (visit.treatment, visit.status, visit.source) == (toxin, VisitStatus.PLANNED, VisitSource.MANUAL)
    assert (visit.window_start, visit.window_end) == (today() + days(18), today() + days(24))


@pytest.mark.parametrize(
    "change, errors",
    [
        (
            {"scheduled_for": "2031-05-02T10:30:00"},
            {"scheduled_for": ["Give a date and time with its UTC offset."]},
        ),
        ({"status": "completed"}, {"status": ['"completed" is not a valid choice.']}),
        # The service's refusals carry their codes beside the messages.
        (
            {"treatment": "other"},
            {
                "treatment": ["This belongs to another patient."],
                "error_codes": {"treatment": ["other_patient"]},
            },
        ),
        ({"treatment": str(uuid.uuid4())}, {"treatment": ["Object with uuid={id} does not exist."]}),
        ({"sequence": 3}, {"sequence": ["Unknown field."]}),
        (
            {"window_start": "2031-05-03", "window_end": "2031-05-01"},
            {
                "window_end": ["The window ends before it starts."],
                "error_codes": {"window_end": ["date_order"]},
            },
        ),
    ],
)
def test_a_visit_that_cannot_be_arranged_is_a_400_and_nothing_is_created(clinician, ada, change, errors):
    other = treatment_for(diagnosis_for(PatientFactory()), codes.TreatmentKind.MEDICATION)
    if change.get("treatment") == "other":
        change = {"treatment": str(other.uuid)}
    body = {
        "patient": str(ada.uuid),
        "purpose": "Review",
        "scheduled_for": "2031-05-02T10:30:00+02:00",
        **change,
    }

    response = clinician.post(url("visits"), body, format="json")

    assert response.status_code == 400
    expected = {
        field: messages
        if field == "error_codes"
        else [message.format(id=change.get("treatment")) for message in messages]
        for field, messages in errors.items()
    }
    assert response.json() == expected
    assert not Visit.objects.filter(patient=ada).exists()


def test_patch_books_a_planned_visit_then_reschedules_and_unbooks_it(front_desk, planned):
    agreed = at(planned.window_start + days(1), 15)
    booked = front_desk.patch(url("visits", planned), {"scheduled_for": agreed.isoformat()}, format="json")
    assert booked.status_code == 200, booked.data
    assert (booked.json()["status"], booked.json()["sequence"]) == ("booked", 1)
    assert parse_datetime(booked.json()["scheduled_for"]) == agreed

    later = agreed + timedelta(hours=2)
    moved = front_desk.patch(
        url("visits", planned), {"status": "booked", "scheduled_for": later.isoformat()}, format="json"
    )
    assert (moved.json()["status"], moved.json()["sequence"]) == ("booked", 2)

    unbooked = front_desk.patch(url("visits", planned), {"status": "planned"}, format="json")
    assert unbooked.status_code == 200
    planned.refresh_from_db()
    assert (planned.status, planned.scheduled_for, planned.sequence) == (VisitStatus.PLANNED, later, 2)


def test_status_booked_alone_books_the_visit_at_its_planned_time(nurse, planned):
    response = nurse.patch(url("visits", planned), {"status": "booked"}, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["sequence"]) == ("booked", 0)
    assert parse_datetime(response.json()["scheduled_for"]) == planned.scheduled_for


@pytest.mark.parametrize(
    "change, on, status, reason",
    [
        # Completed from its day on, missed once its time has passed, cancelled any time.
        ({"status": "completed"}, 0, VisitStatus.COMPLETED, ""),
        ({"status": "missed"}, -2, VisitStatus.MISSED, ""),
        (
            {"status": "cancelled", "cancel_reason": "  Moved abroad "},
            2,
            VisitStatus.CANCELLED,
            "Moved abroad",
        ),
    ],
)
def test_patch_moves_a_visit_through_its_service(nurse, ada, change, on, status, reason):
    visit = visit_on(ada, today() + days(on), hour=23 if on == 0 else 11)

    response = nurse.patch(url("visits", visit), change, format="json")

    assert response.status_code == 200, response.data
    visit.refresh_from_db()
    assert (visit.status, visit.cancel_reason) == (status, reason)
    assert (response.json()["status"], response.json()["cancel_reason"]) == (status, reason)


@pytest.mark.parametrize(
    "before, change, message",
    [
        (
            VisitStatus.COMPLETED,
            {"status": "planned"},
            "A completed visit can become: booked; not planned.",
        ),
        (
            VisitStatus.COMPLETED,
            {"status": "cancelled", "cancel_reason": "Moved abroad"},
            "A completed visit can become: booked; not cancelled.",
        ),
        (VisitStatus.PLANNED, {"status": "planned"}, "This visit is planned already."),
        (
            VisitStatus.MISSED,
            {"status": "completed"},
            "A missed visit can become: booked; not completed.",
        ),
        (
            VisitStatus.CANCELLED,
            {"status": "booked", "reason": "Booked again"},
            "A cancelled visit stays cancelled: book a new visit instead.",
        ),
        (
            VisitStatus.CANCELLED,
            {"scheduled_for": "2031-01-01T09:00:00+01:00", "confirm_outside_window": True},
            "A cancelled visit stays cancelled: book a new visit instead.",
        ),
    ],
)
def test_a_move_the_state_machine_forbids_is_the_services_400(clinician, ada, before, change, message):
    # Two days ago: it can be completed or missed now.
    visit = visit_on(ada, today() - days(2), status=VisitStatus.PLANNED)
    if before != VisitStatus.PLANNED:
        visit_move(visit=visit, to=before, reason="Moved abroad")
    stored = Visit.objects.filter(pk=visit.pk).values().get()

    response = clinician.patch(url("visits", visit), change, format="json")

    assert response.status_code == 400
    assert response.json() == {"status": [message], "error_codes": {"status": ["invalid_transition"]}}
    assert Visit.objects.filter(pk=visit.pk).values().get() == stored


REASON_REQUIRED = {
    "cancel_reason": ["Say why the visit is cancelled."],
    "error_codes": {"cancel_reason": ["reason_required"]},
}


@pytest.mark.parametrize(
    "change, errors",
    [
        ({"status": "cancelled"}, REASON_REQUIRED),
        ({"status": "cancelled", "cancel_reason": "  "}, REASON_REQUIRED),
        (
            {},
            {
                "non_field_errors": [
                    "Give the new status, or a new scheduled_for to book or reschedule the visit."
                ]
            },
        ),
        ({"cancel_reason": "Ill"}, {"cancel_reason": ["A reason is given only with status cancelled."]}),
        (
            {"status": "completed", "scheduled_for": "2031-01-01T09:00:00+01:00"},
            {"scheduled_for": ["A new time books the visit: give it alone or with status booked."]},
        ),
        (
            {"scheduled_for": "2031-01-01T09:00:00"},
            {"scheduled_for": ["Give a date and time with its UTC offset."]},
        ),
        ({"purpose": "Other"}, {"purpose": ["Unknown field."]}),
    ],
)
def test_a_patch_no_service_can_make_is_a_400(clinician, ada, change, errors):
    visit = visit_on(ada, today() + days(2))

    response = clinician.patch(url("visits", visit), change, format="json")

    assert response.status_code == 400
    assert response.json() == errors
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.BOOKED


def test_a_stale_if_match_is_a_412_and_the_visit_is_unchanged(clinician, ada):
    # Due within the last five days: rescheduled inside its window, then completed.
    visit = visit_on(ada, today() - days(3), window_start=today() - days(5), window_end=today())
    etag = clinician.get(url("visits", visit))["ETag"]
    moved = clinician.patch(
        url("visits", visit), {"scheduled_for": at(today() - days(2)).isoformat()}, format="json"
    )
    assert moved.status_code == 200, moved.data

    stale = clinician.patch(url("visits", visit), {"status": "completed"}, format="json", HTTP_IF_MATCH=etag)
    fresh_etag = clinician.get(url("visits", visit))["ETag"]
    fresh = clinician.patch(
        url("visits", visit), {"status": "completed"}, format="json", HTTP_IF_MATCH=fresh_etag
    )

    assert (stale.status_code, fresh.status_code) == (412, 200)
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.COMPLETED
    assert Visit.history.filter(id=visit.pk, status=VisitStatus.COMPLETED).count() == 1


def test_a_missed_visit_is_rebooked_once(nurse, ada):
    missed = visit_on(ada, today() - days(2))
    visit_move(visit=missed, to=VisitStatus.MISSED)
    when = at(today() + days(9), 10).isoformat()

    first = nurse.post(
        url("visits", missed, "rebook"), {"scheduled_for": when}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    replay = nurse.post(
        url("visits", missed, "rebook"), {"scheduled_for": when}, format="json", HTTP_IDEMPOTENCY_KEY="k"
    )
    again = nurse.post(url("visits", missed, "rebook"), {"scheduled_for": when}, format="json")

    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.json() == first.json()
    rebooked = first.json()
    assert (rebooked["rebooked_from"], rebooked["status"], rebooked["source"]) == (
        str(missed.uuid),
        "booked",
        "manual",
    )
    assert rebooked["purpose"] == missed.purpose
    assert nurse.get(url("visits", missed)).json()["rebooked_as"] == rebooked["id"]
    assert again.status_code == 400
    assert again.json() == {
        "status": ["This missed visit was rebooked already."],
        "error_codes": {"status": ["already_rebooked"]},
    }
    assert Visit.objects.filter(patient=ada).count() == 2


def test_only_a_missed_visit_is_rebooked(nurse, ada):
    booked = visit_on(ada, today() + days(2))

    response = nurse.post(
        url("visits", booked, "rebook"), {"scheduled_for": at(today() + days(9)).isoformat()}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "status": ["Only a missed visit is rebooked; book or reschedule this one."],
        "error_codes": {"status": ["invalid_transition"]},
    }


def test_rebooking_an_unknown_visit_is_a_404(nurse):
    response = nurse.post(
        url("visits", str(uuid.uuid4()), "rebook"),
        {"scheduled_for": "2031-01-01T09:00:00+01:00"},
        format="json",
    )

    assert response.status_code == 404


def test_visits_are_neither_replaced_nor_deleted(clinician, ada):
    visit = visit_on(ada, today() + days(2))

    put = clinician.put(url("visits", visit), {"status": "completed"}, format="json")
    delete = clinician.delete(url("visits", visit))

    assert (put.status_code, delete.status_code) == (405, 405)
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.BOOKED


def test_integration_read_reads_visits_and_writes_none(integration, ada):
    visit = visit_on(ada, today() - days(2))
    visit_move(visit=visit, to=VisitStatus.MISSED)
    body = {"patient": str(ada.uuid), "purpose": "Review", "scheduled_for": "2031-05-02T10:30:00+02:00"}

    assert integration.get(url("visits", visit)).status_code == 200
    assert integration.post(url("visits"), body, format="json").status_code == 403
    assert integration.patch(url("visits", visit), {"status": "completed"}, format="json").status_code == 403
    assert (
        integration.post(
            url("visits", visit, "rebook"), {"scheduled_for": body["scheduled_for"]}, format="json"
        )
    ).status_code == 403
    assert Visit.objects.filter(patient=ada).count() == 1


def test_a_visit_more_than_ten_years_ahead_is_refused(clinician, ada):
    far = {"patient": str(ada.uuid), "purpose": "Review", "scheduled_for": "9999-12-31T12:00:00+01:00"}
    window = {**far, "scheduled_for": "2031-05-02T10:30:00+02:00", "window_end": "9999-12-31"}

    assert clinician.post(url("visits"), far, format="json").json() == {
        "scheduled_for": ["This is more than ten years ahead."],
        "error_codes": {"scheduled_for": ["too_far_ahead"]},
    }
    assert clinician.post(url("visits"), window, format="json").json() == {
        "window_end": ["This is more than ten years ahead."],
        "error_codes": {"window_end": ["too_far_ahead"]},
    }
    visit = visit_on(ada, today() + days(2))
    moved = clinician.patch(
        url("visits", visit),
        {"scheduled_for": far["scheduled_for"], "confirm_outside_window": True},
        format="json",
    )
    assert moved.json() == {
        "scheduled_for": ["This is more than ten years ahead."],
        "error_codes": {"scheduled_for": ["too_far_ahead"]},
    }


# --- assessments --------------------------------------------------------------------------------


def full_assessment(patient, **overrides) -> dict:
    body = {
        "patient": str(patient.uuid),
        "assessed_on": (today() - days(1)).isoformat(),
        "spasms_per_day": "12.5",
        "episode_duration_seconds": 3,
        "cohen_albert_grade": 3,
        "contraction_pattern": "clonic",
        "smc_grade": 2,
        "jankovic_severity": 2,
        "jankovic_frequency": 3,
        "jankovic_anchors": "hfs_adapted",
        "house_brackmann_grade": 1,
        "hfs7_items": [1, 2, 3, 4, 0, 1, 2],
        "triggers": ["stress", "fatigue"],
        "adverse_effects": ["ptosis"],
        "notes": "Worse when tired.",
    }
    body.update(overrides)
    return body


def test_an_assessment_is_recorded_with_its_seven_hfs7_answers(nurse, ada):
    response = nurse.post(url("assessments"), full_assessment(ada), format="json")

    assert response.status_code == 201, response.data
    body = response.json()
    assert set(body) == ASSESSMENT_FIELDS
    assessment = Assessment.objects.get(uuid=body["id"])
    assert [getattr(assessment, f"hfs7_item_{n}") for n in range(1, 8)] == [1, 2, 3, 4, 0, 1, 2]
    assert (body["hfs7_items"], body["hfs7_total"], body["jankovic_total"]) == ([1, 2, 3, 4, 0, 1, 2], 13, 5)
    assert (body["patient"], body["visit"], body["status"]) == (str(ada.uuid), None, "final")
    assert (body["spasms_per_day"], body["episode_duration_seconds"]) == (12.5, 3.0)
    assert (body["cohen_albert_grade"], body["smc_grade"], body["house_brackmann_grade"]) == (3, 2, 1)
    assert (body["triggers"], body["adverse_effects"]) == (["fatigue", "stress"], ["ptosis"])
    assert (body["contraction_pattern"], body["jankovic_anchors"]) == ("clonic", "hfs_adapted")
    assert body["source"] == "nurse"


def test_only_the_date_is_required_and_no_hfs7_answers_read_as_null(nurse, ada):
    body = {"patient": str(ada.uuid), "assessed_on": today().isoformat(), "hfs7_items": None}

    response = nurse.post(url("assessments"), body, format="json")

    assert response.status_code == 201, response.data
    created = response.json()
    assert (created["hfs7_items"], created["hfs7_total"], created["spasms_per_day"]) == (None, None, None)
    assert (created["triggers"], created["contraction_pattern"]) == ([], "")


@pytest.mark.parametrize(
    "change, field, code",
    [
        ({"hfs7_items": [1, 2, 3]}, "hfs7_items", None),
        ({"hfs7_items": [0, 0, 0, 0, 0, 0, 5]}, "hfs7_items", None),
        ({"hfs7_items": [0, 0, 0, None, 0, 0, 0]}, "hfs7_items", None),
        ({"cohen_albert_grade": 5}, "cohen_albert_grade", None),
        ({"smc_grade": 0}, "smc_grade", None),
        ({"house_brackmann_grade": 7}, "house_brackmann_grade", None),
        ({"spasms_per_day": "-1"}, "spasms_per_day", None),
        # The service's refusals (not the input's) carry their codes beside the messages.
        ({"triggers": ["stress", "stress"]}, "triggers", "duplicate"),
        ({"triggers": ["sneezing"]}, "triggers", None),
        ({"assessed_on": (today() + days(3)).isoformat()}, "assessed_on", "in_future"),
        ({"status": "entered_in_error"}, "status", None),
        ({"hfs7_total": 13}, "hfs7_total", None),
    ],
)
def test_an_assessment_out_of_its_scales_is_a_400(nurse, ada, change, field, code):
    response = nurse.post(url("assessments"), full_assessment(ada, **change), format="json")

    assert response.status_code == 400
    body = response.json()
    assert body.pop("error_codes", None) == (None if code is None else {field: [code]})
    assert list(body) == [field]
    assert not Assessment.objects.filter(patient=ada).exists()


def test_an_assessment_at_a_visit_of_another_patient_is_refused(nurse, ada):
    visit = visit_on(PatientFactory(), today() - days(1))

    response = nurse.post(url("assessments"), full_assessment(ada, visit=str(visit.uuid)), format="json")

    assert response.status_code == 400
    assert response.json() == {
        "visit": ["This visit belongs to another patient."],
        "error_codes": {"visit": ["other_patient"]},
    }


def test_an_assessment_at_a_visit_completes_the_visit(nurse, ada):
    visit = visit_on(ada, today() - days(1))

    response = nurse.post(url("assessments"), full_assessment(ada, visit=str(visit.uuid)), format="json")

    assert response.status_code == 201
    assert response.json()["visit"] == str(visit.uuid)
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.COMPLETED


def test_an_assessment_at_a_visit_still_ahead_is_refused_on_the_visit(nurse, ada):
    ahead = today() + days(3)
    visit = visit_on(ada, ahead)

    response = nurse.post(url("assessments"), full_assessment(ada, visit=str(visit.uuid)), format="json")

    assert response.status_code == 400
    assert response.json() == {
        "visit": [
            f"This visit is still ahead: it can be completed from {ahead.day} {ahead:%B} {ahead.year} on."
        ],
        "error_codes": {"visit": ["still_ahead"]},
    }
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.BOOKED
    assert not Assessment.objects.filter(patient=ada).exists()


def test_an_assessment_recorded_at_a_visit_is_changed_later(nurse, ada):
    visit = visit_on(ada, today() - days(1))
    created = nurse.post(
        url("assessments"), full_assessment(ada, visit=str(visit.uuid)), format="json"
    ).json()

    response = nurse.patch(url("assessments", created["id"]), {"spasms_per_day": 4}, format="json")

    assert response.status_code == 200, response.data
    assert (response.json()["spasms_per_day"], response.json()["visit"]) == (4.0, str(visit.uuid))
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.COMPLETED


def test_patch_changes_some_measures_and_keeps_the_rest(nurse, ada):
    created = nurse.post(url("assessments"), full_assessment(ada), format="json").json()

    response = nurse.patch(
        url("assessments", created["id"]), {"spasms_per_day": 4, "triggers": ["talking"]}, format="json"
    )

    assert response.status_code == 200, response.data
    changed = response.json()
    assert (changed["spasms_per_day"], changed["triggers"]) == (4.0, ["talking"])
    assert (changed["hfs7_items"], changed["adverse_effects"], changed["smc_grade"]) == (
        created["hfs7_items"],
        ["ptosis"],
        2,
    )


def test_put_replaces_the_assessment_and_clears_what_it_leaves_out(clinician, ada):
    created = clinician.post(url("assessments"), full_assessment(ada), format="json").json()
    replacement = {"patient": str(ada.uuid), "assessed_on": created["assessed_on"], "cohen_albert_grade": 1}

    response = clinician.put(url("assessments", created["id"]), replacement, format="json")

    assert response.status_code == 200, response.data
    body = response.json()
    assert body["cohen_albert_grade"] == 1
    assert (body["spasms_per_day"], body["hfs7_items"], body["triggers"], body["notes"]) == (
        None,
        None,
        [],
        "",
    )
    assert not AssessmentTrigger.objects.filter(assessment__uuid=created["id"]).exists()


def test_an_assessment_stays_with_its_patient(clinician, ada):
    created = clinician.post(url("assessments"), full_assessment(ada), format="json").json()

    response = clinician.patch(
        url("assessments", created["id"]), {"patient": str(PatientFactory().uuid)}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {"patient": ["A record stays with its patient."]}


def test_patch_entered_in_error_retracts_and_a_retracted_assessment_changes_no_more(nurse, ada):
    created = nurse.post(url("assessments"), full_assessment(ada), format="json").json()
    target = url("assessments", created["id"])

    mixed = nurse.patch(target, {"status": "entered_in_error", "notes": "typo"}, format="json")
    retracted = nurse.patch(target, {"status": "entered_in_error"}, format="json")
    changed = nurse.patch(target, {"spasms_per_day": 2}, format="json")

    assert mixed.status_code == 400
    assert list(mixed.json()) == ["status"]
    assert (retracted.status_code, retracted.json()["status"]) == (200, "entered_in_error")
    assert changed.status_code == 400
    assert changed.json() == {
        "status": ["A retracted assessment is not changed; record a new one."],
        "error_codes": {"status": ["invalid"]},
    }
    stored = Assessment.objects.get(uuid=created["id"])
    assert (stored.status, stored.spasms_per_day, stored.notes) == (
        AssessmentStatus.ENTERED_IN_ERROR,
        Decimal("12.5"),
        "Worse when tired.",
    )


def test_assessments_filter_by_patient_visit_and_status(clinician, ada):
    visit = visit_on(ada, today() - days(1))
    at_visit = followups.assessment_record(patient=ada, assessed_on=today() - days(1), visit=visit)
    retracted = followups.assessment_retract(
        assessment=followups.assessment_record(patient=ada, assessed_on=today() - days(2))
    )
    followups.assessment_record(patient=PatientFactory(), assessed_on=today())

    mine = {"patient": str(ada.uuid)}
    assert sorted(ids(clinician.get(url("assessments"), mine))) == sorted(
        [str(at_visit.uuid), str(retracted.uuid)]
    )
    assert ids(clinician.get(url("assessments"), {"visit": str(visit.uuid)})) == [str(at_visit.uuid)]
    assert ids(clinician.get(url("assessments"), {**mine, "status": "entered_in_error"})) == [
        str(retracted.uuid)
    ]
    assert clinician.get(url("assessments"), {"assessed_on": "2024-01-01"}).status_code == 400


def test_the_front_desk_sees_no_assessments_and_integration_read_writes_none(front_desk, integration, ada):
    assessment = followups.assessment_record(patient=ada, assessed_on=today())

    assert front_desk.get(url("assessments")).status_code == 403
    assert front_desk.get(url("assessments", assessment)).status_code == 403
    assert front_desk.post(url("assessments"), full_assessment(ada), format="json").status_code == 403
    assert integration.get(url("assessments", assessment)).status_code == 200
    assert integration.post(url("assessments"), full_assessment(ada), format="json").status_code == 403
    assert integration.patch(url("assessments", assessment), {"notes": "x"}, format="json").status_code == 403
    assert Assessment.objects.filter(patient=ada).count() == 1


# --- outcomes and flags -------------------------------------------------------------------------


def test_outcomes_hold_one_entry_per_treatment(clinician, ada):
    session = treatment_for(
        diagnosed(ada, 90), codes.TreatmentKind.BOTULINUM_TOXIN, started_on=today() - days(60)
    )
    baseline = followups.assessment_record(patient=ada, assessed_on=today() - days(61), spasms_per_day=10)
    # Rule version 2 reads a toxin session at its peak: the latest log from day 7 to day 42.
    current = followups.assessment_record(patient=ada, assessed_on=today() - days(30), spasms_per_day=2)
    followups.assessment_record(patient=ada, assessed_on=today() - days(5), spasms_per_day=8)

    response = clinician.get(f"{url('patients', ada)}outcomes/")

    assert response.status_code == 200
    [entry] = response.json()
    assert set(entry) == OUTCOME_FIELDS
    stored = session.outcome
    assert (entry["treatment"], entry["treatment_kind"], entry["category"]) == (
        str(session.uuid),
        "botulinum_toxin",
        stored.category,
    )
    assert entry["baseline"] == {"id": str(baseline.uuid), "assessed_on": baseline.assessed_on.isoformat()}
    assert entry["current"] == {"id": str(current.uuid), "assessed_on": current.assessed_on.isoformat()}
    # Positive is an improvement (DOMAIN.md): from 10 spasms a day to 2 is 80 % fewer.
    assert (entry["spasms_per_day_change_pct"], entry["soriano_baron"], entry["rule_version"]) == (
        80.0,
        None,
        2,
    )


def test_an_mvd_outcome_has_its_soriano_baron_grade(clinician, ada):
    treatment_for(diagnosed(ada, 120), codes.TreatmentKind.MVD, started_on=today() - days(100))
    followups.assessment_record(patient=ada, assessed_on=today() - days(101), spasms_per_day=30)
    followups.assessment_record(patient=ada, assessed_on=today() - days(2), spasms_per_day=0)

    [entry] = clinician.get(f"{url('patients', ada)}outcomes/").json()

    assert (entry["treatment_kind"], entry["soriano_baron"]) == ("mvd", "excellent")


def test_flags_list_code_detail_and_since(clinician, ada):
    diagnosed(ada)
    response = clinician.get(f"{url('patients', ada)}flags/")

    assert response.status_code == 200
    flag = PatientFlag.objects.get(patient=ada, code=FlagCode.IMAGING_MISSING)
    # v2: `since` is the date of the fact behind the flag, and each entry says who acknowledged it.
    assert response.json() == [
        {
            "id": str(flag.uuid),
            "code": "imaging_missing",
            "detail": flag.detail,
            "since": flag.since.isoformat(),
            "acknowledged_by": None,
            "acknowledged_at": None,
            "note": "",
        }
    ]


@pytest.mark.parametrize("sub", ["outcomes", "flags"])
def test_a_patient_snapshot_of_an_unknown_or_malformed_patient_is_a_404(clinician, sub):
    assert clinician.get(f"{API}patients/{uuid.uuid4()}/{sub}/").status_code == 404
    assert clinician.get(f"{API}patients/not-a-uuid/{sub}/").status_code == 404


@pytest.mark.parametrize("sub", ["outcomes", "flags"])
def test_a_patient_snapshot_is_clinical_whole_and_strict(front_desk, integration, ada, sub, clinician):
    path = f"{url('patients', ada)}{sub}/"

    assert front_desk.get(path).status_code == 403
    assert integration.get(path).status_code == 200
    assert integration.post(path, {}, format="json").status_code == 403
    assert clinician.post(path, {}, format="json").status_code == 405
    for params in ({"page_size": 1}, {"cursor": "x"}, {"updated_since": "2024-01-01T00:00:00Z"}):
        response = clinician.get(path, params)
        assert response.status_code == 400
        assert list(response.json()) == list(params)


# --- reminders ----------------------------------------------------------------------------------


@pytest.fixture
def reminded(ada) -> Visit:
    """A visit booked 20 days ahead for a consenting patient: two pending reminders."""
    return visit_on(ada, today() + days(20))


def reminder_of(visit, kind=ReminderKind.VISIT_7D) -> Reminder:
    return Reminder.objects.get(visit=visit, kind=kind)


def test_a_reminder_reads_with_its_due_time_and_visit(front_desk, reminded):
    reminder = reminder_of(reminded)

    response = front_desk.get(url("reminders", reminder))

    assert response.status_code == 200
    body = response.json()
    assert set(body) == REMINDER_FIELDS
    assert (body["id"], body["visit"], body["patient"], body["kind"], body["status"]) == (
        str(reminder.uuid),
        str(reminded.uuid),
        str(reminded.patient.uuid),
        "visit_7d",
        "pending",
    )
    assert parse_datetime(body["scheduled_for"]) == reminder.due_at
    assert parse_datetime(body["visit_time"]) == reminded.scheduled_for
    assert (body["attempts"], body["sent_at"], body["last_error"]) == (0, None, "")


def test_reminders_filter_by_patient_visit_and_status(clinician, reminded, ada):
    other_visit = visit_on(ada, today() + days(30))
    stranger = visit_on(PatientFactory(email_reminders=True), today() + days(20))
    Reminder.objects.filter(pk=reminder_of(other_visit).pk).update(status=ReminderStatus.SENT)

    def reminders_of(patient) -> list[str]:
        return sorted(str(r.uuid) for r in Reminder.objects.filter(visit__patient=patient))

    # Two booked visits of Ada's, each with its reminders (a booking also confirms itself now).
    assert len(reminders_of(ada)) >= 4
    assert sorted(ids(clinician.get(url("reminders"), {"patient": str(ada.uuid)}))) == reminders_of(ada)
    assert sorted(ids(clinician.get(url("reminders"), {"visit": str(reminded.uuid)}))) == sorted(
        str(r.uuid) for r in reminded.reminders.all()
    )
    assert ids(clinician.get(url("reminders"), {"patient": str(ada.uuid), "status": "sent"})) == [
        str(reminder_of(other_visit).uuid)
    ]
    assert sorted(ids(clinician.get(url("reminders"), {"patient": str(stranger.patient.uuid)}))) == (
        reminders_of(stranger.patient)
    )
    assert clinician.get(url("reminders"), {"kind": "visit_7d"}).status_code == 400


def test_the_front_desk_cancels_a_reminder_and_a_retry_changes_nothing(front_desk, reminded):
    reminder = reminder_of(reminded)

    first = front_desk.post(url("reminders", reminder, "cancel"), {"reason": "Patient phoned"}, format="json")
    retry = front_desk.post(url("reminders", reminder, "cancel"), format="json")

    assert (first.status_code, retry.status_code) == (200, 200)
    assert (first.json()["status"], first.json()["status_reason"]) == ("cancelled", "Patient phoned")
    reminder.refresh_from_db()
    assert (reminder.status, reminder.status_reason, reminder.next_attempt_at) == (
        ReminderStatus.CANCELLED,
        "Patient phoned",
        None,
    )
    assert reminder_of(reminded, ReminderKind.VISIT_1D).status == ReminderStatus.PENDING


def test_a_sent_reminder_cannot_be_cancelled(front_desk, reminded):
    reminder = reminder_of(reminded)
    Reminder.objects.filter(pk=reminder.pk).update(status=ReminderStatus.SENT, sent_at=timezone.now())

    response = front_desk.post(url("reminders", reminder, "cancel"), format="json")

    assert response.status_code == 400
    assert response.json() == {
        "status": ["A sent reminder cannot be cancelled."],
        "error_codes": {"status": ["invalid"]},
    }
    assert Reminder.objects.get(pk=reminder.pk).status == ReminderStatus.SENT


def test_a_cancelled_reminder_is_sent_again_on_resend(front_desk, reminded):
    reminder = reminder_of(reminded)
    front_desk.post(url("reminders", reminder, "cancel"), format="json")

    response = front_desk.post(url("reminders", reminder, "resend"), format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["status_reason"]) == ("pending", "Resent by staff.")
    assert Reminder.objects.get(pk=reminder.pk).status == ReminderStatus.PENDING


def test_reminders_are_read_only_but_for_their_actions(clinician, nurse, integration, reminded):
    reminder = reminder_of(reminded)

    assert clinician.post(url("reminders"), {"visit": str(reminded.uuid)}, format="json").status_code == 405
    assert clinician.patch(url("reminders", reminder), {"status": "sent"}, format="json").status_code == 405
    assert clinician.put(url("reminders", reminder), {"status": "sent"}, format="json").status_code == 405
    assert clinician.delete(url("reminders", reminder)).status_code == 405
    assert nurse.post(url("reminders", reminder, "cancel"), format="json").status_code == 403
    assert integration.post(url("reminders", reminder, "cancel"), format="json").status_code == 403
    assert integration.get(url("reminders", reminder)).status_code == 200
    assert clinician.post(url("reminders", reminder, "cancel"), {"why": "x"}, format="json").json() == {
        "why": ["Unknown field."]
    }
    assert Reminder.objects.get(pk=reminder.pk).status == ReminderStatus.PENDING


# --- worklists ----------------------------------------------------------------------------------


def test_the_due_worklist_holds_visits_through_n_days_soonest_first(front_desk, ada):
    tomorrow = visit_on(ada, today() + days(1))
    last_day = visit_on(ada, today() + days(7), hour=22)
    eighth = visit_on(ada, today() + days(8), hour=9)

    response = front_desk.get(f"{API}worklists/due/")
    wider = front_desk.get(f"{API}worklists/due/", {"days": 8})

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [row["visit"]["id"] for row in rows] == [str(tomorrow.uuid), str(last_day.uuid)]
    assert set(rows[0]) == {"patient", "visit"}
    assert rows[0]["patient"] == {
        "id": str(ada.uuid),
        "mrn": ada.mrn,
        "given_name": "Ada",
        "family_name": "Lovelace",
    }
    # The front desk's rows name no purpose or treatment (issue 20).
    assert set(rows[0]["visit"]) == VISIT_FIELDS - {"purpose", "treatment"}
    assert [row["visit"]["id"] for row in wider.json()["results"]][-1] == str(eighth.uuid)


# An empty value is refused as every parameter's is (tests/api/test_query_params.py).
@pytest.mark.parametrize("value", ["0", "366", "-1", "abc", "7.5", "1000", "07 "])
def test_the_due_worklist_takes_days_from_1_to_365_only(clinician, value):
    response = clinician.get(f"{API}worklists/due/", {"days": value})

    assert response.status_code == 400
    assert response.json() == {"days": ["Give a whole number of days from 1 to 365."]}


@pytest.mark.parametrize("value", ["1", "365"])
def test_the_due_worklist_takes_its_bounds(clinician, value):
    assert clinician.get(f"{API}worklists/due/", {"days": value}).status_code == 200


def test_the_overdue_worklist_holds_missed_visits_nobody_rebooked(nurse, ada):
    missed = visit_on(ada, today() - days(3))
    visit_move(visit=missed, to=VisitStatus.MISSED)
    # Another patient's (v2: a patient who holds a booked visit ahead is not overdue at all).
    rebooked = visit_on(PatientFactory(), today() - days(2))
    visit_move(visit=rebooked, to=VisitStatus.MISSED)
    followups.visit_rebook(visit=rebooked, scheduled_for=at(today() + days(3)))

    response = nurse.get(f"{API}worklists/overdue/")

    assert response.status_code == 200
    rows = response.json()["results"]
    assert [(row["patient"]["id"], row["visit"]["id"]) for row in rows] == [(str(ada.uuid), str(missed.uuid))]
    assert rows[0]["visit"]["status"] == "missed"


def test_the_flagged_worklist_filters_by_flag_code(clinician, ada):
    diagnosed(ada)
    other = PatientFactory()
    diagnosis_for(other, kind=codes.HfsKind.SECONDARY, secondary_cause=codes.SecondaryCause.OTHER)

    everyone = clinician.get(f"{API}worklists/flagged/").json()["results"]
    secondary = clinician.get(f"{API}worklists/flagged/", {"code": "secondary_cause_unconfirmed"}).json()[
        "results"
    ]

    assert {(row["patient"]["id"], row["flag"]["code"]) for row in everyone} == {
        (str(ada.uuid), "imaging_missing"),
        (str(other.uuid), "imaging_missing"),
        (str(other.uuid), "secondary_cause_unconfirmed"),
    }
    assert [(row["patient"]["mrn"], row["flag"]["code"]) for row in secondary] == [
        (other.mrn, "secondary_cause_unconfirmed")
    ]
    assert set(secondary[0]["flag"]) == FLAG_FIELDS


@pytest.mark.parametrize(
    "path, params, field",
    [
        ("flagged", {"code": "everything"}, "code"),
        ("flagged", {"days": "3"}, "days"),
        ("overdue", {"days": "3"}, "days"),
        ("overdue", {"code": "imaging_missing"}, "code"),
        ("due", {"code": "imaging_missing"}, "code"),
        ("due", {"updated_since": "2024-01-01T00:00:00Z"}, "updated_since"),
    ],
)
def test_a_worklist_refuses_a_parameter_it_does_not_take(clinician, path, params, field):
    response = clinician.get(f"{API}worklists/{path}/", params)

    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_worklists_of_visits_are_for_the_front_desk_and_flags_are_clinical(front_desk, integration):
    assert front_desk.get(f"{API}worklists/due/").status_code == 200
    assert front_desk.get(f"{API}worklists/overdue/").status_code == 200
    assert front_desk.get(f"{API}worklists/flagged/").status_code == 403
    assert integration.get(f"{API}worklists/flagged/").status_code == 200
    assert integration.post(f"{API}worklists/due/", {}, format="json").status_code == 403


def test_worklists_page_in_their_own_order(clinician, ada):
    # The visits ahead are another patient's: v2 does not count Ada overdue while she holds one.
    other = PatientFactory()
    visits = [visit_on(other, today() + days(n)) for n in (3, 1, 2)]
    for n in (6, 4, 5):
        visit_move(visit=visit_on(ada, today() - days(n)), to=VisitStatus.MISSED)

    due = walk(clinician, f"{API}worklists/due/")
    overdue = walk(clinician, f"{API}worklists/overdue/")

    assert [row["visit"]["id"] for row in due] == [
        str(v.uuid) for v in sorted(visits, key=lambda v: v.scheduled_for)
    ]
    assert [row["visit"]["window_end"] for row in overdue] == [
        (today() - days(n)).isoformat() for n in (6, 5, 4)
    ]
    crafted = clinician.get(f"{API}worklists/due/", {"cursor": "cD1ub3QtYS10aW1l"})  # p=not-a-time
    assert crafted.status_code == 404


def test_the_flagged_worklist_pages_in_its_order(clinician):
    # `since` is a date (v2): the cursor of the next page holds one.
    add_flags(3)

    flagged = walk(clinician, f"{API}worklists/flagged/")

    assert [row["flag"]["since"] for row in flagged] == [(today() - days(n)).isoformat() for n in (2, 1, 0)]


def walk(client, path) -> list[dict]:
    """Every row of a list, one per page, following ``next``."""
    rows, response = [], client.get(path, {"page_size": 1})
    while True:
        assert response.status_code == 200, response.data
        rows.extend(response.json()["results"])
        if not response.json()["next"]:
            return rows
        response = client.get(response.json()["next"])


# --- fixed query counts -------------------------------------------------------------------------


def add_visits(patient, treatment, count: int, **fields) -> None:
    """``count`` rows straight into the table, with every relation a page shows set."""
    on = fields.pop("on", today() + days(1))
    for _ in range(count):
        missed = Visit.objects.create(
            patient=patient,
            treatment=treatment,
            purpose="Missed",
            scheduled_for=at(on),
            window_start=on,
            window_end=on,
            status=VisitStatus.CANCELLED,
            cancel_reason="Test row",
            source=VisitSource.MANUAL,
        )
        Visit.objects.create(
            patient=patient,
            treatment=treatment,
            purpose="Check",
            scheduled_for=at(on),
            window_start=on,
            window_end=on,
            source=VisitSource.MANUAL,
            rebooked_from=missed,
            **{"status": VisitStatus.BOOKED, **fields},
        )


def add_assessments(patient, count: int) -> None:
    rows = Assessment.objects.bulk_create(
        Assessment(patient=patient, assessed_on=today() - days(n % 300), spasms_per_day=n)
        for n in range(count)
    )
    AssessmentTrigger.objects.bulk_create(
        AssessmentTrigger(assessment=a, trigger=Trigger.STRESS) for a in rows
    )


def add_reminders(visit, count: int) -> None:
    taken = visit.reminders.count()
    Reminder.objects.bulk_create(
        Reminder(
            visit=visit,
            kind=ReminderKind.VISIT_7D,
            visit_time=visit.scheduled_for + timedelta(minutes=taken + n),
            due_at=visit.scheduled_for - days(7),
            status=ReminderStatus.SENT,
        )
        for n in range(count)
    )


def add_missed_visits(patient, toxin, count: int) -> None:
    """Missed visits written in bulk, and the patient's flags stored as a write (or the night) would:
    the overdue list reads the stored flags."""
    add_visits(patient, toxin, count, on=today() - days(20), status=VisitStatus.MISSED)
    flags_sync(patient=patient)


def add_flags(count: int) -> None:
    patients = [PatientFactory() for _ in range(3)]
    PatientFlag.objects.bulk_create(
        PatientFlag(
            patient=patients[n % 3],
            code=FlagCode.OVERDUE_FOLLOW_UP,
            subject=f"s{n}",
            detail="Test row",
            since=today() - days(n),
        )
        for n in range(count)
    )


PAGES = {
    "visits": (
        "visits/",
        lambda ada: {"patient": str(ada.uuid), "status": "booked"},
        lambda ada, toxin, n: add_visits(ada, toxin, n),
    ),
    "assessments": (
        "assessments/",
        lambda ada: {"patient": str(ada.uuid)},
        lambda ada, toxin, n: add_assessments(ada, n),
    ),
    "reminders": (
        "reminders/",
        lambda ada: {"patient": str(ada.uuid), "status": "sent"},
        lambda ada, toxin, n: add_reminders(toxin.visits.first(), n),
    ),
    # One day ahead: the toxin session's own review (a week ahead) stays out of the page.
    "due": ("worklists/due/", lambda ada: {"days": 1}, lambda ada, toxin, n: add_visits(ada, toxin, n)),
    "overdue": (
        "worklists/overdue/",
        lambda ada: {},
        lambda ada, toxin, n: add_missed_visits(ada, toxin, n),
    ),
    "flagged": (
        "worklists/flagged/",
        lambda ada: {"code": "overdue_follow_up"},
        lambda ada, toxin, n: add_flags(n),
    ),
}
# Measured: 4 queries (the client's key, its role, the page, the audit rows), 6 for assessments (their
# two code lists are prefetched). A relation fetched row by row would add a query per row.
MOST_QUERIES_PER_PAGE = 6


@pytest.mark.parametrize("page", PAGES)
def test_a_page_costs_the_same_queries_for_1_row_and_for_50(
    clinician, ada, toxin, page, django_assert_num_queries
):
    path, params, add = PAGES[page]
    path, params = f"{API}{path}", params(ada)
    add(ada, toxin, 1)
    clinician.get(path, params)  # a client's first request also notes when it was last used

    with CaptureQueriesContext(connection) as one_row:
        assert len(clinician.get(path, params).json()["results"]) == 1
    add(ada, toxin, 49)
    with django_assert_num_queries(len(one_row)):
        assert len(clinician.get(path, params).json()["results"]) == 50
    assert len(one_row) <= MOST_QUERIES_PER_PAGE


# --- audit --------------------------------------------------------------------------------------


def audit_rows(**filters) -> list[tuple]:
    return list(
        AuditEvent.objects.filter(**filters)
        .order_by("id")
        .values_list("action", "resource", "object_id", "patient_id", "method", "status")
    )


def test_reads_and_writes_of_follow_up_are_audited(clinician, front_desk, reminded, ada):
    diagnosed(ada)
    actor = clinician.api_client.user.username
    clinician.get(url("visits", reminded))
    clinician.patch(url("visits", reminded), {"status": "cancelled", "cancel_reason": "Ill"}, format="json")
    clinician.patch(url("visits", reminded), {"status": "booked"}, format="json")  # refused: not audited
    created = clinician.post(url("assessments"), full_assessment(ada), format="json").json()
    clinician.get(f"{url('patients', ada)}outcomes/")
    clinician.get(f"{url('patients', ada)}flags/")
    clinician.get(f"{API}worklists/flagged/")

    v, p = str(reminded.uuid), ada.uuid
    assert audit_rows(actor=actor) == [
        ("read", "visit", v, p, "GET", 200),
        ("update", "visit", v, p, "PATCH", 200),
        ("create", "assessment", created["id"], p, "POST", 201),
        ("read", "patient_outcomes", str(p), p, "GET", 200),
        ("read", "patient_flags", str(p), p, "GET", 200),
        ("read", "worklist_flagged", str(ada.flags.get().uuid), p, "GET", 200),
    ]
    reminder = reminder_of(visit_on(ada, today() + days(30)))
    front_desk.post(url("reminders", reminder, "cancel"), format="json")
    assert audit_rows(actor=front_desk.api_client.user.username) == [
        ("create", "reminder", str(reminder.uuid), p, "POST", 200)
    ]


def test_a_list_writes_one_audit_row_per_row_it_shows(nurse, ada):
    visits = [visit_on(ada, today() + days(n)) for n in (1, 2, 3)]

    nurse.get(url("visits"), {"patient": str(ada.uuid)})

    rows = audit_rows(actor=nurse.api_client.user.username)
    assert sorted(rows) == sorted(("read", "visit", str(v.uuid), ada.uuid, "GET", 200) for v in visits)
