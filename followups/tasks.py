"""Thin Celery tasks: each calls a service. They take no patient data, only dates or ids."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import timezone

from followups import booking
from followups.models import Protocol
from followups.reminders import reminder_deliver, reminders_claim_due, reminders_deliver_batch
from followups.runs.chunks import chunk_take, run_work_here
from followups.runs.starting import nightly_run_start, protocol_run_start, run_chunks_requeue_lapsed

logger = logging.getLogger(__name__)


@shared_task(name="followups.daily", bind=True)
def followups_daily(self):
    """The nightly run's coordinator: choose the patients and start the day's run.

    Windows close by the calendar (their visits are then missed), open series (a medication
    course's reviews, an untreated patient's reviews) are planned a couple of intervals ahead, and
    some flags (overdue, laboratory monitoring, consider MVD, lost to follow-up) turn on by the
    calendar alone: the patients whose record reaches such a day are chosen with a few set-based
    queries (``followups.runs.selection``) and refreshed in chunks that the workers take in
    parallel (``followups.runs``), each patient in a transaction of their own. Run again the same
    day it starts nothing new and queues again what is left. Called as a plain function (a shell,
    a test) it works through the run in this process.
    """
    today = timezone.localdate()
    if self.request.called_directly or self.request.is_eager:
        run, _ = nightly_run_start(today=today)
        run = run_work_here(run=run)
        logger.info("follow-up daily: %d patients refreshed", run.done)
        return {"patients": run.patients, "refreshed": run.done}
    run, started = nightly_run_start(today=today, queue=queue_chunks)
    logger.info(
        "follow-up daily: run %s %s, %d patients", run.pk, "started" if started else "resumed", run.patients
    )
    return {"run": run.pk, "started": started, "patients": run.patients}


@shared_task(name="followups.protocol_reapply", ignore_result=True)
def protocol_reapply(protocol_id):
    """Re-plan every patient an edited protocol can concern, as a run of chunks. Its id only."""
    run = protocol_run_start(protocol=Protocol.objects.get(pk=protocol_id), queue=queue_chunks)
    return run.pk


# A chunk is acknowledged only once it ran, and requeued if its worker died; it pauses itself
# well before its soft limit (FOLLOW_UP_CHUNK_SECONDS), the limits being the backstop.
CHUNK_WORK = {
    "ignore_result": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "time_limit": settings.FOLLOW_UP_CHUNK_TIME_LIMIT,
    "soft_time_limit": settings.FOLLOW_UP_CHUNK_TIME_LIMIT * 0.8,
}


@shared_task(name="followups.run_chunk", **CHUNK_WORK)
def follow_up_run_chunk(chunk_id):
    """Refresh one chunk of a run's patients from where it got to. Its id only."""
    outcome = chunk_take(chunk_id=chunk_id, seconds=settings.FOLLOW_UP_CHUNK_SECONDS, queue=queue_chunks)
    logger.info("follow-up run chunk %s: %s", chunk_id, outcome)
    return str(outcome)


@shared_task(name="followups.runs_sweep", ignore_result=True)
def follow_up_runs_sweep():
    """Queue again the chunks whose lease lapsed or whose message was lost (beat, every minute)."""
    return len(run_chunks_requeue_lapsed(queue=queue_chunks))


def queue_chunks(chunk_ids: list[int]) -> None:
    for chunk_id in chunk_ids:
        try:
            follow_up_run_chunk.delay(chunk_id)
        except Exception:  # the broker may be down: the sweep queues the chunks again
            logger.exception(
                "follow-up run chunk %s...: could not be queued; the sweep queues it again", chunk_id
            )
            return


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
