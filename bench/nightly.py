"""Issue 18: the nightly run at the bench's size, spread over Celery workers, and the refresh of
every patient through the same chunks.

- ``nightly_100k_s``: the night after the last one (the bench database's last nightly run, or the
  day its patients were last refreshed whole), through a real worker of 2 processes and Redis:
  ``followups.daily``'s coordinator in process (its own time is reported apart: it chooses the
  patients and writes the chunks), then until the run's record says finished. Then the next night
  with a worker of 1 process: ``nightly_worker_ratio`` is the 2-process rate over the 1-process
  rate, in patients a second (two nights choose different patients, so totals would not compare).
- ``longest_chunk_s``: the longest a chunk task held its chunk in either night (its claims are
  stamped in the worker's log); no task may run beyond 60 s.
- ``follow_up_refresh_100k``: the last whole refresh of the bench database through the chunked path
  (``follow_up_refresh --queue``, which ``bench.prepare`` runs once, 2 worker processes), read from
  its run record: patients, seconds, and the cost of a patient in one process.

Every night moves the bench database a day on: a re-run measures the night after.
"""

from __future__ import annotations

import os
import re
import time
from datetime import timedelta

from bench.common import VAR, bench_environment, log, wait_until
from bench.dispatch import Worker

CHUNK_LINE = re.compile(r"Task followups\.run_chunk\[[^\]]+\] succeeded in ([0-9.]+)s")


def _last_night():
    """The clinic day of the bench database's last finished night. Before its first, the whole
    refresh of ``bench.prepare`` stands for that day's night (it derived everything as of that
    day): a record of it is written as the nightly run of its day, which the next night's choice
    counts from."""
    from followups.models import FollowUpRun
    from followups.runs.codes import RunKind, RunState

    nights = FollowUpRun.objects.filter(kind=RunKind.NIGHTLY, state=RunState.FINISHED)
    last = nights.order_by("-clinic_day").first()
    if last is not None:
        return last.clinic_day
    whole = _whole_refresh_run()
    if whole is None:
        raise SystemExit("the bench database was never refreshed whole: run bench.prepare")
    FollowUpRun.objects.create(
        kind=RunKind.NIGHTLY,
        clinic_day=whole.clinic_day,
        state=RunState.FINISHED,
        patients=whole.patients,
        done=whole.done,
        failed=whole.failed,
        started_at=whole.started_at,
        finished_at=whole.finished_at,
    )
    return whole.clinic_day


def _night(day, processes: int) -> dict:
    """One night through a worker of ``processes`` processes; answers its figures."""
    from followups.models import FollowUpRun
    from followups.runs.codes import RunKind, RunState
    from followups.runs.starting import nightly_run_start
    from followups.tasks import queue_chunks

    if FollowUpRun.objects.filter(kind=RunKind.NIGHTLY, clinic_day=day).exists():
        raise SystemExit(f"a nightly run for {day} exists already")
    log_path = VAR / f"nightly-worker-{processes}.log"
    worker = Worker({**os.environ, **bench_environment(), "LOG_LEVEL": "INFO"}, log_path, processes).start()
    try:
        started = time.perf_counter()
        run, _ = nightly_run_start(today=day, queue=queue_chunks)
        coordinator_s = time.perf_counter() - started
        log(f"night of {day}: {run.patients} patients chosen in {coordinator_s:.1f} s, {processes} processes")

        def finished() -> bool:
            run.refresh_from_db()
            return run.state != RunState.RUNNING

        wait_until(finished, timeout=3600, interval=1.0, what=f"the night of {day} to finish")
        elapsed = time.perf_counter() - started
    finally:
        worker.stop()
    chunks = [float(s) for s in CHUNK_LINE.findall(log_path.read_text(errors="replace"))]
    return {
        "day": day.isoformat(),
        "processes": processes,
        "patients": run.patients,
        "done": run.done,
        "failed": run.failed,
        "state": run.state,
        "coordinator_s": round(coordinator_s, 2),
        "seconds": round(elapsed, 1),
        "patients_per_s": round(run.patients / elapsed, 1) if elapsed else None,
        "chunk_tasks": len(chunks),
        "longest_chunk_s": round(max(chunks, default=0.0), 1),
    }


def _whole_refresh_run():
    from followups.models import FollowUpRun
    from followups.runs.codes import RunKind, RunState

    runs = FollowUpRun.objects.filter(kind=RunKind.COMMAND, state=RunState.FINISHED)
    return runs.order_by("-patients", "-started_at").first()


def _whole_refresh() -> dict | None:
    run = _whole_refresh_run()
    if run is None:
        return None
    seconds = (run.finished_at - run.started_at).total_seconds()
    return {
        "run": run.pk,
        "patients": run.patients,
        "failed": run.failed,
        "seconds": round(seconds, 1),
        # Two worker processes took the chunks (bench.prepare): a patient's cost in one of them.
        "per_patient_ms_one_process": round(2 * 1000 * seconds / max(run.done, 1), 1),
    }


def measure() -> dict:
    last = _last_night()
    two = _night(last + timedelta(days=1), 2)
    one = _night(last + timedelta(days=2), 1)
    ratio = two["patients_per_s"] / one["patients_per_s"] if one["patients_per_s"] else None
    result = {
        "nightly_100k_s": two["seconds"],
        "nightly_worker_ratio": round(ratio, 2) if ratio else None,
        "longest_chunk_s": max(two["longest_chunk_s"], one["longest_chunk_s"]),
        "nights": [two, one],
        "follow_up_refresh_100k": _whole_refresh(),
    }
    log(f"nightly: {result}")
    return result
