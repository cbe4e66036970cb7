"""How the call list answers the reminders capability's signals."""

from django.dispatch import receiver

from followups.calls.services import system_attempt_record
from followups.codes import ReminderKind
from followups.reminders.signals import reminder_sent


@receiver(reminder_sent, dispatch_uid="followups.calls.reminder_sent")
def _missed_visit_mailed(sender, reminder, at, **kwargs):
    # DOMAIN.md section 9: the automatic missed-visit e-mail is an attempt, by the system.
    if reminder.kind == ReminderKind.MISSED_VISIT:
        system_attempt_record(visit=reminder.visit, at=at)
