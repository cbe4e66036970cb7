"""Taking a chunk of a run and refreshing its patients, each in a transaction of their own.

A worker claims a chunk with a conditional UPDATE (one row, so on PostgreSQL a second claimer
re-reads it and finds it held; SQLite lets one writer in at a time) under a lease and a token
of its own. Each patient's refresh commits together with the chunk's new position and a renewed
lease, so a chunk taken again resumes after the last patient that committed; refreshing a patient
twice changes nothing. A patient whose refresh raised is recorded failed and the chunk goes on.
Nothing here logs patient data: lines carry run, chunk and patient ids and an exception's name.
"""

from __future__ import annotations

import enum
import logging
import time
import traceback
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from followups.models import FollowUpRun, FollowUpRunChunk
from followups.runs.closing import chunk_finish
from followups.runs.codes import RunKind
from followups.services import patient_follow_up_refresh, patient_nightly_refresh
from patients.models import Patient

logger = logging.getLogger(__name__)


class ChunkOutcome(enum.StrEnum):
    FINISHED = "finished"
    # Its time was up: the rest goes back to the queue.
    PAUSED = "paused"
    # Finished already, or another worker holds it (a duplicated message, a lease taken over).
    NOT_HELD = "not held"


def _lease_end(now: datetime) -> datetime:
    return now + timedelta(seconds=settings.FOLLOW_UP_CHUNK_LEASE_SECONDS)


def chunk_claim(*, chunk_id: int, now: datetime | None = None) -> uuid.UUID | None:
    """Take the chunk if it is unfinished and nobody holds it; answer the token that holds it."""
    now = now or timezone.now()
    token = uuid.uuid4()
    claimed = FollowUpRunChunk.objects.filter(
        Q(claimed_until__isnull=True) | Q(claimed_until__lt=now), pk=chunk_id, finished_at__isnull=True
    ).update(claim_id=token, claimed_until=_lease_end(now), attempts=F("attempts") + 1)
    return token if claimed else None


def _held(chunk: FollowUpRunChunk, token: uuid.UUID):
    return FollowUpRunChunk.objects.filter(pk=chunk.pk, claim_id=token, finished_at__isnull=True)


def _move_on(chunk: FollowUpRunChunk, token: uuid.UUID) -> bool:
    """Store how far the chunk got (and renew its lease) if ``token`` still holds it."""
    return bool(
        _held(chunk, token).update(
            position=chunk.position,
            failed_ids=chunk.failed_ids,
            attempts=0,
            claimed_until=_lease_end(timezone.now()),
        )
    )


def _hand_back(chunk: FollowUpRunChunk, token: uuid.UUID, *, moved_on: bool = True) -> None:
    # Pausing after progress is not a failed attempt: the count is for claims that ended without
    # moving on. A claim stopped by its time limit in its very first patient did not move on: its
    # attempt stays counted, so that a patient slower than the limit is passed over in the end
    # instead of stalling the chunk (and the run) for ever.
    attempts = {"attempts": 0} if moved_on else {}
    _held(chunk, token).update(claim_id=None, claimed_until=None, queued_at=timezone.now(), **attempts)


def _refresh(run: FollowUpRun, patient_id: int) -> None:
    patient = Patient.objects.select_for_update().filter(pk=patient_id).first()
    if patient is None:  # removed since the run began: nothing left to refresh
        return
    if run.kind == RunKind.NIGHTLY:
        patient_nightly_refresh(patient=patient, today=run.clinic_day)
    else:
        patient_follow_up_refresh(patient=patient)


def _record_failed(chunk: FollowUpRunChunk, patient_id: int, error: BaseException) -> None:
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    # The exception's message stays out: a database error can quote the row it refused.
    logger.error(
        "follow-up run %s, chunk %s: patient %s not refreshed (%s at %s)",
        chunk.run_id,
        chunk.pk,
        patient_id,
        type(error).__name__,
        f"{frame.filename}:{frame.lineno}" if frame else "?",
    )
    chunk.failed_ids = [*chunk.failed_ids, patient_id]


def _keeps_stopping_its_worker(chunk: FollowUpRunChunk) -> bool:
    return chunk.attempts > settings.FOLLOW_UP_CHUNK_MAX_ATTEMPTS and chunk.position < len(chunk.patient_ids)


def _pass_over_the_patient_in_the_way(chunk: FollowUpRunChunk, token: uuid.UUID) -> bool:
    """Record the patient at the chunk's position failed: every recent claim of the chunk died
    while refreshing them (a crash, the memory limit), so one more would too."""
    patient_id = chunk.patient_ids[chunk.position]
    logger.error(
        "follow-up run %s, chunk %s: patient %s was being refreshed each of the last %d times the "
        "chunk was taken and never finished; recorded failed",
        chunk.run_id,
        chunk.pk,
        patient_id,
        chunk.attempts - 1,
    )
    chunk.failed_ids = [*chunk.failed_ids, patient_id]
    chunk.position += 1
    return _move_on(chunk, token)


def chunk_work(*, chunk_id: int, token: uuid.UUID, deadline: float | None = None) -> ChunkOutcome:
    """Refresh the claimed chunk's patients from where it got to, until done or ``deadline``
    (``time.monotonic()``) passes; a paused chunk is handed back unclaimed for the caller to queue."""
    chunk = FollowUpRunChunk.objects.select_related("run").get(pk=chunk_id)
    if chunk.claim_id != token:
        return ChunkOutcome.NOT_HELD
    if _keeps_stopping_its_worker(chunk) and not _pass_over_the_patient_in_the_way(chunk, token):
        return ChunkOutcome.NOT_HELD
    first = chunk.position
    try:
        while chunk.position < len(chunk.patient_ids):
            # At least one patient a claim, however slow the claim was: a chunk always moves on.
            if deadline is not None and chunk.position > first and time.monotonic() >= deadline:
                _hand_back(chunk, token)
                return ChunkOutcome.PAUSED
            patient_id = chunk.patient_ids[chunk.position]
            chunk.position += 1
            try:
                with transaction.atomic():
                    _refresh(chunk.run, patient_id)
                    held = _move_on(chunk, token)
            except SoftTimeLimitExceeded:
                raise
            except Exception as error:
                _record_failed(chunk, patient_id, error)
                held = _move_on(chunk, token)
            if not held:
                return ChunkOutcome.NOT_HELD
    except SoftTimeLimitExceeded:
        # The patient in hand was rolled back with its transaction; the ones before are stored.
        chunk.refresh_from_db(fields=["position", "failed_ids"])
        _hand_back(chunk, token, moved_on=chunk.position > first)
        return ChunkOutcome.PAUSED
    finished = chunk_finish(chunk=chunk, token=token, now=timezone.now())
    return ChunkOutcome.FINISHED if finished else ChunkOutcome.NOT_HELD


def chunk_take(*, chunk_id: int, seconds: float, queue: Callable[[list[int]], None]) -> ChunkOutcome:
    """What a worker does with a chunk's message: claim it, work for at most ``seconds`` and queue
    the rest again when its time is up."""
    token = chunk_claim(chunk_id=chunk_id)
    if token is None:
        return ChunkOutcome.NOT_HELD
    outcome = chunk_work(chunk_id=chunk_id, token=token, deadline=time.monotonic() + seconds)
    if outcome == ChunkOutcome.PAUSED:
        queue([chunk_id])
    return outcome


def run_work_here(*, run: FollowUpRun, on_chunk: Callable[[FollowUpRun], None] | None = None) -> FollowUpRun:
    """Work through the run's unfinished chunks in this process, one after another (the command,
    and the nightly task when called as a plain function). A chunk a worker holds is left to it."""
    for chunk_id in run.chunks.filter(finished_at__isnull=True).order_by("pk").values_list("pk", flat=True):
        token = chunk_claim(chunk_id=chunk_id)
        if token is not None:
            chunk_work(chunk_id=chunk_id, token=token)
        if on_chunk is not None:
            run.refresh_from_db()
            on_chunk(run)
    run.refresh_from_db()
    return run
