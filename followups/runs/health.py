"""Did last night's run finish? One answer for the health check command and for the dashboard.

The run expected is today's once the clinic's day has passed ``FOLLOW_UP_NIGHTLY_DUE_HOUR``,
yesterday's before then (beat starts it in the small hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from followups.models import FollowUpRun
from followups.runs.codes import RunKind, RunState


@dataclass(frozen=True)
class RunHealth:
    ok: bool
    reason: str
    run: FollowUpRun | None


def nightly_run_health(*, now: datetime | None = None) -> RunHealth:
    now = now or timezone.now()
    local = timezone.localtime(now)
    due_hour = settings.FOLLOW_UP_NIGHTLY_DUE_HOUR
    expected = local.date() - timedelta(days=0 if local.hour >= due_hour else 1)
    run = (
        FollowUpRun.objects.filter(kind=RunKind.NIGHTLY, clinic_day__lte=local.date())
        .order_by("-clinic_day")
        .first()
    )
    if run is None or run.clinic_day < expected:
        return RunHealth(False, f"no nightly run was started for {expected} (due by {due_hour:02d}:00)", run)
    day = run.clinic_day
    if run.state == RunState.RUNNING:
        minutes = (now - run.started_at).total_seconds() / 60
        # A night that did not finish is caught up by the next one only once that one finishes:
        # until then it is the news, not the run under way.
        earlier = FollowUpRun.objects.filter(kind=RunKind.NIGHTLY, clinic_day__lt=day)
        previous = earlier.order_by("-clinic_day").first()
        if previous is not None and previous.state == RunState.SUPERSEDED:
            return RunHealth(
                False,
                f"the nightly run for {previous.clinic_day} did not finish (superseded); "
                f"the run for {day} is catching up ({_progress(run)})",
                run,
            )
        if minutes <= settings.FOLLOW_UP_RUN_MAX_MINUTES:
            return RunHealth(True, f"the nightly run for {day} is running ({_progress(run)})", run)
        return RunHealth(
            False,
            f"the nightly run for {day} is still running after {minutes:.0f} min ({_progress(run)})",
            run,
        )
    if run.state != RunState.FINISHED:
        return RunHealth(False, f"the nightly run for {day} did not finish ({run.get_state_display()})", run)
    if run.failed:
        return RunHealth(
            False,
            f"the nightly run for {day} finished with {run.failed} of {run.patients} patients failed",
            run,
        )
    finished = timezone.localtime(run.finished_at).strftime("%H:%M")
    return RunHealth(True, f"the nightly run for {day} finished at {finished}: {run.patients} patients", run)


def _progress(run: FollowUpRun) -> str:
    reached = run.chunks.aggregate(total=Sum("position"))["total"] or 0
    return f"{reached} of {run.patients} patients"
