"""Rendering and sending the claimed reminders, one SMTP connection per batch.

A failure is classified by its SMTP code alone (replies can echo the patient's address) and kept
on the row: a transient one is retried with backoff, a permanent one marks it failed. Before
sending, each row is checked against the visit as it stands now: a reminder the visit no longer
asks for is cancelled, never sent.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from collections import Counter
from datetime import timedelta
from time import monotonic

from django.conf import settings
from django.core.mail import get_connection
from django.db import transaction
from django.utils import timezone

from followups.codes import ReminderKind, ReminderStatus, VisitStatus
from followups.models import Reminder
from followups.predicates import is_missed_not_rebooked
from followups.reminders.messages import reminder_message
from followups.reminders.outbox import hand_back, held, take
from followups.reminders.planning import WINDOW_KINDS, ineligible_reason, patient_zone, window_key_time
from followups.reminders.signals import reminder_sent

logger = logging.getLogger(__name__)


class TransientSendError(Exception):
    pass


class PermanentSendError(Exception):
    pass


def classify_smtp_error(error: Exception) -> Exception:
    """Name a send failure by its SMTP code only (replies can echo the patient's address)."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in error.recipients.values()]
        summary = f"recipient refused ({', '.join(map(str, codes))})"
        if codes and all(500 <= code < 600 for code in codes):
            return PermanentSendError(summary)
        return TransientSendError(summary)
    if isinstance(error, smtplib.SMTPResponseException):
        summary = f"{type(error).__name__} {error.smtp_code}"
        return PermanentSendError(summary) if 500 <= error.smtp_code < 600 else TransientSendError(summary)
    return TransientSendError(type(error).__name__)


def _why_not_send(reminder: Reminder) -> str | None:
    """Why the visit, as it stands now, no longer asks for this e-mail; None when it does."""
    visit, kind, now = reminder.visit, reminder.kind, timezone.now()
    reason = ineligible_reason(visit.patient)
    if reason:
        return reason
    if kind in WINDOW_KINDS:
        zone = patient_zone(visit.patient)
        if visit.status != VisitStatus.PLANNED:
            return f"The visit is {visit.status}: there is nothing to invite to."
        if window_key_time(visit.window_start) != reminder.visit_time:
            return "The visit's window moved."
        if now.astimezone(zone).date() > visit.window_end:
            return "The visit's window has closed."
        if kind == ReminderKind.BOOKING_INVITATION and visit.clinic_cancelled_at is not None:
            # Sent back by a cancelled session: the clinic's notice carries the booking link.
            return "The clinic's cancellation notice invites to book again."
        return None
    if kind == ReminderKind.APPOINTMENT_CANCELLED:
        return None if visit.status == VisitStatus.PLANNED else "The visit was booked again or closed."
    if visit.scheduled_for != reminder.visit_time:
        return "The visit was rescheduled."
    if kind == ReminderKind.MISSED_VISIT:
        return None if is_missed_not_rebooked(visit) else "The missed visit was rebooked or closed."
    if visit.status == VisitStatus.PLANNED:
        # Only an appointment is named with a time: a planned visit is invited to be booked.
        return "The visit is planned, not booked: only an appointment is reminded of."
    if visit.status != VisitStatus.BOOKED:
        return f"The visit is {visit.status}."
    if visit.scheduled_for <= now:
        # Sweepers stopped for days: a reminder of an appointment already over helps nobody.
        return "The appointment time has passed."
    return None


def _backoff(attempts: int) -> timedelta:
    seconds = settings.REMINDER_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.REMINDER_RETRY_MAX_SECONDS))


def reminder_deliver(*, reminder_id: int, claim_id: uuid.UUID | str) -> str:
    """Send one claimed reminder; answer what became of it (for the task's log line)."""
    token, taken = take([reminder_id], uuid.UUID(str(claim_id)))
    return _send_taken(taken[0], token) if taken else "not held"


def reminders_deliver_batch(*, reminder_ids: list[int], claim_id: uuid.UUID | str) -> Counter:
    """Send a claimed batch over one SMTP connection; answer how many ended which way.

    The rows are taken together, then each is sent and marked sent on its own, so a crash
    mid-batch can duplicate at most the one reminder being sent. Past half the send time limit
    the rows not tried yet are handed back to the sweeper, due at once.
    """
    deadline = monotonic() + settings.REMINDER_SEND_TIME_LIMIT / 2
    token, taken = take(reminder_ids, uuid.UUID(str(claim_id)))
    outcomes = Counter()
    if missing := len(reminder_ids) - len(taken):
        outcomes["not held"] = missing
    mail = get_connection(fail_silently=False)
    try:
        for done, reminder in enumerate(taken):
            if monotonic() > deadline:
                outcomes["handed back"] += hand_back([r.pk for r in taken[done:]], token)
                break
            outcome = _send_taken(reminder, token, mail)
            outcomes[outcome] += 1
            if outcome in ("retry", "failed"):
                _close_quietly(mail)  # the next reminder starts a fresh conversation
    finally:
        _close_quietly(mail)
    return outcomes


def _send_taken(reminder: Reminder, token: uuid.UUID, mail=None) -> str:
    """Send a taken reminder and mark it sent if still held; failures are classified and kept.

    ``mail``: a batch's shared e-mail backend, opened here on first use so that a refused
    connection counts as this reminder's failed attempt.
    """
    reason = _why_not_send(reminder)
    if reason:
        held(reminder.pk, token).update(
            status=ReminderStatus.CANCELLED, status_reason=reason, updated_at=timezone.now()
        )
        return "cancelled"
    try:
        message = reminder_message(reminder)
        if mail is not None:
            mail.open()  # nothing to do while the batch's connection is open
            message.connection = mail
        message.send()
    except Exception as raw:  # every failure, rendering included, is classified and kept on the row
        error = classify_smtp_error(raw)
        return _after_failure(reminder, token, error)
    now = timezone.now()
    with transaction.atomic():
        marked = held(reminder.pk, token).update(
            status=ReminderStatus.SENT,
            sent_at=now,
            message_id=message.extra_headers["Message-ID"],
            last_error="",
            updated_at=now,
        )
        if marked:
            # In the mark's transaction: what answers it (the call list records a missed-visit
            # e-mail as the clinic's attempt to reach the patient) happens once or not at all.
            reminder_sent.send(sender=Reminder, reminder=reminder, at=now)
    if not marked:
        logger.warning("reminder %s: sent after its lease lapsed; another attempt may follow", reminder.pk)
    return "sent"


def _close_quietly(mail) -> None:
    try:
        mail.close()
    except (smtplib.SMTPException, OSError):
        mail.connection = None


def _after_failure(reminder: Reminder, token: uuid.UUID, error: Exception) -> str:
    now = timezone.now()
    attempts = reminder.attempts
    if isinstance(error, PermanentSendError) or attempts >= settings.REMINDER_MAX_ATTEMPTS:
        held(reminder.pk, token).update(
            status=ReminderStatus.FAILED, last_error=str(error)[:200], updated_at=now
        )
        logger.warning("reminder %s: failed after %d attempt(s): %s", reminder.pk, attempts, error)
        return "failed"
    held(reminder.pk, token).update(
        status=ReminderStatus.PENDING,
        next_attempt_at=now + _backoff(attempts),
        claim_id=None,
        lease_expires_at=None,
        last_error=str(error)[:200],
        updated_at=now,
    )
    logger.info("reminder %s: attempt %d failed (%s); retrying later", reminder.pk, attempts, error)
    return "retry"
