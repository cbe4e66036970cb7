"""How a run moves through its states (``followups.runs.codes.RunState``): the only writer of them.

A chunk's finish and the run's close share one transaction under the run's row lock, so of two
chunks finishing at once exactly one sees that none is left and closes the run.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from django.db import transaction
from django.db.models import Sum

from followups.models import FollowUpRun, FollowUpRunChunk
from followups.runs.codes import RunKind, RunState


@transaction.atomic
def chunk_finish(*, chunk: FollowUpRunChunk, token: uuid.UUID, now: datetime) -> bool:
    """Mark the chunk finished if ``token`` still holds it, count its patients into the run, and
    close the run when it was the last. Answers whether the chunk was still held."""
    # The run's row first: every writer of both takes them in this order.
    run = FollowUpRun.objects.select_for_update().get(pk=chunk.run_id)
    held = FollowUpRunChunk.objects.filter(pk=chunk.pk, claim_id=token, finished_at__isnull=True).update(
        finished_at=now, claimed_until=None
    )
    if not held:
        return False
    failed = len(chunk.failed_ids)
    run.done += len(chunk.patient_ids) - failed
    run.failed += failed
    fields = ["done", "failed"]
    if run.state == RunState.RUNNING and not run.chunks.filter(finished_at__isnull=True).exists():
        run.state, run.finished_at = RunState.FINISHED, now
        fields += ["state", "finished_at"]
    run.save(update_fields=fields)
    return True


def run_close_if_empty(*, run: FollowUpRun, now: datetime) -> None:
    """A run with no patient has no chunk to close it: it is finished as it starts."""
    if run.patients == 0:
        run.state, run.finished_at = RunState.FINISHED, now
        run.save(update_fields=["state", "finished_at"])


@transaction.atomic
def nightly_runs_supersede(*, before: date, now: datetime) -> int:
    """Close the nightly runs of earlier days that are still running: the new day's run refreshes
    their patients as of the new day, and their chunks are not taken again. Their counts say how
    far they got (a worker still in one of their chunks finds it no longer held and stops)."""
    superseded = 0
    for run in FollowUpRun.objects.select_for_update().filter(
        kind=RunKind.NIGHTLY, state=RunState.RUNNING, clinic_day__lt=before
    ):
        chunks = run.chunks.all()
        failed = sum(len(ids) for ids in chunks.values_list("failed_ids", flat=True))
        positions = chunks.aggregate(total=Sum("position"))["total"] or 0
        chunks.filter(finished_at__isnull=True).update(finished_at=now, claimed_until=None)
        run.done, run.failed = positions - failed, failed
        run.state, run.finished_at = RunState.SUPERSEDED, now
        run.save(update_fields=["done", "failed", "state", "finished_at"])
        superseded += 1
    return superseded
