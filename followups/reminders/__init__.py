"""Patient reminders (DOMAIN.md section 6): an outbox of rows, planned in the transaction of the
change that calls for them and sent exactly once by the sweeper and the send tasks.

The parts import one way, each from the ones above it:
- ``planning``: which rows should exist for a patient's visits, and the event e-mails queued by
  a service (a booking confirmed, a session cancelled);
- ``planning_bulk``: the same rows for visits written in bulk, set-based;
- ``outbox``: claims and leases;
- ``messages``: the e-mail of one reminder, from an allow-listed context;
- ``delivery``: rendering and sending the claimed rows;
- ``staff_actions``: cancelling or resending one reminder.
Nothing here logs or stores patient data: log lines carry reminder ids, errors carry SMTP codes.
"""

from followups.reminders.delivery import reminder_deliver, reminders_deliver_batch
from followups.reminders.outbox import reminders_claim_due
from followups.reminders.planning import patient_zone, reminder_enqueue, reminders_plan_for
from followups.reminders.planning_bulk import reminders_plan_bulk
from followups.reminders.staff_actions import reminder_cancel, reminder_resend

__all__ = [
    "patient_zone",
    "reminder_cancel",
    "reminder_deliver",
    "reminder_enqueue",
    "reminder_resend",
    "reminders_claim_due",
    "reminders_deliver_batch",
    "reminders_plan_bulk",
    "reminders_plan_for",
]
