"""Reminders through real parts: Celery worker and beat processes, Redis, and an SMTP server.

Each test prints its figures (sent, lost, duplicates) for the closing note of the issue.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
import time
from datetime import date, timedelta

import pytest
from django.utils import timezone

from followups import services as follow_up
from followups.codes import ReminderKind, ReminderStatus, VisitSource
from followups.models import Reminder
from patients import services as record
from tests.factories import diagnosis_for, treatment_for
from tests.reliability.conftest import ROOT, duplicate_warnings, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

SENTINELS = ("SENTINEL-DIAGNOSIS-7f3a", "SENTINEL-TREATMENT-91bc", "SENTINEL-NOTES-c44e")
FORBIDDEN_WORDS = ("spasm", "botulinum", "toxin", "carbamazepine", "decompression", "MVD", "hemifacial")


def _due_reminders(count: int, *, before_due=None) -> list[Reminder]:
    """``count`` consenting patients, each with a booked visit whose 1-day reminder is due now.

    ``before_due`` may add to the record first: any later change re-plans the reminders, which
    would put them back at their real time.
    """
    now = timezone.now()
    for n in range(count):
        patient = record.patient_create(
            mrn=f"REL{n:05d}",
            given_name=f"Pat{n}",
            family_name="Reliable",
            date_of_birth=date(1970, 1, 1),
            sex="female",
            email=f"patient{n}@patients.example",
            email_reminders=True,
        )
        follow_up.visit_create(patient=patient, purpose="Review", scheduled_for=now + timedelta(days=10))
        if before_due and n == 0:
            before_due(patient)
    due = Reminder.objects.filter(
        kind=ReminderKind.VISIT_1D, status=ReminderStatus.PENDING, visit__source=VisitSource.MANUAL
    )
    # Bring the 1-day reminders forward to now, as if the calendar had moved on.
    due.update(due_at=now, next_attempt_at=now)
    reminders = list(due)
    assert len(reminders) == count
    return reminders


def _all_settled(reminders):
    ids = [r.pk for r in reminders]
    return lambda: (
        Reminder.objects.filter(pk__in=ids, status__in=(ReminderStatus.SENT, ReminderStatus.FAILED)).count()
        == len(ids)
    )


def _sent(reminders):
    return Reminder.objects.filter(pk__in=[r.pk for r in reminders], status=ReminderStatus.SENT)


def _delivered_ids(reminders) -> set[str]:
    return {Reminder.objects.get(pk=r.pk).message_id for r in reminders}


def test_200_due_reminders_are_each_delivered_exactly_once(smtp_sink, celery_processes):
    def clinical_sentinels(patient):
        diagnosis = diagnosis_for(patient, notes=SENTINELS[0])
        treatment_for(diagnosis, "medication", notes=SENTINELS[1], started_on=date(2024, 1, 1))
        follow_up.assessment_record(patient=patient, assessed_on=date(2024, 2, 1), notes=SENTINELS[2])

    reminders = _due_reminders(200, before_due=clinical_sentinels)

    celery_processes("worker")
    celery_processes("beat")
    started = time.monotonic()
    wait_until(_all_settled(reminders), timeout=90, what="200 reminders sent")
    elapsed = time.monotonic() - started

    counts = smtp_sink.message_ids()
    assert max(counts.values()) == 1
    assert _delivered_ids(reminders) <= set(counts)
    # Besides the 200, only the invitation of the first patient's planned medication review (her
    # record has a drug course) may have gone out: it too is scanned below.
    others = set(counts) - _delivered_ids(reminders)
    assert set(Reminder.objects.filter(message_id__in=others).values_list("kind", flat=True)) <= {
        ReminderKind.BOOKING_INVITATION
    }
    assert len(others) <= 1
    assert _sent(reminders).count() == 200
    for message in smtp_sink.messages:
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "/reminders/opt-out/" in message["List-Unsubscribe"]
        # The signed opt-out token is random base64 and a word could turn up in it by chance: the
        # header and the links that carry it are left out of the scan (they hold nothing else).
        scanned = copy.deepcopy(message)
        del scanned["List-Unsubscribe"]
        raw = re.sub(r"https?://\S+", "", scanned.as_string())
        for word in (*SENTINELS, *FORBIDDEN_WORDS):
            assert word.lower() not in raw.lower(), word
    print(f"\nFIGURES exactly-once: sent 200, lost 0, duplicates 0, {elapsed:.1f}s ({200 / elapsed:.0f}/s)")


def test_a_worker_killed_mid_batch_loses_nothing(smtp_sink, celery_processes):
    reminders = _due_reminders(200)
    worker = celery_processes("worker")
    celery_processes("beat")
    wait_until(lambda: len(smtp_sink.messages) >= 40, timeout=60, what="the first 40 messages")
    worker.kill()
    at_kill = len(smtp_sink.messages)
    replacement = celery_processes("worker")
    wait_until(_all_settled(reminders), timeout=120, what="every reminder sent after the restart")

    counts = smtp_sink.message_ids()
    expected = _delivered_ids(reminders)
    lost = expected - set(counts)
    duplicated = {message_id for message_id, n in counts.items() if n > 1}
    logged = duplicate_warnings(worker.text() + replacement.text())
    logged_ids = {Reminder.objects.get(pk=pk).message_id for pk in logged}
    assert not lost
    assert _sent(reminders).count() == 200
    # A duplicate is possible only where the server accepted a message just before the kill,
    # and the sweeper said so when it took that reminder back.
    assert duplicated <= logged_ids
    print(
        f"\nFIGURES worker SIGKILL after {at_kill} messages: sent 200, lost {len(lost)}, "
        f"duplicates {len(duplicated)}, logged possible duplicates {len(logged)}"
    )


def test_a_redis_restart_mid_run_loses_nothing(smtp_sink, redis_server, celery_processes):
    reminders = _due_reminders(200)
    # Supervised as in the product: kombu can end a worker whose broker vanished mid-ack.
    worker = celery_processes("worker", supervised=True)
    beat = celery_processes("beat", supervised=True)
    wait_until(lambda: len(smtp_sink.messages) >= 40, timeout=60, what="the first 40 messages")
    redis_server.stop()
    at_stop = len(smtp_sink.messages)
    time.sleep(2)
    redis_server.start()
    wait_until(_all_settled(reminders), timeout=150, what="every reminder sent after the Redis restart")

    counts = smtp_sink.message_ids()
    lost = _delivered_ids(reminders) - set(counts)
    duplicated = {message_id for message_id, n in counts.items() if n > 1}
    logged = {
        Reminder.objects.get(pk=pk).message_id for pk in duplicate_warnings(worker.text() + beat.text())
    }
    assert not lost
    assert duplicated <= logged
    print(
        f"\nFIGURES Redis restart after {at_stop} messages: sent 200, lost {len(lost)}, "
        f"duplicates {len(duplicated)}, worker restarts {worker.restarts}, beat restarts {beat.restarts}"
    )


def test_smtp_4xx_is_retried_with_backoff_and_5xx_fails_alone(smtp_sink, celery_processes):
    reminders = _due_reminders(30)
    refused = reminders[0].visit.patient.email
    smtp_sink.reply = "451 4.3.0 Mailbox busy, try later"
    smtp_sink.refuse[refused] = "550 5.1.1 Mailbox unavailable"
    celery_processes("worker")
    celery_processes("beat")
    wait_until(
        lambda: (
            Reminder.objects.filter(
                pk__in=[r.pk for r in reminders], attempts__gte=1, last_error__contains="451"
            ).count()
            >= 29
        ),
        timeout=60,
        what="every reminder to meet the 4xx",
    )
    smtp_sink.reply = None
    wait_until(_all_settled(reminders), timeout=90, what="30 reminders settled")

    failed = Reminder.objects.get(pk=reminders[0].pk)
    assert failed.status == ReminderStatus.FAILED
    assert "550" in failed.last_error and refused not in failed.last_error
    sent = _sent(reminders)
    assert sent.count() == 29
    assert all(r.attempts >= 2 for r in sent)
    assert len(smtp_sink.message_ids()) == 29 and max(smtp_sink.message_ids().values()) == 1
    print("\nFIGURES SMTP 4xx then 250: sent 29 after retries, 1 failed on 5xx, lost 0, duplicates 0")


SWEEPER = """
import json, os, sys, time
import django
django.setup()
from followups.reminders import reminders_claim_due
# Both sweepers start claiming at the same moment, whichever process booted first.
time.sleep(max(0.0, float(os.environ["SWEEP_START_AT"]) - time.time()))
claimed, idle_since = [], time.monotonic()
while time.monotonic() - idle_since < 1.5:
    batch = reminders_claim_due(batch=7)
    if batch:
        idle_since = time.monotonic()
        claimed += [reminder_id for reminder_id, _ in batch]
print(json.dumps(claimed))
"""


def test_two_sweepers_at_once_claim_each_reminder_once(celery_env):
    reminders = _due_reminders(200)
    env = {**celery_env, "DJANGO_SETTINGS_MODULE": "clinic.settings", "SWEEP_START_AT": str(time.time() + 4)}
    sweepers = [
        subprocess.Popen(
            [sys.executable, "-c", SWEEPER], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    claims = [json.loads(sweeper.communicate(timeout=60)[0]) for sweeper in sweepers]

    first, second = set(claims[0]), set(claims[1])
    assert len(claims[0]) == len(first) and len(claims[1]) == len(second)
    assert not first & second
    assert first | second == {r.pk for r in reminders}
    assert first and second, "both sweepers should have taken part"
    print(f"\nFIGURES two sweepers: {len(first)} + {len(second)} claims, 0 claimed twice")
