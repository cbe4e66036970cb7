"""Sending claimed reminders a few at a time over one SMTP connection (``reminders.send_batch``).

A real SMTP server on loopback (aiosmtpd) counts the connections and keeps what it accepts, so
the tests see what a mail server would: how many conversations, which messages, which refusals.
"""

from datetime import timedelta

import pytest
from aiosmtpd.controller import Controller
from django.test import override_settings
from django.utils import timezone

from clinic.celery import app
from followups import services as followups
from followups.codes import ReminderKind, ReminderStatus, VisitStatus
from followups.models import Reminder
from followups.reminders import reminders_claim_due, reminders_deliver_batch
from followups.tasks import queue_sends, reminders_send_batch
from tests.factories import PatientFactory
from tests.reliability.conftest import SmtpSink, free_port


class CountingSink(SmtpSink):
    connections = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.connections += 1
        session.host_name = hostname
        return responses


@pytest.fixture
def sink():
    sink = CountingSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    smtp = override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=controller.port,
        EMAIL_USE_TLS=False,
        EMAIL_HOST_USER="",
        EMAIL_HOST_PASSWORD="",
    )
    smtp.enable()
    yield sink
    smtp.disable()
    controller.stop()


def due_reminders(n: int) -> list[Reminder]:
    """``n`` pending reminders of consenting patients, due now (one patient each)."""
    soon = timezone.now() + timedelta(days=20)
    for i in range(n):
        patient = PatientFactory(email=f"patient{i}@patients.example", email_reminders=True)
        followups.visit_create(
            patient=patient, purpose="Review", scheduled_for=soon, status=VisitStatus.BOOKED
        )
    rows = Reminder.objects.filter(status=ReminderStatus.PENDING, kind=ReminderKind.VISIT_7D)
    rows.update(next_attempt_at=timezone.now())
    return list(rows.order_by("pk"))


def test_a_batch_sends_each_reminder_once_over_one_connection(db, sink):
    rows = due_reminders(5)
    claims = reminders_claim_due()
    ids, claim_id = [pk for pk, _ in claims], claims[0][1]

    outcomes = reminders_deliver_batch(reminder_ids=ids, claim_id=claim_id)

    assert outcomes == {"sent": 5}
    assert sink.connections == 1
    assert sorted(m["To"] for m in sink.messages) == sorted(r.visit.patient.email for r in rows)
    assert set(Reminder.objects.filter(pk__in=ids).values_list("status", flat=True)) == {ReminderStatus.SENT}


def test_a_refusal_fails_only_its_reminder_and_the_batch_goes_on_over_a_new_connection(db, sink):
    rows = due_reminders(4)
    refused = rows[1]
    sink.refuse[refused.visit.patient.email] = "550 5.1.1 no such mailbox"
    claims = reminders_claim_due()

    outcomes = reminders_deliver_batch(reminder_ids=[pk for pk, _ in claims], claim_id=claims[0][1])

    assert outcomes == {"sent": 3, "failed": 1}
    refused.refresh_from_db()
    assert refused.status == ReminderStatus.FAILED and "550" in refused.last_error
    assert len(sink.messages) == 3
    assert sink.connections == 2  # the refused conversation is closed; the rest share a fresh one


def test_a_reminder_whose_claim_moved_on_is_not_sent_by_the_batch(db, sink):
    rows = due_reminders(3)
    claims = reminders_claim_due()
    ids, claim_id = [pk for pk, _ in claims], claims[0][1]
    Reminder.objects.filter(pk=rows[0].pk).update(status=ReminderStatus.CANCELLED)

    outcomes = reminders_deliver_batch(reminder_ids=ids, claim_id=claim_id)

    assert outcomes == {"sent": 2, "not held": 1}
    assert len(sink.messages) == 2


def test_past_its_time_budget_a_batch_hands_the_rest_back_due_at_once(db, sink):
    rows = due_reminders(3)
    claims = reminders_claim_due()
    before = {r.pk: r.attempts for r in rows}

    with override_settings(REMINDER_SEND_TIME_LIMIT=0):
        outcomes = reminders_deliver_batch(reminder_ids=[pk for pk, _ in claims], claim_id=claims[0][1])

    assert outcomes == {"handed back": 3}
    assert sink.messages == []
    for row in rows:
        row.refresh_from_db()
        assert row.status == ReminderStatus.PENDING and row.attempts == before[row.pk]
        assert row.claim_id is None and row.send_started_at is None
    assert sorted(pk for pk, _ in reminders_claim_due()) == sorted(before)


def test_a_refused_connection_is_each_reminders_failed_attempt_retried_later(db):
    rows = due_reminders(2)
    claims = reminders_claim_due()
    closed_port = free_port()  # nothing listens there

    with override_settings(
        EMAIL_BACKEND="django.core.mail.backends.smtp.EmailBackend",
        EMAIL_HOST="127.0.0.1",
        EMAIL_PORT=closed_port,
    ):
        outcomes = reminders_deliver_batch(reminder_ids=[pk for pk, _ in claims], claim_id=claims[0][1])

    assert outcomes == {"retry": 2}
    for row in rows:
        row.refresh_from_db()
        assert row.status == ReminderStatus.PENDING and row.attempts == 1
        assert row.next_attempt_at > timezone.now() and row.last_error


def test_the_sweeper_queues_the_claimed_reminders_in_chunks(db, sink, django_capture_on_commit_callbacks):
    rows = due_reminders(7)
    queued = []
    real_delay = reminders_send_batch.delay

    def spy(ids, claim_id):
        queued.append(list(ids))
        return real_delay(ids, claim_id)

    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    reminders_send_batch.delay = spy
    try:
        with override_settings(REMINDER_SEND_CHUNK=3), django_capture_on_commit_callbacks(execute=True):
            reminders_claim_due(queue=queue_sends)
    finally:
        app.conf.task_always_eager = eager
        del reminders_send_batch.delay

    assert [len(chunk) for chunk in queued] == [3, 3, 1]
    assert sorted(pk for chunk in queued for pk in chunk) == [r.pk for r in rows]
    assert sink.connections == 3
    assert len(sink.messages) == 7
    assert set(Reminder.objects.filter(pk__in=[r.pk for r in rows]).values_list("status", flat=True)) == {
        ReminderStatus.SENT
    }
