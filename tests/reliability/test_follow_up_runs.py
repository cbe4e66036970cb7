"""The nightly run through real parts (issue 18): ``followups.daily`` sent through Redis to a Celery
worker of two processes on PostgreSQL, with every time limit lowered so far that the old single
task, refreshing every patient itself, would have been stopped long before the end.

Every patient's flags are deleted first: the run has refreshed a patient when their flag is back.
"""

from __future__ import annotations

import re
import time

import pytest

from clinic.celery import app
from followups.codes import FlagCode
from followups.models import FollowUpRun, FollowUpRunChunk, PatientFlag
from followups.runs.codes import RunState
from tests.factories import PatientFactory, diagnosis_for
from tests.reliability.conftest import wait_until

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PATIENTS = 240
# The coordinator (and the old task that did all the work) gets 3 s before its soft limit; the
# refresh costs 25-150 ms a patient, so the old task stopped after a hundred patients or so.
TASK_SOFT_LIMIT = 3
CHUNK = 20


@pytest.fixture
def run_env(celery_env):
    celery_env.update(
        {
            "CELERY_TASK_SOFT_TIME_LIMIT": str(TASK_SOFT_LIMIT),
            "CELERY_TASK_TIME_LIMIT": str(TASK_SOFT_LIMIT + 2),
            "FOLLOW_UP_CHUNK_SIZE": str(CHUNK),
            "FOLLOW_UP_CHUNK_SECONDS": "1",
            "FOLLOW_UP_CHUNK_TIME_LIMIT": "4",
            "FOLLOW_UP_CHUNK_LEASE_SECONDS": "6",
            "FOLLOW_UP_SWEEP_SECONDS": "1",
        }
    )
    return celery_env


@pytest.fixture
def patients_without_flags(db):
    """Patients in follow-up with an untreated diagnosis and no MRI: each is flagged once refreshed."""
    ids = [diagnosis_for(PatientFactory()).patient_id for _ in range(PATIENTS)]
    PatientFlag.objects.all().delete()
    return ids


def flagged(ids) -> set[int]:
    return set(
        PatientFlag.objects.filter(patient_id__in=ids, code=FlagCode.IMAGING_MISSING).values_list(
            "patient_id", flat=True
        )
    )


def send_nightly(redis_server):
    with app.connection_for_write(redis_server.url) as connection:
        app.send_task("followups.daily", connection=connection)


def nightly_finished() -> bool:
    return FollowUpRun.objects.filter(state=RunState.FINISHED).exists()


def assert_complete(ids, seconds_at_least: float):
    run = FollowUpRun.objects.get()
    assert (run.state, run.patients, run.done, run.failed) == (RunState.FINISHED, PATIENTS, PATIENTS, 0)
    assert flagged(ids) == set(ids)
    chunks = list(FollowUpRunChunk.objects.filter(run=run))
    assert len(chunks) == PATIENTS // CHUNK
    assert all(c.finished_at and c.position == len(c.patient_ids) and not c.failed_ids for c in chunks)
    assert sorted(pk for c in chunks for pk in c.patient_ids) == sorted(ids)
    # The work took longer than the single task was allowed: only the chunks made it possible.
    assert (run.finished_at - run.started_at).total_seconds() > seconds_at_least
    return run


def test_the_nightly_run_spread_over_two_worker_processes_refreshes_everyone(
    patients_without_flags, run_env, redis_server, celery_processes
):
    worker = celery_processes("worker")
    started = time.monotonic()
    send_nightly(redis_server)

    wait_until(nightly_finished, timeout=60, interval=0.5, what="the nightly run to finish")

    assert_complete(patients_without_flags, seconds_at_least=TASK_SOFT_LIMIT)
    log = worker.text()
    assert "TimeLimitExceeded" not in log and "Traceback" not in log
    # Both processes took chunks, and no task ran long: the chunks paused themselves instead.
    chunk_lines = [line for line in log.splitlines() if "follow-up run chunk" in line]
    assert {re.search(r"ForkPoolWorker-\d+", line).group() for line in chunk_lines} >= {
        "ForkPoolWorker-1",
        "ForkPoolWorker-2",
    }
    assert time.monotonic() - started < 60


def test_a_worker_killed_mid_run_is_restarted_and_the_run_completes_with_nobody_skipped(
    patients_without_flags, run_env, redis_server, celery_processes
):
    worker = celery_processes("worker", supervised=True)
    celery_processes("beat")
    send_nightly(redis_server)

    def half_way_with_a_chunk_in_hand() -> bool:
        # Killed between two chunks, the worker would hold none half done: wait for a moment when
        # one is (a process claims its next chunk within a few milliseconds of finishing one), and
        # kill at once. The chunks in hand are read in the same check: read again afterwards, they
        # had sometimes finished in between (CI), though the kill still came mid-run.
        chunks = FollowUpRunChunk.objects.all()
        return (
            chunks.filter(finished_at__isnull=False).count() >= 3
            and chunks.filter(finished_at=None).count() >= 6
            and chunks.filter(finished_at=None, position__gt=0).exists()
        )

    wait_until(half_way_with_a_chunk_in_hand, timeout=30, interval=0.05, what="the run to be half-way")
    worker.kill()
    # Everything the dead worker held or had fetched stays unacknowledged in Redis for an hour:
    # only the leases and the sweep (beat, every second here) bring those chunks back.
    assert not nightly_finished()

    wait_until(nightly_finished, timeout=75, interval=0.5, what="the nightly run to finish after the kill")

    assert worker.restarts >= 1
    assert_complete(patients_without_flags, seconds_at_least=TASK_SOFT_LIMIT)
    assert "queued again (lease lapsed or message lost)" in worker.text()
