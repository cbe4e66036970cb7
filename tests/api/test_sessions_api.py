"""The clinic's sessions over the API (API.md "Added in v2"; DOMAIN.md section 12): session templates
written through ``session_template_save``, dated sessions cancelled through ``session_cancel``, and
the slots visits are booked into.

Every test starts from a clinic with no templates (the migrations seed a default week, which has no
sessions until the nightly run): what a list shows is then what the test made. Sessions are put on a
weekday three days ahead, so that none is today (whose slots may have passed) and every one can be
cancelled.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from clinic.models import AuditEvent
from clinic.roles import Role
from followups import booking, sessions
from followups import services as follow_up
from followups.codes import ReminderKind, VisitKind, VisitStatus
from followups.models import ClinicSession, Reminder, SessionTemplate, Slot, Visit
from followups.visit_moves import visit_move
from tests.api.conftest import API
from tests.factories import PatientFactory

ZONE = ZoneInfo(settings.CLINIC_TIME_ZONE)
TEMPLATES, SESSIONS, SLOTS = f"{API}session-templates/", f"{API}sessions/", f"{API}slots/"
TEMPLATE_FIELDS = {
    "id",
    "label",
    "weekday",
    "starts_at",
    "ends_at",
    "slot_minutes",
    "capacity",
    "visit_kinds",
    "valid_from",
    "valid_to",
    "created_at",
    "updated_at",
}


def today() -> date:
    return timezone.localdate()


def first_day() -> date:
    """The first session's day: three days ahead, never today."""
    return today() + timedelta(days=3)


def weeks_ahead(count: int) -> date:
    return first_day() + timedelta(weeks=count)


def template_body(**overrides) -> dict:
    body = {
        "label": "Injection clinic (room 2)",
        "weekday": first_day().weekday(),
        "starts_at": "13:30",
        "ends_at": "15:30",
        "slot_minutes": 30,
        "capacity": 2,
        "visit_kinds": ["injection"],
        "valid_from": today().isoformat(),
    }
    body.update(overrides)
    return body


def days_of(template) -> list[date]:
    return list(ClinicSession.objects.filter(template=template).order_by("on").values_list("on", flat=True))


def expected_days(until: date | None = None) -> list[date]:
    """Every week's session day from the first one, 26 weeks ahead (or up to ``until``)."""
    last = min(today() + timedelta(weeks=booking.SESSIONS_AHEAD_WEEKS), until or date.max)
    found, on = [], first_day()
    while on <= last:
        found.append(on)
        on += timedelta(weeks=1)
    return found


def all_rows(client, url: str, **query) -> list[dict]:
    """Every row of a list, page by page, following its ``next`` links."""
    response = client.get(url, query)
    rows = []
    while True:
        assert response.status_code == 200, response.content
        rows += response.json()["results"]
        if not response.json()["next"]:
            return rows
        response = client.get(response.json()["next"])


@pytest.fixture
def clinic(no_templates) -> SessionTemplate:
    """An injection clinic three days ahead and every week after: 13:30-15:30 in four slots of two."""
    return sessions.session_template_save(
        label="Injection clinic (room 2)",
        weekday=first_day().weekday(),
        starts_at=time(13, 30),
        ends_at=time(15, 30),
        slot_minutes=30,
        capacity=2,
        visit_kinds=[VisitKind.INJECTION],
        valid_from=today(),
    ).template


def first_slot(template, week: int = 0) -> Slot:
    return Slot.objects.filter(session__template=template, session__on=weeks_ahead(week)).order_by(
        "starts_at"
    )[0]


def booked_into(slot: Slot, kind: str = VisitKind.INJECTION) -> Visit:
    """A visit of a new patient, planned around the slot's day and booked into it."""
    on = slot.session.on
    visit = follow_up.visit_create(
        patient=PatientFactory(email_reminders=True),
        purpose="Toxin re-injection",
        visit_kind=kind,
        scheduled_for=datetime.combine(on, time(9), tzinfo=ZONE),
        window_start=on - timedelta(days=2),
        window_end=on + timedelta(days=2),
        status=VisitStatus.PLANNED,
    )
    return visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot)


def stored(row):
    return type(row).objects.get(pk=row.pk)


# --- session templates ----------------------------------------------------------------------------


def test_creating_a_template_generates_its_sessions_26_weeks_ahead_at_once(front_desk, no_templates):
    response = front_desk.post(TEMPLATES, template_body(), format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    template = SessionTemplate.objects.get(uuid=body["id"])
    assert days_of(template) == expected_days()
    assert body["session_changes"] == {
        "generated": len(expected_days()),
        "removed": 0,
        "kept_with_bookings": 0,
    }
    assert set(body) == TEMPLATE_FIELDS | {"session_changes"}
    assert {key: body[key] for key in TEMPLATE_FIELDS - {"id", "created_at", "updated_at"}} == {
        "label": "Injection clinic (room 2)",
        "weekday": first_day().weekday(),
        "starts_at": "13:30:00",
        "ends_at": "15:30:00",
        "slot_minutes": 30,
        "capacity": 2,
        "visit_kinds": ["injection"],
        "valid_from": today().isoformat(),
        "valid_to": None,
    }
    # Four slots of two places each day, at the template's times in the clinic's zone.
    slots = Slot.objects.filter(session__on=first_day()).order_by("starts_at")
    assert [slot.starts_at for slot in slots] == [
        datetime.combine(first_day(), time(13, 30), tzinfo=ZONE) + timedelta(minutes=30 * n) for n in range(4)
    ]
    assert {(slot.capacity, slot.booked) for slot in Slot.objects.filter(session__template=template)} == {
        (2, 0)
    }
    # A read answers the template without what the write did.
    read = front_desk.get(f"{TEMPLATES}{body['id']}/").json()
    assert read == {key: body[key] for key in TEMPLATE_FIELDS}


def test_a_template_left_without_slot_length_and_capacity_takes_the_defaults(clinician, no_templates):
    body = template_body()
    del body["slot_minutes"], body["capacity"]

    created = clinician.post(TEMPLATES, body, format="json").json()

    assert (created["slot_minutes"], created["capacity"]) == (15, 1)
    assert Slot.objects.filter(session__on=first_day()).count() == 8


CLOCK = "Give a time of day as HH:MM, clinic time, without an offset."
BAD_TEMPLATES = [
    # What the service refuses comes back with its message and code.
    (
        {"ends_at": "13:00"},
        {"ends_at": ["The session ends after it starts."], "error_codes": {"ends_at": ["invalid"]}},
    ),
    (
        {"slot_minutes": 180},
        {
            "slot_minutes": ["The session is shorter than one slot."],
            "error_codes": {"slot_minutes": ["invalid"]},
        },
    ),
    (
        {"visit_kinds": []},
        {
            "visit_kinds": ["Name at least one kind of visit the session serves."],
            "error_codes": {"visit_kinds": ["required"]},
        },
    ),
    (
        {"valid_to": "2000-01-01"},
        {"valid_to": ["The last day is on or after the first."], "error_codes": {"valid_to": ["invalid"]}},
    ),
    # What the body cannot be read as is refused before the service.
    ({"weekday": 7}, {"weekday": ["Ensure this value is less than or equal to 6."]}),
    ({"weekday": "Monday"}, {"weekday": ["A valid integer is required."]}),
    ({"capacity": 0}, {"capacity": ["Ensure this value is greater than or equal to 1."]}),
    ({"slot_minutes": 4}, {"slot_minutes": ["Ensure this value is greater than or equal to 5."]}),
    ({"visit_kinds": ["surgery"]}, {"visit_kinds": {"0": ['"surgery" is not a valid choice.']}}),
    ({"visit_kinds": "injection"}, {"visit_kinds": ['Expected a list of items but got type "str".']}),
    (
        {"starts_at": "25:00"},
        {"starts_at": [CLOCK]},
    ),
    # Hours are the clinic's: an offset would be dropped unseen, so it is refused.
    ({"starts_at": "13:30+05:00"}, {"starts_at": [CLOCK]}),
    ({"ends_at": "15:30:00Z"}, {"ends_at": [CLOCK]}),
    ({"ends_at": 1530}, {"ends_at": [CLOCK]}),
    ({"label": "   "}, {"label": ["This field may not be blank."]}),
    ({"label": "x" * 121}, {"label": ["Ensure this field has no more than 120 characters."]}),
    ({"valid_from": None}, {"valid_from": ["This field may not be null."]}),
    ({"room": "2"}, {"room": ["Unknown field."]}),
]


@pytest.mark.parametrize(("change", "expected"), BAD_TEMPLATES)
def test_a_template_the_clinic_cannot_run_is_a_400_and_nothing_is_made(
    front_desk, no_templates, change, expected
):
    response = front_desk.post(TEMPLATES, template_body(**change), format="json")

    assert response.status_code == 400, response.content
    assert response.json() == expected
    assert (SessionTemplate.objects.count(), ClinicSession.objects.count()) == (0, 0)


def test_changing_the_hours_remakes_the_sessions_ahead_and_keeps_those_with_bookings(front_desk, clinic):
    visit = booked_into(first_slot(clinic, week=2))
    before = days_of(clinic)

    response = front_desk.patch(
        f"{TEMPLATES}{clinic.uuid}/", {"starts_at": "08:00", "ends_at": "09:00"}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["starts_at"], body["ends_at"], body["capacity"]) == ("08:00:00", "09:00:00", 2)
    assert body["session_changes"] == {
        "generated": len(before) - 1,
        "removed": len(before) - 1,
        "kept_with_bookings": 1,
    }
    assert days_of(clinic) == before
    # The booked session keeps its hours and the visit its slot; the others start at 8 now.
    kept = ClinicSession.objects.get(template=clinic, on=weeks_ahead(2))
    assert kept.starts_at == time(13, 30) and stored(visit).slot.session == kept
    moved = ClinicSession.objects.get(template=clinic, on=weeks_ahead(1))
    assert moved.starts_at == time(8) and moved.slots.count() == 2


def test_a_template_ends_by_its_valid_to_and_its_later_sessions_go(clinician, clinic):
    response = clinician.patch(
        f"{TEMPLATES}{clinic.uuid}/", {"valid_to": weeks_ahead(1).isoformat()}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["valid_to"] == weeks_ahead(1).isoformat()
    assert days_of(clinic) == [first_day(), weeks_ahead(1)]
    assert clinician.delete(f"{TEMPLATES}{clinic.uuid}/").status_code == 405
    assert SessionTemplate.objects.filter(pk=clinic.pk).exists()


def test_put_replaces_the_template_with_the_defaults_for_what_it_leaves_out(front_desk, clinic):
    sessions.session_template_save(template=clinic, valid_to=weeks_ahead(30))
    body = template_body(label="Injection clinic (room 3)")
    del body["capacity"]

    response = front_desk.put(f"{TEMPLATES}{clinic.uuid}/", body, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["label"], response.json()["capacity"], response.json()["valid_to"]) == (
        "Injection clinic (room 3)",
        1,
        None,
    )
    assert set(Slot.objects.filter(session__template=clinic).values_list("capacity", flat=True)) == {1}
    assert front_desk.put(f"{TEMPLATES}{clinic.uuid}/", {"label": "Room 3"}, format="json").status_code == 400


def test_a_patch_that_changes_nothing_is_a_400_and_leaves_the_sessions_be(front_desk, clinic):
    ids = set(ClinicSession.objects.values_list("uuid", flat=True))

    response = front_desk.patch(f"{TEMPLATES}{clinic.uuid}/", {}, format="json")

    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Give at least one field to change."]}
    assert set(ClinicSession.objects.values_list("uuid", flat=True)) == ids


def test_a_template_change_honours_if_match(front_desk, clinic):
    url = f"{TEMPLATES}{clinic.uuid}/"
    etag = front_desk.get(url)["ETag"]

    assert front_desk.patch(url, {"capacity": 3}, format="json", HTTP_IF_MATCH=etag).status_code == 200
    stale = front_desk.patch(url, {"capacity": 4}, format="json", HTTP_IF_MATCH=etag)
    assert stale.status_code == 412
    assert stored(clinic).capacity == 3


def test_a_retried_template_post_makes_one_template(front_desk, no_templates):
    first = front_desk.post(TEMPLATES, template_body(), format="json", HTTP_IDEMPOTENCY_KEY="week-1")
    again = front_desk.post(TEMPLATES, template_body(), format="json", HTTP_IDEMPOTENCY_KEY="week-1")

    assert (first.status_code, again.status_code) == (201, 201)
    assert again.json() == first.json()
    assert SessionTemplate.objects.count() == 1
    assert ClinicSession.objects.count() == len(expected_days())


@pytest.mark.parametrize("role", [Role.NURSE, Role.INTEGRATION_READ])
def test_only_clinicians_and_the_front_desk_write_templates_though_everyone_reads_them(api_as, clinic, role):
    client = api_as(role)
    url = f"{TEMPLATES}{clinic.uuid}/"

    assert client.post(TEMPLATES, template_body(), format="json").status_code == 403
    assert client.patch(url, {"capacity": 5}, format="json").status_code == 403
    assert client.put(url, template_body(), format="json").status_code == 403
    assert stored(clinic).capacity == 2 and SessionTemplate.objects.count() == 1
    assert client.get(url).status_code == 200
    assert [row["id"] for row in client.get(TEMPLATES).json()["results"]] == [str(clinic.uuid)]


def test_templates_filter_by_the_kind_of_visit_they_serve(front_desk, clinic):
    review = front_desk.post(TEMPLATES, template_body(visit_kinds=["review", "lab"]), format="json").json()

    def ids(**query):
        return [row["id"] for row in front_desk.get(TEMPLATES, query).json()["results"]]

    assert ids() == [review["id"], str(clinic.uuid)]
    assert review["visit_kinds"] == ["lab", "review"]
    assert ids(visit_kind="lab") == [review["id"]]
    assert ids(visit_kind="injection") == [str(clinic.uuid)]
    assert front_desk.get(TEMPLATES, {"visit_kind": "surgery"}).status_code == 400
    assert front_desk.get(TEMPLATES, {"weekday": "1"}).json() == {"weekday": ["Unknown query parameter."]}


# --- sessions ---------------------------------------------------------------------------------------


def test_sessions_are_listed_in_the_calendar_s_order_with_their_places(front_desk, clinic):
    booked_into(first_slot(clinic, week=1))

    rows = all_rows(front_desk, SESSIONS, page_size=5)

    assert [row["on"] for row in rows] == [on.isoformat() for on in expected_days()]
    second = rows[1]
    session = ClinicSession.objects.get(uuid=second["id"])
    assert second == {
        "id": str(session.uuid),
        "template": str(clinic.uuid),
        "on": weeks_ahead(1).isoformat(),
        "starts_at": "13:30:00",
        "ends_at": "15:30:00",
        "label": "Injection clinic (room 2)",
        "visit_kinds": ["injection"],
        "cancelled": False,
        "cancel_reason": "",
        "capacity": 8,
        "booked": 1,
        "created_at": second["created_at"],
        "updated_at": second["updated_at"],
    }
    assert front_desk.get(f"{SESSIONS}{session.uuid}/").json() == second


def test_sessions_filter_by_days_kind_template_and_cancellation(front_desk, clinic):
    review = sessions.session_template_save(
        label="Review clinic",
        weekday=first_day().weekday(),
        starts_at=time(9),
        ends_at=time(10),
        visit_kinds=[VisitKind.REVIEW],
        valid_from=today(),
    ).template
    sessions.session_cancel(
        session=ClinicSession.objects.get(template=review, on=weeks_ahead(1)), reason="Away"
    )

    def days(**query) -> list[tuple[str, str]]:
        return [(row["on"], row["label"]) for row in all_rows(front_desk, SESSIONS, **query)]

    window = {"from": weeks_ahead(1).isoformat(), "to": weeks_ahead(2).isoformat()}
    both = [
        (weeks_ahead(week).isoformat(), label)
        for week in (1, 2)
        for label in ("Review clinic", "Injection clinic (room 2)")
    ]
    assert sorted(days(**window)) == sorted(both)
    assert days(**window, visit_kind="injection") == [
        (weeks_ahead(1).isoformat(), "Injection clinic (room 2)"),
        (weeks_ahead(2).isoformat(), "Injection clinic (room 2)"),
    ]
    assert days(**window, template=str(review.uuid)) == [
        (weeks_ahead(1).isoformat(), "Review clinic"),
        (weeks_ahead(2).isoformat(), "Review clinic"),
    ]
    assert days(cancelled="true") == [(weeks_ahead(1).isoformat(), "Review clinic")]
    # Filtering by kind joins the template's kinds: the places are still counted once each.
    filtered = all_rows(front_desk, SESSIONS, visit_kind="review", template=str(review.uuid), **window)
    assert [(row["capacity"], row["booked"]) for row in filtered] == [(4, 0), (4, 0)]
    for query in ({"from": "2026-02-30"}, {"to": "soon"}, {"visit_kind": "surgery"}, {"cancelled": "maybe"}):
        assert front_desk.get(SESSIONS, query).status_code == 400, query


def test_cancelling_a_session_puts_its_booked_visits_back_to_planned(front_desk, clinic):
    slot = first_slot(clinic, week=1)
    visits = [booked_into(slot), booked_into(slot)]
    elsewhere = booked_into(first_slot(clinic, week=2))
    session = slot.session

    response = front_desk.post(
        f"{SESSIONS}{session.uuid}/cancel/", {"reason": "Public holiday"}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["cancelled"], body["cancel_reason"], body["booked"]) == (
        str(session.uuid),
        True,
        "Public holiday",
        0,
    )
    for visit in visits:
        visit = stored(visit)
        assert (visit.status, visit.slot) == (VisitStatus.PLANNED, None)
        assert visit.clinic_cancelled_at is not None
        assert Reminder.objects.filter(visit=visit, kind=ReminderKind.APPOINTMENT_CANCELLED).exists()
        read = front_desk.get(f"{API}visits/{visit.uuid}/").json()
        assert (read["status"], read["slot"]) == ("planned", None)
        assert parse_datetime(read["clinic_cancelled_at"]) == visit.clinic_cancelled_at
    assert stored(elsewhere).status == VisitStatus.BOOKED
    # Its slots take no booking now, so they leave the slots the clinic offers.
    offered = {row["id"] for row in all_rows(front_desk, SLOTS)}
    assert str(slot.uuid) not in offered and str(first_slot(clinic, week=2).uuid) in offered
    assert front_desk.get(f"{SLOTS}{slot.uuid}/").status_code == 404


def test_a_second_cancel_is_a_400_and_changes_nothing(clinician, clinic):
    session = first_slot(clinic).session
    url = f"{SESSIONS}{session.uuid}/cancel/"
    assert clinician.post(url, {"reason": "Public holiday"}, format="json").status_code == 200

    response = clinician.post(url, {"reason": "Strike"}, format="json")

    assert response.status_code == 400
    assert response.json() == {
        "cancelled": ["This session is cancelled already."],
        "error_codes": {"cancelled": ["already_cancelled"]},
    }
    assert stored(session).cancel_reason == "Public holiday"


def test_a_session_that_is_over_cannot_be_cancelled(front_desk, no_templates):
    weeks_ago = today() - timedelta(weeks=3)
    old = sessions.session_template_save(
        label="Last month's clinic",
        weekday=weeks_ago.weekday(),
        starts_at=time(9),
        ends_at=time(10),
        visit_kinds=[VisitKind.REVIEW],
        valid_from=weeks_ago,
        today=weeks_ago,
    ).template
    session = ClinicSession.objects.get(template=old, on=weeks_ago)

    response = front_desk.post(f"{SESSIONS}{session.uuid}/cancel/", {"reason": "Too late"}, format="json")

    assert response.status_code == 400
    assert response.json()["error_codes"] == {"on": ["session_over"]}
    assert not stored(session).cancelled


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"reason": ["This field is required."]}),
        ({"reason": ""}, {"reason": ["This field may not be blank."]}),
        ({"reason": "x" * 201}, {"reason": ["Ensure this field has no more than 200 characters."]}),
        ({"reason": "Holiday", "notify": False}, {"notify": ["Unknown field."]}),
    ],
)
def test_a_cancel_needs_a_reason(front_desk, clinic, body, expected):
    session = first_slot(clinic).session

    response = front_desk.post(f"{SESSIONS}{session.uuid}/cancel/", body, format="json")

    assert (response.status_code, response.json()) == (400, expected)
    assert not stored(session).cancelled


@pytest.mark.parametrize("role", [Role.NURSE, Role.INTEGRATION_READ])
def test_only_clinicians_and_the_front_desk_cancel_sessions(api_as, clinic, role):
    slot = first_slot(clinic)
    visit = booked_into(slot)

    response = api_as(role).post(f"{SESSIONS}{slot.session.uuid}/cancel/", {"reason": "Away"}, format="json")

    assert response.status_code == 403
    assert not stored(slot.session).cancelled and stored(visit).status == VisitStatus.BOOKED


def test_a_cancel_honours_if_match(front_desk, clinic):
    session = first_slot(clinic).session
    url = f"{SESSIONS}{session.uuid}/"
    etag = front_desk.get(url)["ETag"]
    ClinicSession.objects.filter(pk=session.pk).update(label="Room 3", updated_at=timezone.now())

    response = front_desk.post(f"{url}cancel/", {"reason": "Away"}, format="json", HTTP_IF_MATCH=etag)

    assert response.status_code == 412
    assert not stored(session).cancelled


# --- slots ------------------------------------------------------------------------------------------


def test_slots_count_their_free_places(front_desk, clinic):
    slot = first_slot(clinic)
    booked_into(slot)

    row = front_desk.get(f"{SLOTS}{slot.uuid}/").json()

    assert row == {
        "id": str(slot.uuid),
        "session": str(slot.session.uuid),
        "label": "Injection clinic (room 2)",
        "starts_at": row["starts_at"],
        "capacity": 2,
        "booked": 1,
        "free": 1,
    }
    assert parse_datetime(row["starts_at"]) == slot.starts_at
    assert parse_datetime(row["starts_at"]).utcoffset() == slot.starts_at.astimezone(ZONE).utcoffset()
    booked_into(slot)
    assert front_desk.get(f"{SLOTS}{slot.uuid}/").json()["free"] == 0


def test_slots_are_listed_earliest_first_by_day_kind_and_session(front_desk, clinic):
    review = sessions.session_template_save(
        label="Review clinic",
        weekday=weeks_ahead(1).weekday(),
        starts_at=time(9),
        ends_at=time(10),
        slot_minutes=20,
        visit_kinds=[VisitKind.REVIEW],
        valid_from=today(),
    ).template

    def slots(page_size=3, **query) -> tuple[list[Slot], list[dict]]:
        rows = all_rows(front_desk, SLOTS, page_size=page_size, **query)
        found = Slot.objects.filter(uuid__in=[row["id"] for row in rows]).order_by("starts_at", "id")
        return list(found), rows

    week = {"from": weeks_ahead(1).isoformat(), "to": weeks_ahead(1).isoformat()}
    found, rows = slots(**week)
    assert [row["id"] for row in rows] == [str(slot.uuid) for slot in found]
    assert [(slot.session.label, slot.starts_at.astimezone(ZONE).time()) for slot in found] == [
        ("Review clinic", time(9)),
        ("Review clinic", time(9, 20)),
        ("Review clinic", time(9, 40)),
        ("Injection clinic (room 2)", time(13, 30)),
        ("Injection clinic (room 2)", time(14)),
        ("Injection clinic (room 2)", time(14, 30)),
        ("Injection clinic (room 2)", time(15)),
    ]
    found, _ = slots(**week, visit_kind="review")
    assert {slot.session.template for slot in found} == {review}
    session = ClinicSession.objects.get(template=clinic, on=weeks_ahead(3))
    found, _ = slots(session=str(session.uuid))
    assert {slot.session for slot in found} == {session} and len(found) == 4
    everything, rows = slots(page_size=50)
    assert len(everything) == len(rows) == Slot.objects.count()


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-13-01"},
        {"to": "tomorrow"},
        {"visit_kind": "surgery"},
        {"session": "not-a-uuid"},
        {"updated_since": "2026-01-01T00:00:00Z"},  # a slot keeps no time of change
        {"free": "true"},
    ],
)
def test_a_slot_query_it_cannot_read_is_a_400(front_desk, clinic, query):
    assert front_desk.get(SLOTS, query).status_code == 400


@pytest.mark.parametrize("url", [TEMPLATES, SESSIONS, SLOTS])
def test_a_list_takes_as_many_queries_for_a_long_page_as_for_one_row(
    front_desk, clinic, url, django_assert_max_num_queries
):
    booked_into(first_slot(clinic))
    front_desk.get(url)  # the client's first request also notes when it was used
    for week in range(6):
        sessions.session_template_save(
            label=f"Review clinic {week}",
            weekday=week,
            starts_at=time(9),
            ends_at=time(12),
            visit_kinds=[VisitKind.REVIEW, VisitKind.LAB],
            valid_from=today(),
        )

    with CaptureQueriesContext(connection) as one:
        assert len(front_desk.get(url, {"page_size": 1}).json()["results"]) == 1
    with django_assert_max_num_queries(len(one)):
        assert len(front_desk.get(url, {"page_size": 7}).json()["results"]) == 7
    with django_assert_max_num_queries(len(one)):
        assert len(front_desk.get(url, {"page_size": 500, "visit_kind": "review"}).json()["results"]) >= 6


@pytest.mark.parametrize("url", [TEMPLATES, SESSIONS, SLOTS])
def test_the_clinic_s_week_is_nobody_s_record_so_reading_it_audits_nothing(integration, clinic, url):
    assert integration.get(url).status_code == 200
    assert not AuditEvent.objects.exists()
