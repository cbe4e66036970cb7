"""Patient reminders (DOMAIN.md section 6): planning the outbox rows, claiming them, sending one.

The flow (ARCHITECTURE.md, "Reminders are rows"):
1. ``reminders_plan_for`` runs in the transaction of every visit change and keeps the patient's
   rows in step: a reminder 7 days and 1 day before a planned or booked visit, one the day after
   the window of a missed visit closed; stale ones cancelled, late ones skipped.
2. ``reminders_claim_due`` (the sweeper, every minute) takes a batch of due rows with a
   conditional update, ``SKIP LOCKED`` on PostgreSQL, and hands their ids to the send task after
   commit. A row whose lease lapsed is claimable again, so a lost message or a killed worker
   only delays a reminder.
3. ``reminder_deliver`` (the send task) takes the row only if its claim still holds, sends, and
   marks it sent only if it still holds it: a duplicated task message does nothing.
Visits written in bulk (an import, a restore, the demo seed) never pass through step 1:
``reminders_plan_bulk`` inserts the rows they miss afterwards, set-based (``followups.reminders_bulk``).
Nothing here logs or stores patient data: log lines carry reminder ids, errors carry SMTP codes.
"""

from __future__ import annotations

import logging
import smtplib
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from time import monotonic
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import get_connection
from django.db import connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from followups.codes import ReminderKind, ReminderStatus, VisitStatus
from followups.models import Reminder, Visit
from followups.predicates import is_missed_not_rebooked
from patients.models import Patient

logger = logging.getLogger(__name__)

DAYS_BEFORE = {ReminderKind.VISIT_7D: 7, ReminderKind.VISIT_1D: 1}
OPEN = (ReminderStatus.PENDING, ReminderStatus.SKIPPED)
# Why a reminder row was skipped; reminders_bulk writes the same words from SQL.
LATE_REASON = "Its time had passed when it was planned."
ARCHIVED_REASON = "The patient is archived."
NO_CONSENT_REASON = "No consent to e-mail reminders."
_VISIT_CHANGED = "The visit changed (rescheduled, cancelled, completed or rebooked)."


def patient_zone(patient: Patient) -> ZoneInfo:
    return ZoneInfo(patient.timezone or settings.CLINIC_TIME_ZONE)


def _at_send_hour(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(settings.REMINDER_SEND_HOUR), tzinfo=zone)


@dataclass(frozen=True)
class Wanted:
    visit: Visit
    kind: str
    visit_time: datetime
    due_at: datetime

    @property
    def key(self):
        return (self.visit.pk, self.kind, self.visit_time)


def wanted_for(visit: Visit, zone: ZoneInfo) -> list[Wanted]:
    """The reminders a visit asks for in its present state."""
    if visit.status in (VisitStatus.PLANNED, VisitStatus.BOOKED):
        local_day = visit.scheduled_for.astimezone(zone).date()
        return [
            Wanted(visit, kind, visit.scheduled_for, _at_send_hour(local_day - timedelta(days=days), zone))
            for kind, days in DAYS_BEFORE.items()
        ]
    if is_missed_not_rebooked(visit):
        due = _at_send_hour(visit.window_end + timedelta(days=1), zone)
        return [Wanted(visit, ReminderKind.MISSED_VISIT, visit.scheduled_for, due)]
    return []


def asking_for_reminders(recent: datetime) -> Q:
    """Visits whose reminders planning still looks after: ahead, or closed no earlier than ``recent``."""
    return Q(status__in=(VisitStatus.PLANNED, VisitStatus.BOOKED), scheduled_for__gte=recent) | Q(
        status=VisitStatus.MISSED, window_end__gte=recent.date()
    )


def ineligible_reason(patient: Patient) -> str | None:
    if patient.archived:
        return ARCHIVED_REASON
    if not patient.email_reminders or not patient.email:
        return NO_CONSENT_REASON
    return None


def reminders_plan_for(*, patient: Patient, now: datetime | None = None) -> None:
    """Bring the patient's reminder rows in step with their visits; call inside the change's transaction.

    Only rows still open (pending, or skipped while their time is ahead) move, and rows planning
    itself cancelled when their visit time is asked for again: a sent, failed or otherwise
    cancelled reminder is history. A row whose time has passed when planned is skipped, never
    sent late; one already pending keeps its place in the queue.
    """
    now = now or timezone.now()
    zone = patient_zone(patient)
    recent = now - timedelta(days=2)
    visits = (
        patient.visits.filter(
            asking_for_reminders(recent) | Q(reminders__status__in=OPEN, reminders__due_at__gte=recent)
        )
        .select_related("rebooked_as")
        .distinct()
    )
    wanted = {w.key: w for visit in visits for w in wanted_for(visit, zone)}
    rows = {
        (r.visit_id, r.kind, r.visit_time): r
        for r in Reminder.objects.filter(visit__patient=patient, visit__in=[w.visit for w in wanted.values()])
        | Reminder.objects.filter(visit__patient=patient, status__in=OPEN, due_at__gte=recent)
    }
    ineligible = ineligible_reason(patient)
    to_create, to_update = [], []
    for key, want in wanted.items():
        row = rows.pop(key, None)
        if row is None:
            row = Reminder(visit=want.visit, kind=want.kind, visit_time=want.visit_time)
            set_open_state(row, want.due_at, ineligible, now)
            to_create.append(row)
        elif row.status in OPEN or _cancelled_by_planning(row):
            before = _open_state(row)
            set_open_state(row, want.due_at, ineligible, now)
            # Rows that stay as they were are not written: planning twice changes nothing.
            if _open_state(row) != before:
                to_update.append(row)
    for row in rows.values():
        if row.status in OPEN:
            row.status, row.status_reason = ReminderStatus.CANCELLED, _VISIT_CHANGED
            row.next_attempt_at = None
            to_update.append(row)
    # A bulk run (``reminders_plan_bulk``) may be inserting the same row right now, outside the
    # patient's lock: its row is the one this would write, so the conflict is no error.
    Reminder.objects.bulk_create(to_create, ignore_conflicts=True)
    for row in to_update:
        row.updated_at = now
    Reminder.objects.bulk_update(
        to_update, ["status", "status_reason", "due_at", "next_attempt_at", "updated_at"]
    )


def reminders_plan_bulk(*, now: datetime | None = None) -> int:
    """Insert the reminder rows missing for every visit that asks for one; answer how many.

    For visits written in bulk (an import, a restore, the demo seed), which never went through
    ``reminders_plan_for``: each missing row is the one it would create for a visit with no rows
    yet, over the same horizon. It only inserts; a row that exists stays as it is, whatever its
    state, so a second run inserts nothing. Commits as it goes, one range of visits at a time.
    """
    # The bulk paths build on this module's rules, so the module is imported here, not at the top.
    from followups import reminders_bulk

    now = now or timezone.now()
    if connection.vendor == "postgresql":
        return reminders_bulk.reminders_plan_bulk_sql(now=now)
    return reminders_bulk.reminders_plan_bulk_python(now=now)


def _cancelled_by_planning(row: Reminder) -> bool:
    # A visit moved away and back again asks for the same (visit, kind, visit time) once more: the
    # row planning cancelled, never sent, is the one to reopen. Staff's cancellations stand.
    return row.status == ReminderStatus.CANCELLED and row.status_reason == _VISIT_CHANGED


def _open_state(row: Reminder) -> tuple:
    return (row.status, row.status_reason, row.due_at, row.next_attempt_at)


def set_open_state(row: Reminder, due_at: datetime, ineligible: str | None, now: datetime) -> None:
    moved = row.due_at != due_at
    row.due_at = due_at
    if row.pk and row.status == ReminderStatus.SKIPPED and row.status_reason == LATE_REASON:
        return
    if ineligible:
        row.status, row.status_reason, row.next_attempt_at = ReminderStatus.SKIPPED, ineligible, None
    elif row.pk and row.status == ReminderStatus.PENDING and not moved:
        # Already waiting: for its time, for the sweeper once due, for the next attempt after a
        # transient error, or resent by staff. Any other change of the patient's visits (which
        # re-plans them all) must neither skip it as late nor undo its backoff.
        return
    elif due_at <= now:
        row.status, row.status_reason, row.next_attempt_at = ReminderStatus.SKIPPED, LATE_REASON, None
    else:
        row.status, row.status_reason, row.next_attempt_at = ReminderStatus.PENDING, "", due_at


# --- claiming -------------------------------------------------------------------------------


def _lock_due(queryset, batch: int) -> list[int]:
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True)
    # SQLite has no row locks: its IMMEDIATE transactions let one writer claim at a time.
    return list(queryset.values_list("pk", flat=True)[:batch])


def reminders_claim_due(
    *, batch: int | None = None, now: datetime | None = None
) -> list[tuple[int, uuid.UUID]]:
    """Claim a batch of due reminders and queue one send task each, once the claim is committed."""
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
            transaction.on_commit(lambda: _queue_sends(ids, claim_id))
    return [(reminder_id, claim_id) for reminder_id in ids]


def _queue_sends(ids: list[int], claim_id: uuid.UUID) -> None:
    from followups.tasks import reminders_send_batch

    # A few reminders a task: one SMTP connection and one task's overhead serve them all, while a
    # lost or killed task still strands only a handful of rows until their lease lapses.
    chunk = settings.REMINDER_SEND_CHUNK
    for start in range(0, len(ids), chunk):
        try:
            reminders_send_batch.delay(ids[start : start + chunk], str(claim_id))
        except Exception:  # the broker may be down: the lease brings the rows back
            logger.exception(
                "reminders %s...: could not queue their send task; retried when the lease lapses", ids[start]
            )
            return


# --- sending --------------------------------------------------------------------------------


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


def _held(reminder_id: int, token: uuid.UUID):
    return Reminder.objects.filter(pk=reminder_id, status=ReminderStatus.SENDING, claim_id=token)


def _take(reminder_ids: list[int], claim_id: uuid.UUID) -> tuple[uuid.UUID, list[Reminder]]:
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


def _why_not_send(reminder: Reminder) -> str | None:
    visit = reminder.visit
    reason = ineligible_reason(visit.patient)
    if reason:
        return reason
    if visit.scheduled_for != reminder.visit_time:
        return "The visit was rescheduled."
    if reminder.kind == ReminderKind.MISSED_VISIT:
        if not is_missed_not_rebooked(visit):
            return "The missed visit was rebooked or closed."
    elif visit.status not in (VisitStatus.PLANNED, VisitStatus.BOOKED):
        return f"The visit is {visit.status}."
    elif visit.scheduled_for <= timezone.now():
        # Sweepers stopped for days: a reminder of an appointment already over helps nobody.
        return "The appointment time has passed."
    return None


def _backoff(attempts: int) -> timedelta:
    seconds = settings.REMINDER_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.REMINDER_RETRY_MAX_SECONDS))


def reminder_deliver(*, reminder_id: int, claim_id: uuid.UUID | str) -> str:
    """Send one claimed reminder; answer what became of it (for the task's log line)."""
    token, taken = _take([reminder_id], uuid.UUID(str(claim_id)))
    return _send_taken(taken[0], token) if taken else "not held"


def reminders_deliver_batch(*, reminder_ids: list[int], claim_id: uuid.UUID | str) -> Counter:
    """Send a claimed batch over one SMTP connection; answer how many ended which way.

    The rows are taken together, then each is sent and marked sent on its own, so a crash
    mid-batch can duplicate at most the one reminder being sent. Past half the send time limit
    the rows not tried yet are handed back to the sweeper, due at once.
    """
    deadline = monotonic() + settings.REMINDER_SEND_TIME_LIMIT / 2
    token, taken = _take(reminder_ids, uuid.UUID(str(claim_id)))
    outcomes = Counter()
    if missing := len(reminder_ids) - len(taken):
        outcomes["not held"] = missing
    mail = get_connection(fail_silently=False)
    try:
        for done, reminder in enumerate(taken):
            if monotonic() > deadline:
                outcomes["handed back"] += _hand_back([r.pk for r in taken[done:]], token)
                break
            outcome = _send_taken(reminder, token, mail)
            outcomes[outcome] += 1
            if outcome in ("retry", "failed"):
                _close_quietly(mail)  # the next reminder starts a fresh conversation
    finally:
        _close_quietly(mail)
    return outcomes


def _hand_back(reminder_ids: list[int], token: uuid.UUID) -> int:
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


def _send_taken(reminder: Reminder, token: uuid.UUID, mail=None) -> str:
    """Send a taken reminder and mark it sent if still held; failures are classified and kept.

    ``mail``: a batch's shared e-mail backend, opened here on first use so that a refused
    connection counts as this reminder's failed attempt.
    """
    from followups.emails import reminder_message

    reason = _why_not_send(reminder)
    if reason:
        _held(reminder.pk, token).update(
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
    marked = _held(reminder.pk, token).update(
        status=ReminderStatus.SENT,
        sent_at=now,
        message_id=message.extra_headers["Message-ID"],
        last_error="",
        updated_at=now,
    )
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
        _held(reminder.pk, token).update(
            status=ReminderStatus.FAILED, last_error=str(error)[:200], updated_at=now
        )
        logger.warning("reminder %s: failed after %d attempt(s): %s", reminder.pk, attempts, error)
        return "failed"
    _held(reminder.pk, token).update(
        status=ReminderStatus.PENDING,
        next_attempt_at=now + _backoff(attempts),
        claim_id=None,
        lease_expires_at=None,
        last_error=str(error)[:200],
        updated_at=now,
    )
    logger.info("reminder %s: attempt %d failed (%s); retrying later", reminder.pk, attempts, error)
    return "retry"


# --- staff actions --------------------------------------------------------------------------


@transaction.atomic
def reminder_cancel(*, reminder: Reminder, reason: str = "Cancelled by staff.") -> Reminder:
    """Cancel a reminder not sent yet; a second click (or a retried request) changes nothing."""
    reminder = Reminder.objects.select_for_update().get(pk=reminder.pk)
    if reminder.status == ReminderStatus.CANCELLED:
        return reminder
    if reminder.status not in (ReminderStatus.PENDING, ReminderStatus.SKIPPED, ReminderStatus.FAILED):
        raise ValidationError(
            {"status": [f"A {reminder.get_status_display().lower()} reminder cannot be cancelled."]}
        )
    reminder.status, reminder.status_reason = ReminderStatus.CANCELLED, reason
    reminder.next_attempt_at = None
    reminder.save(update_fields=["status", "status_reason", "next_attempt_at", "updated_at"])
    return reminder


@transaction.atomic
def reminder_resend(*, reminder: Reminder) -> Reminder:
    """Queue a failed (or cancelled) reminder again; a second click while it waits changes nothing."""
    reminder = Reminder.objects.select_for_update().get(pk=reminder.pk)
    if reminder.status == ReminderStatus.PENDING:
        return reminder
    if reminder.status not in (ReminderStatus.FAILED, ReminderStatus.CANCELLED, ReminderStatus.SKIPPED):
        raise ValidationError(
            {"status": [f"A {reminder.get_status_display().lower()} reminder is not sent again."]}
        )
    reminder.status, reminder.status_reason = ReminderStatus.PENDING, "Resent by staff."
    reminder.next_attempt_at = timezone.now()
    reminder.attempts = 0
    reminder.save(update_fields=["status", "status_reason", "next_attempt_at", "attempts", "updated_at"])
    return reminder
