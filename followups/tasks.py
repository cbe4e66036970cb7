"""Thin Celery tasks: each calls a service. They take no patient data, only dates or ids."""

import logging

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from followups import booking, predicates
from followups.reminders import reminder_deliver, reminders_claim_due, reminders_deliver_batch
from followups.services import patient_follow_up_refresh, visits_mark_missed_due
from patients.models import Patient

logger = logging.getLogger(__name__)


@shared_task(name="followups.daily")
def followups_daily():
    """Close the windows that ended, roll open series forward and refresh dated flags.

    Open series (a medication course's reviews, an untreated patient's reviews) are planned a
    couple of intervals ahead, and some flags (overdue, laboratory monitoring, consider MVD)
    turn on by the calendar alone, so every patient in follow-up is refreshed once a day, each in
    a transaction of their own.
    """
    today = timezone.localdate()
    missed = visits_mark_missed_due(today=today)
    in_follow_up = Patient.objects.filter(
        predicates.in_follow_up(prefix=""), diagnoses__isnull=False
    ).values_list("pk", flat=True)
    refreshed = 0
    for patient_id in in_follow_up.distinct().iterator():
        with transaction.atomic():
            patient = Patient.objects.select_for_update().get(pk=patient_id)
            patient_follow_up_refresh(patient=patient, today=today, extend_only=True)
            refreshed += 1
    logger.info("follow-up daily: %d visits marked missed, %d patients refreshed", missed, refreshed)
    return {"missed": missed, "refreshed": refreshed}


@shared_task(name="booking.sessions_generate")
def sessions_generate():
    """Keep the clinic's dated sessions 26 weeks ahead: a week's worth each day, nothing when run again."""
    made = booking.sessions_generate()
    logger.info("sessions: %d generated", made)
    return {"generated": made}


@shared_task(name="reminders.sweep", ignore_result=True)
def reminders_sweep():
    """Claim the due reminders, batch after batch, and queue their sends (after each commit)."""
    claimed = 0
    while True:
        batch = reminders_claim_due(queue=queue_sends)
        claimed += len(batch)
        if len(batch) < settings.REMINDER_BATCH_SIZE or claimed >= settings.REMINDER_SWEEP_MAX:
            break
    if claimed:
        logger.info("reminders: %d claimed", claimed)
    return claimed


def queue_sends(ids: list[int], claim_id) -> None:
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


# A send is acknowledged only once it ran, and requeued if its worker died; its time is bounded
# (the reminder's lease outlasts it, see settings).
SENDING = {
    "ignore_result": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "time_limit": settings.REMINDER_SEND_TIME_LIMIT,
    "soft_time_limit": settings.REMINDER_SEND_TIME_LIMIT * 0.8,
}


@shared_task(name="reminders.send", **SENDING)
def reminder_send(reminder_id, claim_id):
    """Send one reminder. Ids only: the row says everything else.

    The sweeper now queues ``reminders.send_batch``; this stays for messages queued before.
    """
    outcome = reminder_deliver(reminder_id=reminder_id, claim_id=claim_id)
    logger.info("reminder %s: %s", reminder_id, outcome)
    return outcome


@shared_task(name="reminders.send_batch", **SENDING)
def reminders_send_batch(reminder_ids, claim_id):
    """Send a few claimed reminders over one SMTP connection. Ids only."""
    outcomes = reminders_deliver_batch(reminder_ids=reminder_ids, claim_id=claim_id)
    logger.info("reminders %s: %s", ",".join(map(str, reminder_ids)), dict(outcomes))
    return dict(outcomes)
