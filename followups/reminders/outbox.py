"""The outbox's claims and leases (ARCHITECTURE.md, "Reminders are rows").

The sweeper claims a batch of due rows with a conditional update (``SKIP LOCKED`` on
PostgreSQL) and a lease; a send task takes the rows whose claim still holds under a token of
its own, and only the holder of a row's token marks it. A row whose lease lapsed is claimable
again, so a lost message or a killed worker only delays a reminder; a duplicated task message
finds nothing to take.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from followups.codes import ReminderStatus
from followups.models import Reminder

logger = logging.getLogger(__name__)


def _lock_due(queryset, batch: int) -> list[int]:
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True)
    # SQLite has no row locks: its IMMEDIATE transactions let one writer claim at a time.
    return list(queryset.values_list("pk", flat=True)[:batch])


def reminders_claim_due(
    *, batch: int | None = None, now: datetime | None = None, queue: Callable | None = None
) -> list[tuple[int, uuid.UUID]]:
    """Claim a batch of due reminders; once the claim is committed, ``queue(ids, claim_id)``
    hands them to the send tasks (the sweeper task passes its own; callers that deliver
    themselves pass none)."""
    batch = batch or settings.REMINDER_BATCH_SIZE
    now = now or timezone.now()
    claim_id = uuid.uuid4()
    with transaction.atomic():
        due = _lock_due(
            Reminder.objects.filter(status=ReminderStatus.PENDING, next_attempt_at__lte=now).order_by(
                "next_attempt_at"
            ),
            batch,
        )
        lapsed = _lock_due(
            Reminder.objects.filter(status=ReminderStatus.SENDING, lease_expires_at__lt=now).order_by(
                "lease_expires_at"
            ),
            batch - len(due),
        )
        for reminder_id in Reminder.objects.filter(pk__in=lapsed, send_started_at__isnull=False).values_list(
            "pk", flat=True
        ):
            # A send task took it (alone or in its batch) and stopped before marking it: if this
            # was the reminder it was sending, the mail server may have accepted it already.
            logger.warning(
                "reminder %s: lease lapsed after a send task took it; if it was being sent when "
                "the task stopped, the patient may receive it twice",
                reminder_id,
            )
        ids = due + lapsed
        if ids:
            Reminder.objects.filter(pk__in=ids).update(
                status=ReminderStatus.SENDING,
                claim_id=claim_id,
                lease_expires_at=now + timedelta(seconds=settings.REMINDER_LEASE_SECONDS),
                send_started_at=None,
                updated_at=now,
            )
            if queue is not None:
                transaction.on_commit(lambda: queue(ids, claim_id))
    return [(reminder_id, claim_id) for reminder_id in ids]


def held(reminder_id: int, token: uuid.UUID):
    return Reminder.objects.filter(pk=reminder_id, status=ReminderStatus.SENDING, claim_id=token)


def take(reminder_ids: list[int], claim_id: uuid.UUID) -> tuple[uuid.UUID, list[Reminder]]:
    """Take the rows whose claim still holds, under a new token; answer it and the rows taken.

    One UPDATE for the whole batch: from here on a duplicated task message finds nothing to take.
    """
    token = uuid.uuid4()
    now = timezone.now()
    Reminder.objects.filter(
        pk__in=reminder_ids, status=ReminderStatus.SENDING, claim_id=claim_id, lease_expires_at__gt=now
    ).update(
        claim_id=token,
        send_started_at=now,
        lease_expires_at=now + timedelta(seconds=settings.REMINDER_LEASE_SECONDS),
        attempts=F("attempts") + 1,
        updated_at=now,
    )
    rows = Reminder.objects.select_related("visit__patient", "visit__rebooked_as").filter(
        pk__in=reminder_ids, claim_id=token
    )
    order = {pk: i for i, pk in enumerate(reminder_ids)}
    return token, sorted(rows, key=lambda row: order[row.pk])


def hand_back(reminder_ids: list[int], token: uuid.UUID) -> int:
    now = timezone.now()
    return Reminder.objects.filter(pk__in=reminder_ids, status=ReminderStatus.SENDING, claim_id=token).update(
        status=ReminderStatus.PENDING,
        next_attempt_at=now,
        claim_id=None,
        lease_expires_at=None,
        send_started_at=None,
        attempts=F("attempts") - 1,
        updated_at=now,
    )
