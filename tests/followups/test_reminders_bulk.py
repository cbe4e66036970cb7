"""Reminders of visits written in bulk (``reminders_plan_bulk``): the rows ``reminders_plan_for``
would have created, inserted set-based on PostgreSQL and in batches elsewhere, and nothing else.

Visits are written with ``Visit.objects.bulk_create``, as an import or a restore writes them, so no
planning ran before the bulk path. Each path is compared with a per-patient run of
``reminders_plan_for`` on the same visits (reminder rows emptied in between).
"""

import io
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.utils import timezone

from followups import services as followups
from followups.codes import ReminderKind, ReminderStatus, VisitSource, VisitStatus
from followups.models import Reminder, Visit
from followups.reminders import reminder_cancel, reminders_plan_bulk, reminders_plan_for
from followups.reminders.planning_bulk import reminders_plan_bulk_python, reminders_plan_bulk_sql
from patients import services as record
from patients.models import Patient
from tests.factories import PatientFactory
from tests.smoke import environment, manage

D7, D1, MISSED = ReminderKind.VISIT_7D, ReminderKind.VISIT_1D, ReminderKind.MISSED_VISIT
INVITATION, LAST_CALL = ReminderKind.BOOKING_INVITATION, ReminderKind.BOOKING_LAST_CALL
PENDING, SKIPPED, SENT = ReminderStatus.PENDING, ReminderStatus.SKIPPED, ReminderStatus.SENT
NEW_YORK, BERLIN, AUCKLAND = "America/New_York", "Europe/Berlin", "Pacific/Auckland"
UTC = ZoneInfo("UTC")
COMPARED = ("visit_id", "kind", "visit_time", "due_at", "status", "status_reason", "next_attempt_at")

PATHS = {
    "sql": reminders_plan_bulk_sql,
    # Chunks smaller than one patient's visits: no visit is lost or planned twice at a boundary.
    "sql-in-chunks-of-7": lambda *, now: reminders_plan_bulk_sql(now=now, chunk=7),
    "python": reminders_plan_bulk_python,
    "python-in-batches-of-7": lambda *, now: reminders_plan_bulk_python(now=now, batch=7),
}


def dst_changes(zone: str, year: int) -> list[date]:
    tz = ZoneInfo(zone)
    noon = [datetime(year, 1, 1, 12, tzinfo=tz) + timedelta(days=n) for n in range(365)]
    return [b.date() for a, b in zip(noon, noon[1:], strict=False) if a.utcoffset() != b.utcoffset()]


def rows() -> list[tuple]:
    return list(Reminder.objects.order_by(*COMPARED[:3]).values_list(*COMPARED))


def full_rows() -> list[dict]:
    return list(Reminder.objects.order_by("pk").values())


def visit(patient, when: datetime, status=VisitStatus.BOOKED, **fields) -> Visit:
    on = when.astimezone(ZoneInfo(settings.CLINIC_TIME_ZONE)).date()
    fields.setdefault("window_start", on)
    fields.setdefault("window_end", on)
    if status == VisitStatus.CANCELLED:
        fields["cancel_reason"] = "The patient asked to cancel."
    return Visit(
        patient=patient,
        purpose="Review",
        scheduled_for=when,
        status=status,
        source=VisitSource.MANUAL,
        **fields,
    )


def patients_of_every_kind() -> list[Patient]:
    patients = [
        PatientFactory(email_reminders=True),  # the clinic's zone
        PatientFactory(email_reminders=True, timezone=NEW_YORK),
        PatientFactory(email_reminders=True, timezone=BERLIN),
        PatientFactory(email_reminders=True, timezone=AUCKLAND),
        PatientFactory(email_reminders=False, timezone="Asia/Kolkata"),
        PatientFactory(email_reminders=False, email=""),
        PatientFactory(email_reminders=True, timezone=NEW_YORK),
        PatientFactory(email_reminders=True, timezone=BERLIN),
    ]
    record.patient_archive(patient=patients[-2])
    Patient.objects.filter(pk=patients[-1].pk).update(
        follow_up_ended_on=timezone.localdate(), follow_up_end_reason="moved_away"
    )
    return list(Patient.objects.filter(pk__in=[p.pk for p in patients]).order_by("pk"))


def visits_written_in_bulk(patients: list[Patient], now: datetime) -> list[Visit]:
    """Visits of every state, past and ahead, and the weeks around next year's clock changes."""
    year = now.year + 1
    changes = [day for zone in (NEW_YORK, BERLIN, AUCKLAND) for day in dst_changes(zone, year)]
    visits, missed_then_rebooked = [], []
    for patient in patients:
        zone = ZoneInfo(patient.timezone or settings.CLINIC_TIME_ZONE)
        for n, day in enumerate(changed + timedelta(days=d) for changed in changes for d in range(-3, 10)):
            status = (VisitStatus.PLANNED, VisitStatus.BOOKED)[n % 2]
            # Late in the evening and just after midnight, the patient's day is not the clinic's.
            when = datetime.combine(day, time((0, 10, 23)[n % 3], 30), tzinfo=zone)
            # A planned visit's invitations fall from its window's first and last days: windows
            # of many lengths, so that each end of the window is checked on its own.
            window = {
                "window_start": day - timedelta(days=n % 4),
                "window_end": day + timedelta(days=3 * (n % 5)),
            }
            visits.append(visit(patient, when, status, **(window if status == VisitStatus.PLANNED else {})))
        for status in VisitStatus:
            for ahead in (-10, -3, -1, 0.5, 3, 20):
                when = now + timedelta(days=ahead)
                visits.append(visit(patient, when, status))
        for opens, closes in ((-20, -1), (-10, 3), (-2, 12), (1, 4), (5, 40), (30, 60)):
            # Invited at once or on its day, a last call late, ahead, or before the window opens.
            today = now.date()
            visits.append(
                visit(
                    patient,
                    now + timedelta(days=max(opens, 0) + 0.5),
                    VisitStatus.PLANNED,
                    window_start=today + timedelta(days=opens),
                    window_end=today + timedelta(days=closes),
                )
            )
        for ahead in (-3, -1):
            when = now + timedelta(days=ahead)
            on = when.date()
            # The window closed yesterday or today: the please-rebook reminder is late or ahead.
            visits.append(
                visit(patient, when, VisitStatus.MISSED, window_start=on, window_end=on + timedelta(days=2))
            )
            # Booked after its window, then missed: asked to rebook the day after the appointment.
            visits.append(
                visit(
                    patient,
                    when,
                    VisitStatus.MISSED,
                    window_start=on - timedelta(days=12),
                    window_end=on - timedelta(days=5),
                )
            )
        missed_then_rebooked.append(visit(patient, now - timedelta(days=1), VisitStatus.MISSED))
    visits = Visit.objects.bulk_create(visits + missed_then_rebooked)
    Visit.objects.bulk_create(
        visit(missed.patient, now + timedelta(days=15), rebooked_from=missed)
        for missed in missed_then_rebooked
    )
    return visits


def planned_per_patient(now: datetime) -> list[tuple]:
    Reminder.objects.all().delete()
    for patient in Patient.objects.all():
        reminders_plan_for(patient=patient, now=now)
    return rows()


@pytest.fixture(params=[9, 1, 2], ids=lambda hour: f"sent-at-{hour}h")
def send_hour(request, settings):
    # 01:00 occurs twice in New York the night its clock goes back, 02:00 in Berlin and Auckland;
    # 02:00 never occurs the night clocks go forward.
    settings.REMINDER_SEND_HOUR = request.param
    return request.param


@pytest.mark.parametrize("path", PATHS)
def test_bulk_planning_inserts_exactly_the_rows_planning_per_patient_creates(db, send_hour, path):
    now = timezone.now()
    visits_written_in_bulk(patients_of_every_kind(), now)
    assert not Reminder.objects.exists()

    inserted = PATHS[path](now=now)

    bulk = rows()
    assert inserted == len(bulk)
    assert bulk == planned_per_patient(now)
    # The data set reaches every outcome, so the comparison covers each of them.
    assert {(kind, status, reason) for _, kind, _, _, status, reason, _ in bulk} >= {
        (kind, PENDING, "") for kind in (D7, D1, MISSED, INVITATION, LAST_CALL)
    } | {
        (kind, SKIPPED, reason)
        for kind in (D7, D1, MISSED, INVITATION, LAST_CALL)
        for reason in (
            "The patient is archived.",
            "The patient's follow-up has ended.",
            "No consent to e-mail reminders.",
            "Its time had passed when it was planned.",
        )
    }


def test_a_send_hour_that_occurs_twice_is_placed_at_its_first_occurrence_as_per_patient(db, settings):
    settings.REMINDER_SEND_HOUR = 1
    now = timezone.now()
    fall_back = dst_changes(NEW_YORK, now.year + 1)[1]
    patient = PatientFactory(email_reminders=True, timezone=NEW_YORK)
    Visit.objects.bulk_create(
        [visit(patient, datetime.combine(fall_back + timedelta(days=1), time(10), ZoneInfo(NEW_YORK)))]
    )

    assert reminders_plan_bulk(now=now) == 2

    first_one_oclock = datetime.combine(fall_back, time(5), UTC)  # 01:00 EDT, an hour before 01:00 EST
    assert Reminder.objects.get(kind=D1).due_at == first_one_oclock
    assert rows() == planned_per_patient(now)


@pytest.mark.parametrize("path", PATHS)
def test_a_second_run_inserts_nothing_and_changes_nothing(db, path):
    now = timezone.now()
    visits_written_in_bulk(patients_of_every_kind(), now)
    assert PATHS[path](now=now) > 0
    before = full_rows()

    assert PATHS[path](now=now) == 0
    assert reminders_plan_bulk(now=now) == 0

    assert full_rows() == before


@pytest.mark.parametrize("path", PATHS)
def test_rows_that_exist_are_left_as_they_are_and_only_the_missing_ones_are_inserted(db, path):
    now = timezone.now()
    patient = PatientFactory(email_reminders=True)
    moved = followups.visit_create(patient=patient, purpose="Review", scheduled_for=now + timedelta(days=20))
    reminder_cancel(reminder=Reminder.objects.get(visit=moved, kind=D7))
    # A restore writes the visit at another time, around the services: its old rows stay open.
    Visit.objects.filter(pk=moved.pk).update(scheduled_for=now + timedelta(days=30))
    (half_planned,) = Visit.objects.bulk_create([visit(patient, now + timedelta(days=10))])
    Reminder.objects.create(
        visit=half_planned,
        kind=D1,
        visit_time=half_planned.scheduled_for,
        due_at=now,
        status=SENT,
        sent_at=now,
    )
    before = full_rows()

    inserted = PATHS[path](now=now)

    assert full_rows()[: len(before)] == before
    new = Reminder.objects.exclude(pk__in=[row["id"] for row in before])
    assert inserted == new.count() == 3
    assert {(r.visit_id, r.kind, r.visit_time, r.status) for r in new} == {
        (moved.pk, D7, now + timedelta(days=30), PENDING),
        (moved.pk, D1, now + timedelta(days=30), PENDING),
        (half_planned.pk, D7, half_planned.scheduled_for, PENDING),
    }


def test_the_python_path_reads_and_writes_a_batch_at_a_time(db, django_assert_max_num_queries):
    now = timezone.now()
    patients = [PatientFactory(email_reminders=True) for _ in range(3)]
    Visit.objects.bulk_create(
        visit(patients[n % 3], now + timedelta(days=5 + n), VisitStatus.PLANNED) for n in range(60)
    )

    # Per batch of 20: its savepoint and release, the visits with their patients, the rows that
    # exist, one insert and one count; then the empty page that ends the run.
    with django_assert_max_num_queries(3 * 6 + 3):
        inserted = reminders_plan_bulk_python(now=now, batch=20)

    assert inserted == Reminder.objects.count() == 120


def test_the_command_prints_how_many_rows_it_planned_and_nothing_about_the_patient(db):
    patient = PatientFactory(
        given_name="Ottilie", email="ottilie.bulk@patients.example", email_reminders=True
    )
    Visit.objects.bulk_create([visit(patient, timezone.now() + timedelta(days=20))])

    first, again = io.StringIO(), io.StringIO()
    call_command("reminders_plan", stdout=first)
    call_command("reminders_plan", stdout=again)

    assert first.getvalue().startswith("Planned 2 reminders in ")
    assert again.getvalue().startswith("Planned 0 reminders in ")
    assert "ottilie" not in first.getvalue().lower()


SQLITE_SCRIPT = """
from datetime import timedelta
from django.utils import timezone
from followups.models import Reminder, Visit
from tests.factories import PatientFactory
patient = PatientFactory(email_reminders=True, timezone="America/New_York")
when = timezone.now() + timedelta(days=20)
Visit.objects.bulk_create(
    Visit(patient=patient, purpose="Review", scheduled_for=when, window_start=when.date(),
          window_end=when.date(), status="booked", source="manual")
    for _ in range(1500)
)
"""
# Statuses and local hours of the rows the command planned (the subprocess sends at 9, the default).
SQLITE_CHECK = """
from zoneinfo import ZoneInfo
from followups.models import Reminder
zone = ZoneInfo("America/New_York")
for status, hour in {(r.status, r.due_at.astimezone(zone).hour) for r in Reminder.objects.all()}:
    print(status, hour)
"""


def test_the_embedded_database_plans_the_same_rows_in_batches(tmp_path):
    env = environment(VAR_DIR=tmp_path / "var")
    assert manage("migrate", "--noinput", env=env).returncode == 0
    assert manage("shell", "-v", "0", "-c", SQLITE_SCRIPT, env=env).returncode == 0

    first = manage("reminders_plan", env=env)
    again = manage("reminders_plan", env=env)

    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("Planned 3000 reminders"), first.stdout
    assert again.stdout.startswith("Planned 0 reminders"), again.stdout
    local = manage("shell", "-v", "0", "-c", SQLITE_CHECK, env=env)
    assert local.stdout.split() == ["pending", "9"], local.stderr
