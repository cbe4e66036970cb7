"""Starting runs and handing their chunks to the workers, and the sweep that hands back what a
lost message or a killed worker left behind.

``queue(chunk_ids)`` is the caller's way to the workers (``followups.tasks.queue_chunks``); it is
called only once the rows it names are committed. Without one, the caller works through the run
itself (``followups.runs.chunks.run_work_here``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from followups.models import FollowUpRun, FollowUpRunChunk, Protocol
from followups.runs.closing import nightly_runs_supersede, run_close_if_empty
from followups.runs.codes import RunKind, RunState
from followups.runs.selection import nightly_patient_ids, protocol_patient_ids

logger = logging.getLogger(__name__)

Queue = Callable[[list[int]], None]

# At most this many chunks are handed back by one sweep; the next sweep takes the rest.
SWEEP_MAX = 1000


def _queue_after_commit(chunks, queue: Queue | None, now: datetime) -> list[int]:
    # A chunk left to the caller's own process counts as queued too: if that process dies, the
    # sweep hands what it did not reach to the workers.
    ids = list(chunks.order_by("pk").values_list("pk", flat=True))
    FollowUpRunChunk.objects.filter(pk__in=ids).update(queued_at=now)
    if ids and queue is not None:
        transaction.on_commit(lambda: queue(ids))
    return ids


@transaction.atomic
def follow_up_run_start(
    *, kind: str, clinic_day: date, patient_ids: list[int], subject: str = "", queue: Queue | None = None
) -> FollowUpRun:
    """Record a run of ``patient_ids`` split into chunks (in their order), and queue the chunks."""
    now = timezone.now()
    run = FollowUpRun.objects.create(
        kind=kind, clinic_day=clinic_day, subject=subject, patients=len(patient_ids), started_at=now
    )
    size = settings.FOLLOW_UP_CHUNK_SIZE
    FollowUpRunChunk.objects.bulk_create(
        FollowUpRunChunk(run=run, patient_ids=patient_ids[start : start + size])
        for start in range(0, len(patient_ids), size)
    )
    run_close_if_empty(run=run, now=now)
    chunks = _queue_after_commit(run.chunks.all(), queue, now)
    logger.info(
        "follow-up run %s (%s, %s): %d patients in %d chunks",
        run.pk,
        kind,
        clinic_day,
        run.patients,
        len(chunks),
    )
    return run


@transaction.atomic
def nightly_run_start(*, today: date, queue: Queue | None = None) -> tuple[FollowUpRun, bool]:
    """The day's nightly run, started once per clinic day; answers it and whether it began now.

    Asked again the same day (beat firing twice, someone running the task by hand), it starts
    nothing and queues again the chunks nobody holds that are unfinished.
    """
    now = timezone.now()
    run = FollowUpRun.objects.filter(kind=RunKind.NIGHTLY, clinic_day=today).first()
    if run is None:
        nightly_runs_supersede(before=today, now=now)
        try:
            with transaction.atomic():
                return (
                    follow_up_run_start(
                        kind=RunKind.NIGHTLY,
                        clinic_day=today,
                        patient_ids=nightly_patient_ids(today=today),
                        queue=queue,
                    ),
                    True,
                )
        except IntegrityError:  # another coordinator started it a moment ago
            run = FollowUpRun.objects.get(kind=RunKind.NIGHTLY, clinic_day=today)
    if run.state == RunState.RUNNING:
        unheld = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        requeued = _queue_after_commit(run.chunks.filter(unheld, finished_at__isnull=True), queue, now)
        logger.info("follow-up run %s: started already; %d chunks queued again", run.pk, len(requeued))
    return run, False


def protocol_run_start(*, protocol: Protocol, queue: Queue | None = None) -> FollowUpRun:
    """Re-apply an edited protocol: re-plan every patient it can concern under its steps as they are."""
    return follow_up_run_start(
        kind=RunKind.PROTOCOL,
        clinic_day=timezone.localdate(),
        subject=protocol.code,
        patient_ids=protocol_patient_ids(protocol=protocol),
        queue=queue,
    )


@transaction.atomic
def run_chunks_requeue_lapsed(*, queue: Queue, now: datetime | None = None) -> list[int]:
    """Queue again the unfinished chunks of running runs that nobody is working on: a lease that
    lapsed (the worker killed, its message redelivered before the lease did) or a message queued
    a lease ago and never claimed (lost by the broker, or left by a command that stopped).

    A chunk still waiting in a long queue is not lost: while any chunk of its run is held or
    finished within a lease, the workers are getting through the queue and the waiting ones stay
    as they are (at 100,000 patients some 500 chunks wait for far longer than a lease, and each
    sweep would send all of them again)."""
    now = now or timezone.now()
    lease_ago = now - timedelta(seconds=settings.FOLLOW_UP_CHUNK_LEASE_SECONDS)
    moving = FollowUpRunChunk.objects.filter(Q(claimed_until__gte=now) | Q(finished_at__gte=lease_ago))
    never_claimed = Q(claimed_until__isnull=True, queued_at__lt=lease_ago) & ~Q(run__in=moving.values("run"))
    lapsed = FollowUpRunChunk.objects.filter(
        Q(claimed_until__lt=now) | never_claimed,
        finished_at__isnull=True,
        run__state=RunState.RUNNING,
    )
    ids = list(lapsed.order_by("pk").values_list("pk", flat=True)[:SWEEP_MAX])
    _queue_after_commit(FollowUpRunChunk.objects.filter(pk__in=ids), queue, now)
    if ids:
        logger.warning("follow-up runs: %d chunks queued again (lease lapsed or message lost)", len(ids))
    return ids
