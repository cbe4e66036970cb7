"""The missed-visit e-mail as the clinic's attempt to reach the patient (DOMAIN.md section 9), through
real parts: a Celery worker (and beat), Redis and an SMTP server. Each e-mail sent is recorded once,
in the transaction that marks it sent, even when its send task runs twice; no other e-mail is an
attempt.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from clinic.celery import app
from followups import services as follow_up
from followups.codes import ContactChannel, ContactOutcome, ReminderKind, ReminderStatus, VisitStatus
from followups.models import ContactAttempt, Reminder
from followups.reminders import reminders_claim_due
from followups.visit_moves import visit_move
from tests.reliability.conftest import consenting_patient, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

MISSED, OTHERS = 12, 6


def _patient(n: int, group: str):
    return consenting_patient(f"MVA{group}{n:04d}", n, group, "Missed")


def _due_now(kinds, visits) -> list[Reminder]:
    """The pending reminders of these kinds for these visits, brought due now (as if the calendar
    had moved on)."""
    due = Reminder.objects.filter(visit__in=visits, kind__in=kinds, status=ReminderStatus.PENDING)
    now = timezone.now()
    due.update(due_at=now, next_attempt_at=now)
    return list(due)


def _missed_visits(count: int):
    """``count`` consenting patients, each with an appointment of ten minutes ago marked missed: its
    "please rebook" e-mail is planned for the next morning, and brought due now."""
    visits = []
    for n in range(count):
        visit = follow_up.visit_create(
            patient=_patient(n, "missed"),
            purpose="Review",
            scheduled_for=timezone.now() - timedelta(minutes=10),
        )
        visits.append(visit_move(visit=visit, to=VisitStatus.MISSED))
    reminders = _due_now([ReminderKind.MISSED_VISIT], visits)
    assert len(reminders) == count
    return visits, reminders


def _other_mails(count: int):
    """``count`` patients with an appointment in ten days (its 1-day reminder brought due now) and a
    planned visit whose window opens in three days (its booking invitation is due at once)."""
    visits = []
    today = timezone.localdate()
    for n in range(count):
        patient = _patient(n, "other")
        visits.append(
            follow_up.visit_create(
                patient=patient, purpose="Review", scheduled_for=timezone.now() + timedelta(days=10)
            )
        )
        visits.append(
            follow_up.visit_create(
                patient=patient,
                purpose="Review",
                scheduled_for=timezone.now() + timedelta(days=5),
                window_start=today + timedelta(days=3),
                window_end=today + timedelta(days=20),
                status=VisitStatus.PLANNED,
            )
        )
    reminders = _due_now([ReminderKind.VISIT_1D, ReminderKind.BOOKING_INVITATION], visits)
    assert len(reminders) == 2 * count
    return visits, reminders


def _settled(reminders):
    ids = [r.pk for r in reminders]
    return lambda: (
        Reminder.objects.filter(pk__in=ids, status__in=(ReminderStatus.SENT, ReminderStatus.FAILED)).count()
        == len(ids)
    )


def _attempts():
    return sorted(
        ContactAttempt.objects.values_list("visit_id", "channel", "outcome", "by_id", "at", "patient_id")
    )


def _expected_attempts(missed_reminders):
    sent = Reminder.objects.filter(pk__in=[r.pk for r in missed_reminders]).select_related("visit")
    return sorted(
        (r.visit_id, ContactChannel.EMAIL, ContactOutcome.LEFT_MESSAGE, None, r.sent_at, r.visit.patient_id)
        for r in sent
    )


def test_each_missed_visit_e_mail_sent_is_one_system_attempt_and_no_other_e_mail_is(
    smtp_sink, celery_processes
):
    _, missed = _missed_visits(MISSED)
    _, others = _other_mails(OTHERS)

    celery_processes("worker")
    celery_processes("beat")
    wait_until(_settled(missed + others), timeout=90, what="every e-mail sent")
    time.sleep(2)  # a few more sweeps: nothing else goes out, nothing else is recorded

    everything = missed + others
    assert Reminder.objects.filter(
        pk__in=[r.pk for r in everything], status=ReminderStatus.SENT
    ).count() == len(everything)
    counts = smtp_sink.message_ids()
    assert len(counts) == len(everything) and max(counts.values()) == 1
    assert _attempts() == _expected_attempts(missed)
    print(
        f"\nFIGURES missed-visit attempts: {MISSED} e-mails, {MISSED} attempts; {2 * OTHERS} other e-mails, 0"
    )


def test_a_send_task_run_twice_sends_once_and_records_one_attempt(
    smtp_sink, redis_server, celery_env, celery_processes
):
    _, missed = _missed_visits(MISSED)
    _, others = _other_mails(2)
    # One batch of every e-mail, with time to send them all (no sweeper would take back the rest).
    celery_env["REMINDER_SEND_TIME_LIMIT"] = "60"
    celery_env["REMINDER_LEASE_SECONDS"] = "120"
    worker = celery_processes("worker")  # no beat: this test claims and queues by hand
    wait_until(lambda: " ready." in worker.text(), timeout=60, what="the worker to be ready")
    claims = dict(reminders_claim_due())
    ids = [r.pk for r in missed + others]
    assert set(ids) <= set(claims)
    claim_id = str(claims[ids[0]])
    assert {str(claims[pk]) for pk in ids} == {claim_id}

    # The same task message twice, as a redelivery by the broker would hand it over again.
    with app.connection_for_write(redis_server.url) as connection:
        for _ in range(2):
            app.send_task("reminders.send_batch", args=[ids, claim_id], connection=connection)
    batch = re.escape(",".join(map(str, ids)))
    wait_until(
        lambda: len(re.findall(rf"reminders {batch}: \{{", worker.text())) == 2,
        timeout=60,
        what="both task runs to finish",
    )

    runs = re.findall(rf"reminders {batch}: (\{{.*\}})", worker.text())
    assert sorted(runs) == sorted([f"{{'sent': {len(ids)}}}", f"{{'not held': {len(ids)}}}"])
    assert len(smtp_sink.message_ids()) == len(ids) and max(smtp_sink.message_ids().values()) == 1
    assert _attempts() == _expected_attempts(missed)
    print(f"\nFIGURES send task run twice: {len(ids)} e-mails sent once, {MISSED} attempts recorded once")
