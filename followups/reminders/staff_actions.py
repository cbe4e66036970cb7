"""What staff do to one reminder from the panel or the API: cancel it, or send it again."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from followups.codes import ReminderStatus
from followups.models import Reminder


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
