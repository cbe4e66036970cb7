"""Signals of the reminders capability, sent inside the transaction that marks the change.

Other capabilities answer them without reminders importing them (ARCHITECTURE.md: capabilities
import downwards; the call list uses reminders, never the reverse).
"""

from django.dispatch import Signal

# Sent when a reminder was handed to the mail server and marked sent (once per reminder).
# Arguments: reminder, at (the moment it was marked sent).
reminder_sent = Signal()
