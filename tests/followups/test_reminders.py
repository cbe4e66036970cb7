"""Reminder rows (DOMAIN.md section 6): planning through the visit services, then claiming and
delivering as the sweeper and the send task do, called here in the test process without a worker.

Django's locmem e-mail backend collects what is sent (``mail.outbox``); a mail server that refuses
is a small e-mail backend defined below, standing in for an SMTP server. The fault tests with real
processes are in tests/reliability/.
"""

import smtplib
import uuid
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone

from followups import services as followups
from followups.codes import ReminderKind, ReminderStatus, VisitStatus
from followups.models import Reminder, Visit
from followups.reminders import (
    reminder_cancel,
    reminder_deliver,
    reminder_resend,
    reminders_claim_due,
    reminders_plan_for,
)
from followups.visit_moves import visit_move
from patients import services as record
from tests.factories import PatientFactory, diagnosis_for
from tests.followups.conftest import cancel, complete, days, live, record_toxin, unbook

D7, D1, MISSED = ReminderKind.VISIT_7D, ReminderKind.VISIT_1D, ReminderKind.MISSED_VISIT
INVITATION, LAST_CALL = ReminderKind.BOOKING_INVITATION, ReminderKind.BOOKING_LAST_CALL
PENDING, SENDING, SENT, FAILED, CANCELLED, SKIPPED = (
    ReminderStatus.PENDING,
    ReminderStatus.SENDING,
    ReminderStatus.SENT,
    ReminderStatus.FAILED,
    ReminderStatus.CANCELLED,
    ReminderStatus.SKIPPED,
)
CLINIC_ZONE = settings.CLINIC_TIME_ZONE
NEW_YORK, BERLIN = "America/New_York", "Europe/Berlin"
ADDRESS = "ada.reminded@patients.example"


@pytest.fixture
def consenting(db):
    """A patient who agreed to e-mail reminders, in the clinic's time zone."""
    return PatientFactory(given_name="Ada", email=ADDRESS, email_reminders=True)


def on_day(day: date, hour: int, minute: int = 0, *, zone: str = CLINIC_ZONE) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(zone))


def ahead(n: int, hour: int = 14) -> datetime:
    """``hour`` o'clock at the clinic, ``n`` days after its today."""
    return on_day(timezone.localdate() + days(n), hour)


def at_nine(day: date, zone: str = CLINIC_ZONE) -> datetime:
    return on_day(day, settings.REMINDER_SEND_HOUR, zone=zone)


def book(patient, when: datetime, **fields):
    return followups.visit_create(patient=patient, purpose="Review", scheduled_for=when, **fields)


def book_in_window(patient, when: datetime, before: int = 3, after: int = 6):
    """A visit booked at ``when``, due from ``before`` days earlier to ``after`` days later: it can be
    rescheduled within that window without confirming a time outside it (DOMAIN.md 2)."""
    on = timezone.localdate(when)
    return book(patient, when, window_start=on - days(before), window_end=on + days(after))


def reschedule(visit, when: datetime):
    return visit_move(visit=visit, to=VisitStatus.BOOKED, scheduled_for=when)


def reminders_of(visit, *statuses) -> list[Reminder]:
    rows = Reminder.objects.filter(visit=visit)
    if statuses:
        rows = rows.filter(status__in=statuses)
    return list(rows.order_by("visit_time", "kind", "id"))


def states(visit) -> set[tuple]:
    """(kind, visit time, status) of every reminder row of the visit."""
    return {(r.kind, r.visit_time, r.status) for r in reminders_of(visit)}


def one(visit, kind, *statuses) -> Reminder:
    rows = Reminder.objects.filter(visit=visit, kind=kind)
    if statuses:
        rows = rows.filter(status__in=statuses)
    return rows.get()


def pending_of(patient):
    return Reminder.objects.filter(visit__patient=patient, status=PENDING)


def row_snapshot(patient):
    return list(Reminder.objects.filter(visit__patient=patient).order_by("pk").values())


def due_now(reminder: Reminder) -> Reminder:
    """Make a pending reminder due for the sweeper now; its planned time (``due_at``) stays."""
    Reminder.objects.filter(pk=reminder.pk).update(next_attempt_at=timezone.now())
    reminder.refresh_from_db()
    return reminder


def claimed(reminder: Reminder) -> uuid.UUID:
    """Claim ``reminder`` (due now) as the sweeper would; answer its claim id."""
    due_now(reminder)
    claims = dict(reminders_claim_due())
    assert reminder.pk in claims
    return claims[reminder.pk]


def deliver(reminder: Reminder, claim_id) -> str:
    outcome = reminder_deliver(reminder_id=reminder.pk, claim_id=claim_id)
    reminder.refresh_from_db()
    return outcome


# --- planning ---------------------------------------------------------------------------------


def test_a_booked_visit_gets_a_reminder_7_days_and_1_day_before_at_nine_in_the_clinics_zone(consenting):
    when = ahead(20, 14)

    visit = book(consenting, when)

    assert states(visit) == {(D7, when, PENDING), (D1, when, PENDING)}
    for kind, before in ((D7, 7), (D1, 1)):
        reminder = one(visit, kind)
        assert reminder.due_at == at_nine(when.date() - days(before))
        assert reminder.next_attempt_at == reminder.due_at
        assert (reminder.attempts, reminder.claim_id, reminder.sent_at) == (0, None, None)


def window_noon(day: date) -> datetime:
    """The ``visit_time`` of a window's invitations: noon UTC of its first day."""
    return on_day(day, 12, zone="UTC")


def plan(patient, start: int, end: int, target: int | None = None):
    """A planned visit (not an appointment) due from ``start`` to ``end`` days ahead."""
    today = timezone.localdate()
    target = start if target is None else target
    return book(
        patient,
        ahead(target, 9),
        status=VisitStatus.PLANNED,
        window_start=today + days(start),
        window_end=today + days(end),
    )


def test_a_planned_visit_is_invited_14_days_before_its_window_and_called_7_days_before_it_closes(consenting):
    today = timezone.localdate()
    visit = plan(consenting, 30, 44, target=37)

    assert visit.status == VisitStatus.PLANNED
    key = window_noon(today + days(30))
    # Never an appointment reminder: a planned visit has no time anybody booked.
    assert states(visit) == {(INVITATION, key, PENDING), (LAST_CALL, key, PENDING)}
    assert one(visit, INVITATION).due_at == at_nine(today + days(16))
    assert one(visit, LAST_CALL).due_at == at_nine(today + days(37))


def test_a_visit_planned_later_than_its_invitation_day_is_invited_at_once(consenting):
    today = timezone.localdate()
    visit = plan(consenting, 3, 20)

    invitation = one(visit, INVITATION)
    assert invitation.status == PENDING
    assert invitation.due_at == at_nine(today - days(11))
    # Due already: the sweeper's next round takes it.
    assert invitation.pk in dict(reminders_claim_due())
    assert one(visit, LAST_CALL).status == PENDING


def test_an_invitation_is_not_sent_once_the_window_has_closed_and_a_last_call_not_after_its_day(consenting):
    visit = plan(consenting, -10, 5)

    assert one(visit, INVITATION).status == PENDING
    assert (one(visit, LAST_CALL).status, one(visit, LAST_CALL).status_reason) == (
        SKIPPED,
        "Its time had passed when it was planned.",
    )


def test_booking_a_planned_visit_cancels_its_invitations_and_giving_the_booking_up_brings_them_back(
    consenting,
):
    visit = plan(consenting, 20, 40, target=25)
    key = window_noon(timezone.localdate() + days(20))
    when = ahead(25, 10)

    visit_move(visit=visit, to=VisitStatus.BOOKED, scheduled_for=when)
    assert states(visit) == {
        (INVITATION, key, CANCELLED),
        (LAST_CALL, key, CANCELLED),
        (D7, when, PENDING),
        (D1, when, PENDING),
    }

    unbook(visit)
    # Keyed on the window, not a time: the same rows come back, never a second invitation.
    assert states(visit) == {
        (INVITATION, key, PENDING),
        (LAST_CALL, key, PENDING),
        (D7, when, CANCELLED),
        (D1, when, CANCELLED),
    }


def test_a_sent_invitation_is_not_sent_again_when_a_booking_is_given_up(consenting):
    visit = plan(consenting, 3, 30)
    invitation = one(visit, INVITATION)
    assert deliver(invitation, claimed(invitation)) == "sent"
    visit_move(visit=visit, to=VisitStatus.BOOKED, scheduled_for=ahead(10, 10))

    unbook(visit)

    assert one(visit, INVITATION).status == SENT
    assert len(mail.outbox) == 1


def test_an_invitation_claimed_after_its_visit_was_booked_is_cancelled_not_sent(consenting):
    visit = plan(consenting, 3, 30)
    invitation = one(visit, INVITATION)
    claim_id = claimed(invitation)

    visit_move(visit=visit, to=VisitStatus.BOOKED, scheduled_for=ahead(10, 10))

    assert deliver(invitation, claim_id) == "cancelled"
    assert invitation.status_reason == "The visit is booked: there is nothing to invite to."
    assert mail.outbox == []


def test_an_old_appointment_reminder_of_a_planned_visit_is_never_sent(consenting):
    """Rule version 1 reminded planned visits as appointments: such a row, left from before, is
    cancelled at sending time, never sent with a time nobody booked."""
    visit = plan(consenting, 10, 20)
    old = Reminder.objects.create(
        visit=visit,
        kind=D7,
        visit_time=visit.scheduled_for,
        due_at=timezone.now(),
        next_attempt_at=timezone.now(),
    )

    assert deliver(old, claimed(old)) == "cancelled"
    assert old.status_reason == "The visit is planned, not booked: only an appointment is reminded of."
    assert mail.outbox == []


def test_the_patients_own_time_zone_decides_the_day_and_the_hour(db):
    patient = PatientFactory(email_reminders=True, timezone=NEW_YORK)
    # 02:30 in Berlin is 20:30 the evening before in New York: the patient's calendar day counts.
    when = ahead(20, 2).replace(minute=30)
    new_york_day = when.astimezone(ZoneInfo(NEW_YORK)).date()
    assert new_york_day == when.date() - days(1)

    visit = book(patient, when)

    assert one(visit, D1).due_at == at_nine(new_york_day - days(1), NEW_YORK)
    assert one(visit, D7).due_at == at_nine(new_york_day - days(7), NEW_YORK)
    assert one(visit, D1).due_at.astimezone(ZoneInfo(NEW_YORK)).hour == 9


def test_a_change_of_time_zone_moves_the_pending_reminders_to_nine_in_the_new_zone(consenting):
    when = ahead(20, 14)
    visit = book(consenting, when)

    record.patient_update(patient=consenting, timezone=NEW_YORK)

    assert states(visit) == {(D7, when, PENDING), (D1, when, PENDING)}
    reminder = one(visit, D1)
    assert reminder.due_at == at_nine(when.date() - days(1), NEW_YORK)
    assert reminder.next_attempt_at == reminder.due_at


def test_protocol_visits_planned_for_a_treatment_get_their_reminders(consenting, today):
    diagnosis = diagnosis_for(consenting, diagnosed_on=today - days(30))
    session = record_toxin(diagnosis, today)
    planned = live(session)
    assert planned

    for visit in planned:
        assert visit.status == VisitStatus.PLANNED
        assert states(visit) == {
            (INVITATION, window_noon(visit.window_start), PENDING),
            (LAST_CALL, window_noon(visit.window_start), PENDING),
        }
    assert pending_of(consenting).count() == 2 * len(planned)


def test_a_reschedule_cancels_the_old_reminders_and_plans_new_ones_for_the_new_time(consenting):
    first, second = ahead(20, 14), ahead(25, 9)
    visit = book_in_window(consenting, first)

    reschedule(visit, second)

    assert states(visit) == {
        (D7, first, CANCELLED),
        (D1, first, CANCELLED),
        (D7, second, PENDING),
        (D1, second, PENDING),
    }
    for reminder in reminders_of(visit, CANCELLED):
        assert reminder.status_reason.startswith("The visit changed")
    assert one(visit, D1, PENDING).due_at == at_nine(second.date() - days(1))

    # Booking at the time it already has changes no reminder.
    before = row_snapshot(consenting)
    reschedule(visit, second)
    assert row_snapshot(consenting) == before


def test_moving_an_appointment_back_to_its_first_time_brings_its_reminders_back(consenting):
    first, second = ahead(20, 14), ahead(25, 9)
    visit = book_in_window(consenting, first)
    reschedule(visit, second)

    reschedule(visit, first)

    # One row per (visit, kind, visit time): the first time's rows are pending again.
    assert states(visit) == {
        (D7, first, PENDING),
        (D1, first, PENDING),
        (D7, second, CANCELLED),
        (D1, second, CANCELLED),
    }
    assert one(visit, D1, PENDING).next_attempt_at == at_nine(first.date() - days(1))


@pytest.mark.parametrize(
    "change",
    [
        lambda visit: cancel(visit, "The patient moved away."),
        # Completed on its day (the reminders still pending then are no use any more).
        lambda visit: complete(visit, now=visit.scheduled_for),
    ],
    ids=["cancelled", "completed"],
)
def test_a_cancelled_or_completed_visit_keeps_no_pending_reminder(consenting, change):
    visit = book(consenting, ahead(20))
    other = book(consenting, ahead(30))

    change(visit)

    assert {r.status for r in reminders_of(visit)} == {CANCELLED}
    assert {r.status for r in reminders_of(other)} == {PENDING}


def test_giving_up_a_booking_cancels_the_appointment_s_reminders_and_invites_to_book_again(consenting):
    when = ahead(20)
    visit = book(consenting, when)

    unbook(visit)

    key = window_noon(visit.window_start)
    assert states(visit) == {
        (D7, when, CANCELLED),
        (D1, when, CANCELLED),
        (INVITATION, key, PENDING),
        (LAST_CALL, key, PENDING),
    }


def test_a_missed_visit_gets_a_please_rebook_reminder_at_nine_the_day_after_its_window(consenting, today):
    when = ahead(10, 11)
    visit = book(consenting, when, window_start=today + days(8), window_end=today + days(12))

    # The nightly close of windows, run as if on the day after the window closed.
    assert followups.visits_mark_missed_due(today=today + days(13)) == 1

    visit.refresh_from_db()
    assert visit.status == VisitStatus.MISSED
    assert states(visit) == {(D7, when, CANCELLED), (D1, when, CANCELLED), (MISSED, when, PENDING)}
    assert one(visit, MISSED).due_at == at_nine(today + days(13))


def test_rebooking_a_missed_visit_cancels_its_please_rebook_reminder(consenting, today):
    when = ahead(10, 11)
    visit = book(consenting, when)
    followups.visits_mark_missed_due(today=today + days(12))
    assert one(visit, MISSED).status == PENDING

    rebooked = followups.visit_rebook(visit=visit, scheduled_for=ahead(20, 15))

    assert one(visit, MISSED).status == CANCELLED
    assert {(r.kind, r.status) for r in reminders_of(rebooked)} == {(D7, PENDING), (D1, PENDING)}


def test_a_missed_visit_whose_reminder_time_passed_is_skipped_not_sent_late(consenting, today):
    visit = book(consenting, on_day(today - days(2), 11))

    followups.visits_mark_missed_due(today=today)

    reminder = one(visit, MISSED)
    assert reminder.due_at == at_nine(today - days(1))
    assert (reminder.status, reminder.status_reason) == (SKIPPED, "Its time had passed when it was planned.")
    assert not pending_of(consenting).exists()


def test_a_reminder_whose_time_passed_when_it_was_planned_is_skipped_never_pending(consenting):
    soon = book(consenting, ahead(3, 14))
    in_twelve_hours = book(consenting, timezone.now() + timedelta(hours=12))

    assert one(soon, D7).status == SKIPPED
    assert one(soon, D7).next_attempt_at is None
    assert one(soon, D1).status == PENDING
    assert {r.status for r in reminders_of(in_twelve_hours)} == {SKIPPED}
    assert not reminders_claim_due()


def test_without_consent_reminders_are_skipped_and_consent_brings_back_those_still_ahead(db):
    patient = PatientFactory(email_reminders=False)
    visit = book(patient, ahead(4, 14))
    assert {(r.kind, r.status, r.status_reason) for r in reminders_of(visit)} == {
        (D7, SKIPPED, "No consent to e-mail reminders."),
        (D1, SKIPPED, "No consent to e-mail reminders."),
    }

    record.patient_update(patient=patient, email_reminders=True)

    # The 7-day reminder's time has passed meanwhile: consent does not send it late.
    assert one(visit, D1).status == PENDING
    assert one(visit, D1).next_attempt_at == one(visit, D1).due_at
    assert (one(visit, D7).status, one(visit, D7).status_reason) == (
        SKIPPED,
        "Its time had passed when it was planned.",
    )


def test_an_opt_out_leaves_no_pending_reminder(consenting):
    visits = [book(consenting, ahead(20)), book(consenting, ahead(40))]
    assert pending_of(consenting).count() == 4

    record.patient_update(patient=consenting, email_reminders=False)

    assert not pending_of(consenting).exists()
    for visit in visits:
        assert {r.status for r in reminders_of(visit)} == {SKIPPED}
    assert not reminders_claim_due(now=timezone.now() + timedelta(days=60))


def test_an_archived_patient_has_no_pending_reminder(consenting):
    book(consenting, ahead(20))

    record.patient_archive(patient=consenting)

    assert Reminder.objects.filter(visit__patient=consenting).count() == 2
    assert not pending_of(consenting).exists()
    assert not reminders_claim_due(now=timezone.now() + timedelta(days=30))


def test_planning_twice_changes_nothing(consenting):
    book(consenting, ahead(3))
    visit = book_in_window(consenting, ahead(20))
    reschedule(visit, ahead(22))
    before = row_snapshot(consenting)

    reminders_plan_for(patient=consenting)
    reminders_plan_for(patient=consenting)
    followups.patient_follow_up_refresh(patient=consenting)

    assert row_snapshot(consenting) == before


def test_a_due_reminder_waiting_for_the_sweeper_is_not_skipped_by_a_later_change(consenting):
    reminder = one(book(consenting, ahead(20)), D1)
    just_after = reminder.due_at + timedelta(minutes=1)

    # Another change of the patient's visits a minute after the reminder came due.
    reminders_plan_for(patient=consenting, now=just_after)

    reminder.refresh_from_db()
    assert (reminder.status, reminder.next_attempt_at) == (PENDING, reminder.due_at)
    assert reminder.pk in dict(reminders_claim_due(now=just_after))


def dst_changes(zone: str, year: int) -> list[date]:
    """The days on which ``zone``'s UTC offset changes in ``year``: spring forward, then fall back."""
    tz = ZoneInfo(zone)
    noon = [datetime(year, 1, 1, 12, tzinfo=tz) + timedelta(days=n) for n in range(365)]
    return [b.date() for a, b in zip(noon, noon[1:], strict=False) if a.utcoffset() != b.utcoffset()]


@pytest.mark.parametrize("change", ["spring-forward", "fall-back"])
@pytest.mark.parametrize("zone", [NEW_YORK, BERLIN])
def test_a_week_with_a_daylight_saving_change_has_one_reminder_per_kind_at_nine_local(db, zone, change):
    year = timezone.localdate().year + 2
    changes = dst_changes(zone, year)
    assert len(changes) == 2
    changed_on = changes[0] if change == "spring-forward" else changes[1]
    patient = PatientFactory(email_reminders=True, timezone=zone)

    # Visits from three days before the change to nine after, so that 7-day and 1-day reminders
    # fall on both sides of it.
    visits = [book(patient, on_day(changed_on + days(n), 10, 30, zone=zone)) for n in range(-3, 10)]

    tz = ZoneInfo(zone)
    for visit in visits:
        visit_day = visit.scheduled_for.astimezone(tz).date()
        for kind, before in ((D7, 7), (D1, 1)):
            assert Reminder.objects.filter(visit=visit, kind=kind).count() == 1
            reminder = one(visit, kind)
            local_due = reminder.due_at.astimezone(tz)
            assert reminder.status == PENDING
            assert (local_due.date(), local_due.hour, local_due.minute) == (visit_day - days(before), 9, 0)
    offsets = {one(v, D1).due_at.astimezone(tz).utcoffset() for v in visits}
    assert len(offsets) == 2


# --- claiming and delivering ------------------------------------------------------------------


class BusyMailServer(BaseEmailBackend):
    """A mail server that answers "451 try again later", echoing the recipient as some do."""

    def send_messages(self, email_messages):
        raise smtplib.SMTPResponseException(451, f"4.3.0 <{email_messages[0].to[0]}> busy".encode())


class RejectingMailServer(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise smtplib.SMTPResponseException(554, f"5.7.1 <{email_messages[0].to[0]}> rejected".encode())


class UnknownRecipientMailServer(BaseEmailBackend):
    def send_messages(self, email_messages):
        address = email_messages[0].to[0]
        raise smtplib.SMTPRecipientsRefused({address: (550, f"5.1.1 <{address}> unknown".encode())})


class UnreachableMailServer(BaseEmailBackend):
    def send_messages(self, email_messages):
        raise ConnectionRefusedError(111, "Connection refused")


def mail_server(settings, backend: type) -> None:
    settings.EMAIL_BACKEND = f"{__name__}.{backend.__name__}"


@pytest.fixture
def visit(consenting):
    return book_in_window(consenting, ahead(20))


@pytest.fixture
def reminder(visit):
    return one(visit, D1)


def test_the_sweeper_claims_due_rows_and_lapsed_leases_but_nothing_ahead_or_held(consenting, visit):
    later = one(visit, D7)
    due = due_now(one(visit, D1))
    other = book(consenting, ahead(30))
    now = timezone.now()
    lapsed, held = one(other, D7), one(other, D1)
    held_by = uuid.uuid4()
    Reminder.objects.filter(pk=lapsed.pk).update(
        status=SENDING, claim_id=uuid.uuid4(), lease_expires_at=now - timedelta(seconds=1)
    )
    Reminder.objects.filter(pk=held.pk).update(
        status=SENDING, claim_id=held_by, lease_expires_at=now + timedelta(seconds=60)
    )
    skipped = book(consenting, ahead(3))
    assert one(skipped, D7).status == SKIPPED and one(skipped, D7).due_at < now

    claims = reminders_claim_due()

    assert sorted(pk for pk, _ in claims) == sorted([due.pk, lapsed.pk])
    assert len({claim for _, claim in claims}) == 1
    claim_id = claims[0][1]
    for reminder in (due, lapsed):
        reminder.refresh_from_db()
        assert (reminder.status, reminder.claim_id) == (SENDING, claim_id)
        assert reminder.lease_expires_at > now + timedelta(seconds=settings.REMINDER_LEASE_SECONDS - 5)
    held.refresh_from_db()
    assert (held.status, held.claim_id) == (SENDING, held_by)
    later.refresh_from_db()
    assert later.status == PENDING
    assert one(skipped, D7).status == SKIPPED
    assert reminders_claim_due() == []


def test_a_claim_takes_at_most_one_batch_soonest_first(consenting):
    reminders = [due_now(one(book(consenting, ahead(20 + n)), D1)) for n in range(3)]

    first = reminders_claim_due(batch=2)
    rest = reminders_claim_due(batch=2)

    assert [pk for pk, _ in first] == [r.pk for r in reminders[:2]]
    assert [pk for pk, _ in rest] == [reminders[2].pk]


def test_a_claimed_reminder_is_sent_once_and_a_duplicate_task_sends_nothing(reminder):
    claim_id = claimed(reminder)

    assert deliver(reminder, claim_id) == "sent"
    assert deliver(reminder, claim_id) == "not held"
    assert deliver(reminder, str(claim_id)) == "not held"

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [ADDRESS]
    assert reminder.status == SENT
    assert reminder.sent_at is not None
    assert reminder.message_id == message.extra_headers["Message-ID"]
    assert (reminder.attempts, reminder.last_error) == (1, "")
    assert reminders_claim_due() == []


def test_a_reminder_is_sent_only_with_the_claim_that_holds_it(reminder):
    claim_id = claimed(reminder)

    assert deliver(reminder, uuid.uuid4()) == "not held"
    assert (reminder.status, reminder.attempts, len(mail.outbox)) == (SENDING, 0, 0)
    assert deliver(reminder, claim_id) == "sent"


def test_a_lapsed_lease_claimed_again_leaves_the_first_claim_worthless(reminder):
    first = claimed(reminder)
    Reminder.objects.filter(pk=reminder.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    second = dict(reminders_claim_due())[reminder.pk]

    assert second != first
    assert deliver(reminder, first) == "not held"
    assert deliver(reminder, second) == "sent"
    assert len(mail.outbox) == 1


def test_a_lease_that_lapsed_before_the_task_ran_is_not_sent_on(reminder):
    claim_id = claimed(reminder)
    Reminder.objects.filter(pk=reminder.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))

    assert deliver(reminder, claim_id) == "not held"
    assert mail.outbox == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda v: cancel(v, "Ill"), "The visit is cancelled."),
        (lambda v: reschedule(v, ahead(24)), "The visit was rescheduled."),
        (
            lambda v: record.patient_update(patient=v.patient, email_reminders=False),
            "No consent to e-mail reminders.",
        ),
        (lambda v: record.patient_archive(patient=v.patient), "The patient is archived."),
    ],
    ids=["visit-cancelled", "rescheduled", "opted-out", "archived"],
)
def test_a_reminder_whose_visit_changed_after_the_claim_is_cancelled_not_sent(
    visit, reminder, change, reason
):
    claim_id = claimed(reminder)

    change(visit)
    assert Reminder.objects.get(pk=reminder.pk).status == SENDING

    assert deliver(reminder, claim_id) == "cancelled"
    assert (reminder.status, reminder.status_reason) == (CANCELLED, reason)
    assert mail.outbox == []


def test_a_reminder_claimed_after_its_appointment_passed_is_cancelled_not_sent(consenting):
    visit = book(consenting, ahead(20))
    reminder = one(visit, D1)
    claim_id = claimed(reminder)
    # A worker outage of days: the appointment is over by the time the task runs.
    past = timezone.now() - timedelta(hours=1)
    Visit.objects.filter(pk=visit.pk).update(scheduled_for=past)
    Reminder.objects.filter(pk=reminder.pk).update(visit_time=past)

    assert deliver(reminder, claim_id) == "cancelled"
    assert reminder.status_reason == "The appointment time has passed."
    assert mail.outbox == []


def test_a_transient_smtp_error_goes_back_to_pending_with_a_growing_backoff(settings, reminder):
    mail_server(settings, BusyMailServer)
    base = timedelta(seconds=settings.REMINDER_RETRY_BASE_SECONDS)

    for attempt, backoff in ((1, base), (2, 2 * base)):
        claim_id = claimed(reminder)
        started = timezone.now()
        assert deliver(reminder, claim_id) == "retry"
        finished = timezone.now()

        assert (reminder.status, reminder.attempts) == (PENDING, attempt)
        assert started + backoff <= reminder.next_attempt_at <= finished + backoff
        assert (reminder.claim_id, reminder.lease_expires_at) == (None, None)
        assert "451" in reminder.last_error
        assert ADDRESS not in reminder.last_error and "@" not in reminder.last_error
        # Waiting out the backoff: not claimed before its next attempt.
        assert reminders_claim_due() == []

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    claim_id = claimed(reminder)
    assert deliver(reminder, claim_id) == "sent"
    assert (reminder.attempts, reminder.last_error, len(mail.outbox)) == (3, "", 1)


def test_an_unreachable_mail_server_is_a_transient_error(settings, reminder):
    mail_server(settings, UnreachableMailServer)

    assert deliver(reminder, claimed(reminder)) == "retry"
    assert (reminder.status, reminder.last_error) == (PENDING, "ConnectionRefusedError")


def test_a_retry_waiting_out_its_backoff_is_neither_skipped_nor_hurried_by_another_change(
    settings, consenting, reminder
):
    mail_server(settings, BusyMailServer)
    assert deliver(reminder, claimed(reminder)) == "retry"
    waiting = (reminder.status, reminder.next_attempt_at, reminder.last_error)

    book(consenting, ahead(30))

    reminder.refresh_from_db()
    assert (reminder.status, reminder.next_attempt_at, reminder.last_error) == waiting


@pytest.mark.parametrize(
    ("server", "error"),
    [
        (RejectingMailServer, "SMTPResponseException 554"),
        (UnknownRecipientMailServer, "recipient refused (550)"),
    ],
    ids=["554", "recipient-550"],
)
def test_a_permanent_smtp_error_ends_failed_at_once(settings, reminder, server, error):
    mail_server(settings, server)

    assert deliver(reminder, claimed(reminder)) == "failed"

    assert (reminder.status, reminder.attempts, reminder.last_error) == (FAILED, 1, error)
    assert ADDRESS not in reminder.last_error
    assert reminders_claim_due(now=timezone.now() + timedelta(days=1)) == []


def test_too_many_attempts_end_failed(settings, reminder):
    mail_server(settings, BusyMailServer)
    last = settings.REMINDER_MAX_ATTEMPTS
    Reminder.objects.filter(pk=reminder.pk).update(attempts=last - 2)

    assert deliver(reminder, claimed(reminder)) == "retry"
    assert reminder.attempts == last - 1
    assert deliver(reminder, claimed(reminder)) == "failed"
    assert (reminder.status, reminder.attempts) == (FAILED, last)
    assert "451" in reminder.last_error


def test_staff_cancel_a_pending_reminder_and_it_is_never_claimed(reminder):
    cancelled = reminder_cancel(reminder=reminder)

    reminder.refresh_from_db()
    assert (cancelled.status, reminder.status, reminder.status_reason) == (
        CANCELLED,
        CANCELLED,
        "Cancelled by staff.",
    )
    assert reminder.next_attempt_at is None
    claims = dict(reminders_claim_due(now=timezone.now() + timedelta(days=60)))
    assert reminder.pk not in claims
    assert one(reminder.visit, D7).pk in claims


def test_a_sent_reminder_cannot_be_cancelled(reminder):
    deliver(reminder, claimed(reminder))

    with pytest.raises(ValidationError) as error:
        reminder_cancel(reminder=reminder)

    assert error.value.message_dict == {"status": ["A sent reminder cannot be cancelled."]}
    assert Reminder.objects.get(pk=reminder.pk).status == SENT


def test_a_double_click_on_resend_sends_once(settings, consenting, reminder):
    mail_server(settings, RejectingMailServer)
    deliver(reminder, claimed(reminder))
    assert reminder.status == FAILED
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

    first = reminder_resend(reminder=reminder)
    reminder.refresh_from_db()
    after_first = Reminder.objects.filter(pk=reminder.pk).values().get()
    second = reminder_resend(reminder=reminder)

    assert (first.status, second.status) == (PENDING, PENDING)
    assert Reminder.objects.filter(pk=reminder.pk).values().get() == after_first
    assert (reminder.attempts, reminder.status_reason) == (0, "Resent by staff.")
    # A change of the patient's visits meanwhile does not undo the resend.
    book(consenting, ahead(30))

    claims = reminders_claim_due()
    assert [pk for pk, _ in claims] == [reminder.pk]
    assert deliver(reminder, claims[0][1]) == "sent"
    assert len(mail.outbox) == 1
    with pytest.raises(ValidationError):
        reminder_resend(reminder=reminder)
    assert reminders_claim_due() == []


def test_a_patient_who_moves_to_another_time_zone_is_not_invited_again_for_the_same_window(consenting):
    visit = plan(consenting, 3, 30)
    invitation = one(visit, INVITATION)
    assert deliver(invitation, claimed(invitation)) == "sent"

    record.patient_update(patient=consenting, timezone=NEW_YORK)

    assert Reminder.objects.filter(visit=visit, kind=INVITATION).count() == 1
    assert one(visit, INVITATION).status == SENT
    assert not pending_of(consenting).filter(kind=INVITATION).exists()
