"""The demo clinic's call list, half worked (``make run``): a morning of the front desk's calls on
the patients the list shows first, recorded through the service, so that the list, its marks and
the patients' contact histories look like a clinic's. For the demo only."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError
from django.utils import timezone

from followups.calls.selectors import call_list, call_rows
from followups.calls.services import contact_attempt_record
from followups.codes import ContactChannel, ContactOutcome
from followups.models import ContactAttempt

Outcome = ContactOutcome
# What the first patients on the list answered, in the list's order; the rest are still to call.
# Three unanswered calls make the second one "unreachable"; the fourth asked to be called next week.
MORNING = (
    (Outcome.NO_ANSWER,),
    (Outcome.NO_ANSWER, Outcome.LEFT_MESSAGE, Outcome.NO_ANSWER),
    (Outcome.LEFT_MESSAGE,),
    (Outcome.CALL_LATER,),
    (Outcome.WRONG_NUMBER,),
)


def demo_calls_record(*, by=None) -> int:
    """Record the demo's calls once (nothing when calls are recorded already); answer how many."""
    if ContactAttempt.objects.filter(channel=ContactChannel.PHONE).exists():
        return 0
    today = timezone.localdate()
    now = timezone.now()
    recorded = 0
    rows = call_rows(call_list(today=today)[: len(MORNING)], today=today)
    for row, answers in zip(rows, MORNING, strict=False):
        for hours_ago, outcome in zip(range(len(answers) * 24, 0, -24), answers, strict=True):
            try:
                contact_attempt_record(
                    patient=row.patient,
                    channel=ContactChannel.PHONE,
                    outcome=outcome,
                    by=by,
                    visit=row.visit,
                    at=now - timedelta(hours=hours_ago),
                    remind_on=today + timedelta(days=7) if outcome == Outcome.CALL_LATER else None,
                )
                recorded += 1
            except ValidationError:  # the demo's data moved under it: leave that patient be
                break
    return recorded
