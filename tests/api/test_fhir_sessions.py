"""The clinic's sessions as FHIR R4 (API.md, "FHIR R4": Slot and Schedule, Appointment.slot).

A session template is a Schedule; each slot of its dated sessions is a Slot, free or busy by its
places, busy-unavailable once its session is cancelled. They are nobody's record: the front desk
reads them, and reading them audits nothing. Every resource is validated as in ``test_fhir``.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from clinic.models import AuditEvent
from clinic.roles import Role
from followups import services as follow_up
from followups import sessions
from followups.codes import VisitKind, VisitStatus
from followups.models import ClinicSession, SessionTemplate, Slot, Visit
from followups.visit_moves import visit_move
from tests.api.test_fhir import FHIR, by_type, fhir_json, outcome
from tests.factories import PatientFactory

ZONE = ZoneInfo(settings.CLINIC_TIME_ZONE)
OWN = "https://hfs-followup.example/fhir"
VISIT_KIND = f"{OWN}/CodeSystem/visit-kind"


def first_day() -> date:
    """The first session's day: three days ahead, never today."""
    return timezone.localdate() + timedelta(days=3)


def weeks_ahead(count: int) -> date:
    return first_day() + timedelta(weeks=count)


def template(label: str, kinds, *, starts=time(13, 30), ends=time(15, 30), **more) -> SessionTemplate:
    fields = {"slot_minutes": 30, "capacity": 2, "valid_from": timezone.localdate(), **more}
    return sessions.session_template_save(
        label=label,
        weekday=first_day().weekday(),
        starts_at=starts,
        ends_at=ends,
        visit_kinds=kinds,
        **fields,
    ).template


@pytest.fixture
def injections(no_templates) -> SessionTemplate:
    """Four slots of two places, 13:30 to 15:30, every week from three days ahead."""
    return template("Injection clinic (room 2)", [VisitKind.INJECTION])


@pytest.fixture
def reviews(no_templates) -> SessionTemplate:
    """Three slots of one place, 9:00 to 10:00 on the same days; ended after five weeks."""
    return template(
        "Review clinic",
        [VisitKind.REVIEW, VisitKind.LAB],
        starts=time(9),
        ends=time(10),
        slot_minutes=20,
        capacity=1,
        valid_to=weeks_ahead(4),
    )


def slot_of(clinic, week: int = 0, n: int = 0) -> Slot:
    return Slot.objects.filter(session__template=clinic, session__on=weeks_ahead(week)).order_by("starts_at")[
        n
    ]


def booked_into(slot: Slot, kind: str = VisitKind.INJECTION, patient=None) -> Visit:
    on = slot.session.on
    visit = follow_up.visit_create(
        patient=patient or PatientFactory(),
        purpose="Toxin re-injection",
        visit_kind=kind,
        scheduled_for=datetime.combine(on, time(9), tzinfo=ZONE),
        window_start=on - timedelta(days=2),
        window_end=on + timedelta(days=2),
        status=VisitStatus.PLANNED,
    )
    return visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot)


def search(client, resource_type: str, **query) -> dict:
    bundle = fhir_json(client.get(f"{FHIR}{resource_type}", query))
    assert bundle["type"] == "searchset" and bundle["total"] == len(bundle.get("entry", []))
    return bundle


def found(client, resource_type: str, **query) -> list[dict]:
    return [entry["resource"] for entry in search(client, resource_type, **query).get("entry", [])]


def ids(resources) -> list[str]:
    return [resource["id"] for resource in resources]


def uuids(rows) -> list[str]:
    return [str(row.uuid) for row in rows]


# --- Schedule -------------------------------------------------------------------------------------


def test_a_template_is_a_schedule_of_the_kinds_it_serves(front_desk, injections, reviews):
    schedules = found(front_desk, "Schedule")

    assert ids(schedules) == uuids([reviews, injections])  # by weekday and hour
    review = schedules[0]
    assert review == {
        "resourceType": "Schedule",
        "id": str(reviews.uuid),
        "meta": review["meta"],
        "active": True,
        "serviceType": [
            {
                "coding": [{"system": VISIT_KIND, "code": "lab", "display": "Blood test"}],
                "text": "Blood test",
            },
            {"coding": [{"system": VISIT_KIND, "code": "review", "display": "Review"}], "text": "Review"},
        ],
        "actor": [{"display": "Review clinic"}],
        "planningHorizon": {"start": reviews.valid_from.isoformat(), "end": weeks_ahead(4).isoformat()},
        "comment": f"{first_day():%A}s 09:00-10:00: slots of 20 minutes, each taking 1 visit.",
    }
    assert datetime.fromisoformat(review["meta"]["lastUpdated"]) == reviews.updated_at
    assert "end" not in schedules[1]["planningHorizon"]
    assert fhir_json(front_desk.get(f"{FHIR}Schedule/{reviews.uuid}")) == review


def test_schedules_search_by_kind_and_by_whether_they_are_in_force(clinician, injections, reviews):
    ended = template(
        "Old clinic", [VisitKind.REVIEW], valid_from=date(2025, 1, 1), valid_to=date(2025, 6, 30)
    )
    assert fhir_json(clinician.get(f"{FHIR}Schedule/{ended.uuid}"))["active"] is False

    assert ids(found(clinician, "Schedule", **{"service-type": "injection"})) == uuids([injections])
    assert ids(found(clinician, "Schedule", **{"service-type": f"{VISIT_KIND}|lab"})) == uuids([reviews])
    assert set(ids(found(clinician, "Schedule", **{"service-type": "lab,injection"}))) == set(
        uuids([reviews, injections])
    )
    assert set(ids(found(clinician, "Schedule", active="true"))) == set(uuids([reviews, injections]))
    assert ids(found(clinician, "Schedule", active="false")) == uuids([ended])


# --- Slot -----------------------------------------------------------------------------------------


def test_a_slot_is_free_until_its_places_are_taken_and_names_its_schedule(front_desk, injections):
    slot = slot_of(injections, week=1)
    url = f"{FHIR}Slot/{slot.uuid}"

    free = fhir_json(front_desk.get(url))

    assert free == {
        "resourceType": "Slot",
        "id": str(slot.uuid),
        "meta": {"versionId": free["meta"]["versionId"]},  # a slot keeps no time of change
        "extension": [
            {"url": f"{OWN}/StructureDefinition/slot-capacity", "valuePositiveInt": 2},
            {"url": f"{OWN}/StructureDefinition/slot-booked", "valueUnsignedInt": 0},
        ],
        "serviceType": [
            {
                "coding": [{"system": VISIT_KIND, "code": "injection", "display": "Injection clinic"}],
                "text": "Injection clinic",
            }
        ],
        "schedule": {"reference": f"Schedule/{injections.uuid}"},
        "status": "free",
        "start": free["start"],
        "end": free["end"],
        "comment": "Injection clinic (room 2): 0 of 2 places booked.",
    }
    start, end = datetime.fromisoformat(free["start"]), datetime.fromisoformat(free["end"])
    assert start == datetime.combine(weeks_ahead(1), time(13, 30), tzinfo=ZONE) == slot.starts_at
    assert start.utcoffset() == slot.starts_at.astimezone(ZONE).utcoffset()
    assert end - start == timedelta(minutes=30)
    booked_into(slot)
    assert fhir_json(front_desk.get(url))["status"] == "free"
    booked_into(slot)
    busy = fhir_json(front_desk.get(url))
    assert (busy["status"], busy["comment"]) == ("busy", "Injection clinic (room 2): 2 of 2 places booked.")


def test_the_slots_of_a_cancelled_session_are_unavailable(front_desk, injections):
    slot = slot_of(injections, week=1)
    sessions.session_cancel(session=slot.session, reason="Public holiday")

    cancelled = fhir_json(front_desk.get(f"{FHIR}Slot/{slot.uuid}"))

    assert cancelled["status"] == "busy-unavailable"
    assert cancelled["comment"] == "Injection clinic (room 2): the session is cancelled (Public holiday)."


def test_slots_search_by_schedule_days_status_and_kind(clinician, injections, reviews):
    full = slot_of(injections, week=1)
    booked_into(full)
    booked_into(full)
    sessions.session_cancel(
        session=ClinicSession.objects.get(template=reviews, on=weeks_ahead(2)), reason="Away"
    )

    def slots(**query) -> list[Slot]:
        resources = found(clinician, "Slot", **query)
        rows = Slot.objects.select_related("session").filter(uuid__in=ids(resources))
        assert len(rows) == len(resources)
        # Earliest first, whatever was asked.
        assert [r["start"] for r in resources] == sorted(r["start"] for r in resources)
        return sorted(rows, key=lambda row: (row.starts_at, row.pk))

    week_one = {"start": [f"ge{weeks_ahead(1)}", f"lt{weeks_ahead(2)}"]}
    assert {slot.session.on for slot in slots(**week_one)} == {weeks_ahead(1)}
    assert len(slots(**week_one)) == 3 + 4
    assert len(slots(start=str(weeks_ahead(1)))) == 7
    assert len(slots(start=f"eq{weeks_ahead(1)}", schedule=f"Schedule/{reviews.uuid}")) == 3
    assert {slot.session.template for slot in slots(schedule=str(reviews.uuid))} == {reviews}
    assert slots(**week_one, status="busy") == [full]
    assert {slot.session.on for slot in slots(status="busy-unavailable")} == {weeks_ahead(2)}
    assert {s.session.template for s in slots(**week_one, status="free", **{"service-type": "lab"})} == {
        reviews
    }
    assert slots(status="busy-tentative,entered-in-error") == []
    everything = slots()
    assert len(everything) == Slot.objects.count()
    assert len(slots(status="free,busy,busy-unavailable")) == len(everything)
    assert slots(start=[f"gt{weeks_ahead(1)}", f"le{weeks_ahead(1)}"]) == []


@pytest.mark.parametrize(
    "query",
    [
        "start=2026-02-30",
        "start=soon",
        "start=ge2026-05-01T10:00:00Z",
        "start=ne2026-05-01",
        "status=booked",
        "status=",
        "status=free,",
        "schedule=not-a-uuid",
        "schedule=Slot/3f6d2c1e-9b7a-4e52-8d0c-5a1b2c3d4e5f",
        "service-type=surgery",
        "service-type=http://snomed.info/sct|injection",
        "patient=3f6d2c1e-9b7a-4e52-8d0c-5a1b2c3d4e5f",
        "_count=-1",
        "_sort=status",
    ],
)
def test_a_slot_search_it_cannot_read_is_a_400_outcome(clinician, injections, query):
    outcome(clinician.get(f"{FHIR}Slot?{query}"), 400, "invalid")


@pytest.mark.parametrize("query", ["active=yes", "service-type=", "schedule=x", "start=ge2026-01-01"])
def test_a_schedule_search_it_cannot_read_is_a_400_outcome(clinician, injections, query):
    outcome(clinician.get(f"{FHIR}Schedule?{query}"), 400, "invalid")


@pytest.mark.parametrize("resource_type", ["Slot", "Schedule"])
def test_an_unknown_id_is_a_404_outcome(clinician, injections, resource_type):
    session = ClinicSession.objects.filter(template=injections).first()
    for unknown in (session.uuid, f"{injections.uuid}-x", "not-a-uuid", str(injections.uuid).upper()):
        if resource_type == "Schedule" and unknown == f"{injections.uuid}-x":
            continue
        outcome(clinician.get(f"{FHIR}{resource_type}/{unknown}"), 404, "not-found")


# --- Appointment.slot and $everything -------------------------------------------------------------


def test_a_visit_booked_into_a_slot_is_an_appointment_in_it(clinician, injections):
    patient = PatientFactory()
    slot = slot_of(injections, week=1)
    in_slot = booked_into(slot, patient=patient)
    by_hand = follow_up.visit_create(
        patient=patient,
        purpose="Review",
        scheduled_for=datetime.combine(weeks_ahead(2), time(11), tzinfo=ZONE),
    )

    appointments = by_type(search(clinician, "Appointment", patient=str(patient.uuid)))["Appointment"]

    assert appointments[str(in_slot.uuid)]["slot"] == [{"reference": f"Slot/{slot.uuid}"}]
    assert datetime.fromisoformat(appointments[str(in_slot.uuid)]["start"]) == slot.starts_at
    assert "slot" not in appointments[str(by_hand.uuid)]


def test_everything_holds_the_slots_the_appointments_refer_to_and_their_schedules(clinician, injections):
    patient = PatientFactory()
    slots = [slot_of(injections, week=1), slot_of(injections, week=2, n=1)]
    for slot in slots:
        booked_into(slot, patient=patient)
    booked_into(slot_of(injections, week=3))  # another patient's

    bundle = fhir_json(clinician.get(f"{FHIR}Patient/{patient.uuid}/$everything"))

    served = by_type(bundle)
    assert set(served["Slot"]) == set(uuids(slots))
    assert set(served["Schedule"]) == {str(injections.uuid)}
    references = {
        ref["reference"]
        for resource in (*served["Appointment"].values(), *served["Slot"].values())
        for ref in (*resource.get("slot", []), resource.get("schedule", {"reference": ""}))
        if ref["reference"]
    }
    listed = {f"{entry['resource']['resourceType']}/{entry['resource']['id']}" for entry in bundle["entry"]}
    assert references and references <= listed


# --- who reads, what it costs, what is listed -----------------------------------------------------


@pytest.mark.parametrize("role", [role for role in Role if role != Role.LAB])  # lab: lab results only
def test_every_role_reads_the_clinic_s_sessions_and_nothing_is_audited(api_as, injections, role):
    client = api_as(role)
    slot = slot_of(injections)

    assert found(client, "Schedule")
    assert found(client, "Slot", start=str(first_day()))
    fhir_json(client.get(f"{FHIR}Slot/{slot.uuid}"))
    fhir_json(client.get(f"{FHIR}Schedule/{injections.uuid}"))
    assert not AuditEvent.objects.exists()


def test_without_credentials_a_401_outcome(anonymous, injections):
    outcome(anonymous.get(f"{FHIR}Slot"), 401, "login")
    outcome(anonymous.get(f"{FHIR}Schedule/{injections.uuid}"), 401, "login")


def test_a_slot_search_takes_as_many_queries_for_many_weeks_as_for_one(api_as, injections, reviews):
    client = api_as(Role.FRONT_DESK)
    client.get(f"{FHIR}Slot")  # the client's first request also notes when it was used
    counts = {}
    for weeks in (1, 20):
        query = {"start": [f"ge{first_day()}", f"lt{weeks_ahead(weeks)}"]}
        with CaptureQueriesContext(connection) as queries:
            resources = found(client, "Slot", **query)
        counts[weeks] = len(queries)
        assert {r["schedule"]["reference"] for r in resources} == {
            f"Schedule/{injections.uuid}",
            f"Schedule/{reviews.uuid}",
        }
    assert counts[1] == counts[20] <= 4, counts


def test_metadata_lists_schedule_and_slot_with_their_search_parameters(anonymous, db):
    statement = fhir_json(anonymous.get(f"{FHIR}metadata"))

    resources = {resource["type"]: resource for resource in statement["rest"][0]["resource"]}
    for resource_type, params in (
        ("Schedule", ["active", "service-type"]),
        ("Slot", ["schedule", "start", "status", "service-type"]),
    ):
        listed = resources[resource_type]
        assert {i["code"] for i in listed["interaction"]} == {"read", "search-type"}
        assert [p["name"] for p in listed["searchParam"]] == params
    assert {p["name"]: p["type"] for p in resources["Slot"]["searchParam"]}["start"] == "date"
