"""Booking invitations through real parts: a Celery worker and beat, Redis and an SMTP server
(DOMAIN.md section 6 v2). A planned visit is invited once; a visit booked before its invitation
goes out is not invited; a planned visit is never sent a time or a calendar event.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from followups import services as follow_up
from followups.codes import ReminderKind, ReminderStatus, VisitStatus
from followups.models import Reminder
from followups.visit_moves import visit_move
from tests.reliability.conftest import consenting_patient, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

INVITED, BOOKED_FIRST, OLD_STYLE = 30, 10, 10


def _planned_visit(n: int, group: str):
    """A consenting patient's planned visit whose window opens in 3 days: its invitation is due now."""
    patient = consenting_patient(f"INV{group}{n:04d}", n, group, "Invited")
    today = timezone.localdate()
    return follow_up.visit_create(
        patient=patient,
        purpose="Review",
        scheduled_for=timezone.now() + timedelta(days=5),
        window_start=today + timedelta(days=3),
        window_end=today + timedelta(days=20),
        status=VisitStatus.PLANNED,
    )


def test_each_planned_visit_is_invited_once_and_never_with_a_time(smtp_sink, celery_processes):
    invited = [_planned_visit(n, "invited") for n in range(INVITED)]
    booked_first = [_planned_visit(n, "booked") for n in range(BOOKED_FIRST)]
    for visit in booked_first:
        visit_move(visit=visit, to=VisitStatus.BOOKED, scheduled_for=visit.scheduled_for)
    # Rows of rule version 1, which reminded planned visits as appointments "at 09:00": due now.
    old_style = [_planned_visit(n, "old") for n in range(OLD_STYLE)]
    now = timezone.now()
    legacy = [
        Reminder.objects.create(
            visit=visit,
            kind=ReminderKind.VISIT_7D,
            visit_time=visit.scheduled_for,
            due_at=now,
            next_attempt_at=now,
        )
        for visit in old_style
    ]
    invitations = Reminder.objects.filter(visit__in=invited, kind=ReminderKind.BOOKING_INVITATION)
    assert invitations.filter(status=ReminderStatus.PENDING).count() == INVITED

    celery_processes("worker")
    celery_processes("beat")
    started = time.monotonic()
    ids = [r.pk for r in legacy]
    wait_until(
        lambda: (
            invitations.filter(status=ReminderStatus.SENT).count() == INVITED
            and not Reminder.objects.filter(
                pk__in=ids, status__in=(ReminderStatus.PENDING, ReminderStatus.SENDING)
            ).exists()
        ),
        timeout=90,
        what="invitations sent and old-style reminders settled",
    )
    elapsed = time.monotonic() - started
    time.sleep(2)  # a few more sweeps: nothing else may go out

    by_address = {}
    for message in smtp_sink.messages:
        by_address.setdefault(message["To"], []).append(message)
    # The old-style rows' patients are invited too (their visits are planned): one e-mail each.
    expected = {f"invited{n}@patients.example" for n in range(INVITED)} | {
        f"old{n}@patients.example" for n in range(OLD_STYLE)
    }
    assert set(by_address) == expected
    assert all(len(messages) == 1 for messages in by_address.values())
    for message in smtp_sink.messages:
        assert message["Subject"].startswith("Please book your follow-up visit")
        types = {part.get_content_type() for part in message.walk()}
        assert "text/calendar" not in types
        text = message.get_body(preferencelist=("plain",)).get_content()
        assert "/p/visit/" in text
        assert " a.m." not in text and " p.m." not in text
    assert set(Reminder.objects.filter(pk__in=ids).values_list("status", flat=True)) == {
        ReminderStatus.CANCELLED
    }
    assert not Reminder.objects.filter(
        visit__in=booked_first, kind=ReminderKind.BOOKING_INVITATION, status=ReminderStatus.SENT
    ).exists()
    print(
        f"\nFIGURES invitations: {INVITED + OLD_STYLE} sent once each, 0 to the {BOOKED_FIRST} booked first, "
        f"{OLD_STYLE} old appointment reminders of planned visits cancelled, {elapsed:.1f}s"
    )
