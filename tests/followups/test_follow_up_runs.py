"""Follow-up runs (issue 18): the nightly run, a protocol re-applied and ``follow_up_refresh`` as
chunks of patient ids that workers claim under a lease, resume, and close with their counts.

The workers themselves are in tests/reliability/test_follow_up_runs.py; here each step is taken
by hand, in this process, so a lease can lapse and a worker can die exactly where a test says.
"""

from datetime import datetime, time, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from followups import tasks
from followups.models import FollowUpRun, FollowUpRunChunk, ProtocolStep
from followups.runs import chunks as run_chunks
from followups.runs.chunks import ChunkOutcome, chunk_claim, chunk_take, chunk_work, run_work_here
from followups.runs.codes import RunKind, RunState
from followups.runs.health import nightly_run_health
from followups.runs.starting import (
    nightly_run_start,
    protocol_run_start,
    run_chunks_requeue_lapsed,
)
from patients import services as record
from tests.factories import PatientFactory
from tests.followups.conftest import days, live, record_mvd

LEASE = 120


@pytest.fixture(autouse=True)
def small_chunks(settings):
    settings.FOLLOW_UP_CHUNK_SIZE = 3
    settings.FOLLOW_UP_CHUNK_LEASE_SECONDS = LEASE
    settings.FOLLOW_UP_CHUNK_MAX_ATTEMPTS = 3


@pytest.fixture
def in_follow_up(make_patient):
    """Seven patients in follow-up, in the order of their ids."""
    return [make_patient()[0] for _ in range(7)]


class Refreshes:
    """Stands in for the refreshes in the chunks (the nightly one and the full one): records whom
    it refreshed, refreshes for real, and raises for the patients it is told to (an exception, or a
    worker's death)."""

    def __init__(self):
        self.patient_ids: list[int] = []
        self.raise_for: dict[int, BaseException] = {}

    def wrapping(self, real):
        def refresh(*, patient, **kwargs):
            if patient.pk in self.raise_for:
                raise self.raise_for[patient.pk]
            self.patient_ids.append(patient.pk)
            return real(patient=patient, **kwargs)

        return refresh


@pytest.fixture
def refreshes(monkeypatch):
    recorder = Refreshes()
    for name in ("patient_follow_up_refresh", "patient_nightly_refresh"):
        monkeypatch.setattr(run_chunks, name, recorder.wrapping(getattr(run_chunks, name)))
    return recorder


class WorkerDied(BaseException):
    """What a SIGKILL looks like from inside: nothing after it runs, no ``except Exception`` sees it."""


@pytest.fixture
def queued(monkeypatch):
    """The chunk ids handed to the broker, in order (the broker itself is not called)."""
    sent: list[int] = []
    monkeypatch.setattr(tasks.follow_up_run_chunk, "delay", sent.append)
    return sent


def start_nightly(today, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        return nightly_run_start(today=today, queue=tasks.queue_chunks)


def chunk_rows(run):
    return list(FollowUpRunChunk.objects.filter(run=run).order_by("pk"))


# --- starting the nightly run -----------------------------------------------------------------


def test_the_chunks_cover_every_patient_in_follow_up_exactly_once_and_are_queued_after_commit(
    in_follow_up, today, queued, django_capture_on_commit_callbacks
):
    # Visits arranged by hand, no diagnosis: followed still (flags such as overdue turn by date).
    undiagnosed = PatientFactory()
    in_follow_up.append(undiagnosed)
    archived = in_follow_up.pop(0)
    record.patient_archive(patient=archived)

    with django_capture_on_commit_callbacks() as callbacks:
        run, started = nightly_run_start(today=today, queue=tasks.queue_chunks)
        assert queued == []  # nothing reaches a worker before the rows it names are committed
    for callback in callbacks:
        callback()

    assert started and run.kind == RunKind.NIGHTLY and run.clinic_day == today
    rows = chunk_rows(run)
    assert [len(chunk.patient_ids) for chunk in rows] == [3, 3, 1]
    assert [pk for chunk in rows for pk in chunk.patient_ids] == [p.pk for p in in_follow_up]
    assert run.patients == 7 and run.state == RunState.RUNNING
    assert queued == [chunk.pk for chunk in rows]


def test_a_second_coordinator_call_the_same_day_starts_no_run_and_queues_only_what_nobody_holds(
    in_follow_up, today, queued, refreshes, django_capture_on_commit_callbacks
):
    run, _ = start_nightly(today, django_capture_on_commit_callbacks)
    first, held, untouched = chunk_rows(run)
    chunk_work(chunk_id=first.pk, token=chunk_claim(chunk_id=first.pk))
    chunk_claim(chunk_id=held.pk)
    queued.clear()

    again, started = start_nightly(today, django_capture_on_commit_callbacks)

    assert again == run and not started
    assert FollowUpRun.objects.count() == 1 and FollowUpRunChunk.objects.count() == 3
    assert queued == [untouched.pk]
    # And the worker that takes a duplicated message of the finished chunk does nothing.
    assert chunk_take(chunk_id=first.pk, seconds=30, queue=tasks.queue_chunks) == ChunkOutcome.NOT_HELD
    assert refreshes.patient_ids == first.patient_ids


def test_the_nightly_task_called_twice_refreshes_each_patient_once(in_follow_up, refreshes):
    assert tasks.followups_daily() == {"patients": 7, "refreshed": 7}
    assert tasks.followups_daily() == {"patients": 7, "refreshed": 7}

    assert sorted(refreshes.patient_ids) == [p.pk for p in in_follow_up]
    run = FollowUpRun.objects.get()
    assert (run.state, run.done, run.failed, run.patients) == (RunState.FINISHED, 7, 0, 7)


def test_the_nightly_task_on_a_worker_queues_the_chunks_and_refreshes_nobody_itself(
    in_follow_up, today, queued, refreshes, django_capture_on_commit_callbacks
):
    tasks.followups_daily.push_request(called_directly=False, is_eager=False)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            result = tasks.followups_daily.run()
    finally:
        tasks.followups_daily.pop_request()

    run = FollowUpRun.objects.get()
    assert result == {"run": run.pk, "started": True, "patients": 7}
    assert queued == [chunk.pk for chunk in chunk_rows(run)] and len(queued) == 3
    assert refreshes.patient_ids == []


def test_a_new_day_supersedes_a_nightly_run_still_running(
    in_follow_up, today, queued, refreshes, django_capture_on_commit_callbacks
):
    yesterday, _ = start_nightly(today - days(1), django_capture_on_commit_callbacks)
    first = chunk_rows(yesterday)[0]
    token = chunk_claim(chunk_id=first.pk)
    refreshes.raise_for[first.patient_ids[1]] = WorkerDied()
    with pytest.raises(WorkerDied):
        chunk_work(chunk_id=first.pk, token=token)

    run, started = start_nightly(today, django_capture_on_commit_callbacks)

    assert started
    yesterday.refresh_from_db()
    assert (yesterday.state, yesterday.done, yesterday.failed) == (RunState.SUPERSEDED, 1, 0)
    assert yesterday.finished_at is not None
    # Its chunks are not taken again, by a worker or by the sweep.
    assert chunk_claim(chunk_id=chunk_rows(yesterday)[1].pk) is None
    later = timezone.now() + timedelta(seconds=LEASE + 1)
    assert not set(run_chunks_requeue_lapsed(queue=lambda ids: None, now=later)) & {
        c.pk for c in chunk_rows(yesterday)
    }


# --- working through a chunk ------------------------------------------------------------------


def test_a_chunk_whose_worker_died_is_taken_again_once_its_lease_lapsed_and_resumes(
    in_follow_up, today, queued, refreshes, django_capture_on_commit_callbacks
):
    run, _ = start_nightly(today, django_capture_on_commit_callbacks)
    chunk = chunk_rows(run)[0]
    a, b, c = chunk.patient_ids
    dead_token = chunk_claim(chunk_id=chunk.pk)
    refreshes.raise_for[c] = WorkerDied()
    with pytest.raises(WorkerDied):
        chunk_work(chunk_id=chunk.pk, token=dead_token)
    assert refreshes.patient_ids == [a, b]
    del refreshes.raise_for[c]

    # Held while the lease runs: a redelivered message finds nothing to take.
    assert chunk_take(chunk_id=chunk.pk, seconds=30, queue=tasks.queue_chunks) == ChunkOutcome.NOT_HELD
    later = timezone.now() + timedelta(seconds=LEASE + 1)
    queued.clear()
    with django_capture_on_commit_callbacks(execute=True):
        requeued = run_chunks_requeue_lapsed(queue=tasks.queue_chunks, now=later)
    # The other two were queued a lease ago and never claimed: their messages count as lost.
    assert requeued == queued == [c.pk for c in chunk_rows(run)]
    token = chunk_claim(chunk_id=chunk.pk, now=later)
    assert token is not None

    assert chunk_work(chunk_id=chunk.pk, token=token) == ChunkOutcome.FINISHED
    assert refreshes.patient_ids == [a, b, c]
    # The dead worker's token moves nothing any more.
    assert not run_chunks._held(chunk, dead_token).exists()
    chunk.refresh_from_db()
    assert (chunk.position, chunk.failed_ids, chunk.claimed_until) == (3, [], None)


def test_chunks_waiting_in_a_long_queue_are_not_sent_again_while_the_workers_get_through_it(
    in_follow_up, today, queued, refreshes, django_capture_on_commit_callbacks
):
    # Review finding: every chunk queued a lease ago counted as lost, so a night's queue longer
    # than a lease was sent again at every sweep.
    run, _ = start_nightly(today, django_capture_on_commit_callbacks)
    first, *waiting = chunk_rows(run)
    later = timezone.now() + timedelta(seconds=LEASE + 1)
    assert chunk_claim(chunk_id=first.pk, now=later) is not None  # a worker busy with the first

    with django_capture_on_commit_callbacks(execute=True):
        assert run_chunks_requeue_lapsed(queue=tasks.queue_chunks, now=later + timedelta(seconds=5)) == []

    # Once nothing of the run has moved for a lease, the waiting ones count as lost after all.
    much_later = later + timedelta(seconds=2 * LEASE + 2)
    with django_capture_on_commit_callbacks(execute=True):
        requeued = run_chunks_requeue_lapsed(queue=tasks.queue_chunks, now=much_later)
    assert requeued == [first.pk, *(c.pk for c in waiting)]


def test_a_failing_patient_is_recorded_by_id_only_and_the_rest_are_refreshed(
    in_follow_up, today, queued, refreshes, caplog, django_capture_on_commit_callbacks
):
    run, _ = start_nightly(today, django_capture_on_commit_callbacks)
    failing = in_follow_up[4]
    refreshes.raise_for[failing.pk] = ValueError(f"{failing.family_name} has a bad record")

    run = run_work_here(run=run)

    assert sorted(refreshes.patient_ids) == sorted(p.pk for p in in_follow_up if p != failing)
    assert [chunk.failed_ids for chunk in chunk_rows(run)] == [[], [failing.pk], []]
    assert (run.state, run.patients, run.done, run.failed) == (RunState.FINISHED, 7, 6, 1)
    logged = [r.getMessage() for r in caplog.records if "not refreshed" in r.getMessage()]
    assert len(logged) == 1 and f"patient {failing.pk} not refreshed (ValueError at " in logged[0]
    assert failing.family_name not in caplog.text


def test_a_patient_who_stops_the_worker_every_time_is_recorded_failed_after_the_last_attempt(
    in_follow_up, today, queued, refreshes, django_capture_on_commit_callbacks
):
    run, _ = start_nightly(today, django_capture_on_commit_callbacks)
    chunk = chunk_rows(run)[0]
    poison = chunk.patient_ids[0]
    refreshes.raise_for[poison] = WorkerDied()
    now = timezone.now()
    for _ in range(3):
        now += timedelta(seconds=LEASE + 1)
        with pytest.raises(WorkerDied):
            chunk_work(chunk_id=chunk.pk, token=chunk_claim(chunk_id=chunk.pk, now=now))

    now += timedelta(seconds=LEASE + 1)
    assert (
        chunk_work(chunk_id=chunk.pk, token=chunk_claim(chunk_id=chunk.pk, now=now)) == ChunkOutcome.FINISHED
    )

    chunk.refresh_from_db()
    assert chunk.failed_ids == [poison] and refreshes.patient_ids == chunk.patient_ids[1:]


class Clock:
    """``time.monotonic`` for the chunks: each refresh takes ten seconds."""

    def __init__(self, refreshes):
        self.now, self.refreshes = 1000.0, refreshes

    def monotonic(self):
        return self.now + 10 * len(self.refreshes.patient_ids)


def test_a_chunk_whose_time_is_up_hands_the_rest_back_to_the_queue(
    in_follow_up, today, queued, refreshes, monkeypatch, settings, django_capture_on_commit_callbacks
):
    settings.FOLLOW_UP_CHUNK_SIZE = 5
    monkeypatch.setattr(run_chunks, "time", Clock(refreshes))
    run, _ = start_nightly(today, django_capture_on_commit_callbacks)
    chunk = chunk_rows(run)[0]
    queued.clear()

    assert chunk_take(chunk_id=chunk.pk, seconds=25, queue=tasks.queue_chunks) == ChunkOutcome.PAUSED

    chunk.refresh_from_db()
    assert (chunk.position, chunk.claim_id, chunk.claimed_until, chunk.attempts) == (3, None, None, 0)
    assert queued == [chunk.pk]
    assert chunk_take(chunk_id=chunk.pk, seconds=25, queue=tasks.queue_chunks) == ChunkOutcome.FINISHED
    assert refreshes.patient_ids == chunk.patient_ids


def test_at_the_soft_time_limit_the_patient_in_hand_is_rolled_back_and_not_counted_failed(
    in_follow_up, today, queued, refreshes, django_capture_on_commit_callbacks
):
    run, _ = start_nightly(today, django_capture_on_commit_callbacks)
    chunk = chunk_rows(run)[0]
    refreshes.raise_for[chunk.patient_ids[2]] = SoftTimeLimitExceeded()
    queued.clear()

    assert chunk_take(chunk_id=chunk.pk, seconds=30, queue=tasks.queue_chunks) == ChunkOutcome.PAUSED

    chunk.refresh_from_db()
    assert (chunk.position, chunk.failed_ids, chunk.claim_id) == (2, [], None)
    assert queued == [chunk.pk]


def test_a_patient_slower_than_the_time_limit_is_passed_over_instead_of_stalling_the_run(
    in_follow_up, today, queued, refreshes, django_capture_on_commit_callbacks
):
    # Review finding: each claim stopped in its first patient used to reset the attempts, so the
    # chunk was handed back and queued for ever and the run never closed.
    run, _ = start_nightly(today, django_capture_on_commit_callbacks)
    chunk = chunk_rows(run)[0]
    slow = chunk.patient_ids[0]
    refreshes.raise_for[slow] = SoftTimeLimitExceeded()

    outcomes = [chunk_take(chunk_id=chunk.pk, seconds=30, queue=tasks.queue_chunks) for _ in range(5)]

    assert outcomes[:3] == [ChunkOutcome.PAUSED] * 3
    assert ChunkOutcome.FINISHED in outcomes[3:]
    chunk.refresh_from_db()
    assert chunk.failed_ids == [slow] and chunk.finished_at is not None
    assert refreshes.patient_ids == chunk.patient_ids[1:]


def test_the_last_chunk_to_finish_closes_the_run_with_its_counts(
    in_follow_up, today, queued, refreshes, django_capture_on_commit_callbacks
):
    run, _ = start_nightly(today, django_capture_on_commit_callbacks)
    first, second, third = chunk_rows(run)
    refreshes.raise_for[second.patient_ids[0]] = RuntimeError("lock timeout")
    for chunk in (third, first):
        chunk_take(chunk_id=chunk.pk, seconds=30, queue=tasks.queue_chunks)
    run.refresh_from_db()
    assert (run.state, run.done, run.failed, run.finished_at) == (RunState.RUNNING, 4, 0, None)

    chunk_take(chunk_id=second.pk, seconds=30, queue=tasks.queue_chunks)

    run.refresh_from_db()
    assert (run.state, run.done, run.failed) == (RunState.FINISHED, 6, 1)
    assert run.finished_at is not None


def test_a_run_of_nobody_is_finished_as_it_starts(db, today, queued, django_capture_on_commit_callbacks):
    run, _ = start_nightly(today, django_capture_on_commit_callbacks)
    assert (run.state, run.patients, queued) == (RunState.FINISHED, 0, [])


# --- the same path for a protocol edit and the command ----------------------------------------


def test_an_edited_protocol_re_applied_re_plans_only_its_patients_under_the_new_steps(
    make_patient, today, refreshes, django_capture_on_commit_callbacks
):
    operated, diagnosis = make_patient()
    surgery = record_mvd(diagnosis, today - days(5))
    untreated, _ = make_patient()
    step = ProtocolStep.objects.get(protocol__code="mvd", code="day-30")
    step.offset_days = 40
    step.save()
    assert [v.protocol_day for v in live(surgery)][:3] == [10, 30, 90]

    run = run_work_here(run=protocol_run_start(protocol=step.protocol))

    assert (run.kind, run.subject, run.patients, run.state) == (RunKind.PROTOCOL, "mvd", 1, RunState.FINISHED)
    assert refreshes.patient_ids == [operated.pk]
    assert [v.protocol_day for v in live(surgery)][:3] == [10, 40, 90]


def test_the_protocol_reapply_task_hands_the_chunks_to_the_workers(
    make_patient, today, queued, django_capture_on_commit_callbacks
):
    for _ in range(4):
        patient, diagnosis = make_patient()
        record_mvd(diagnosis, today - days(5))
    make_patient()
    protocol = ProtocolStep.objects.get(protocol__code="mvd", code="day-30").protocol

    with django_capture_on_commit_callbacks(execute=True):
        run_id = tasks.protocol_reapply(protocol.pk)

    run = FollowUpRun.objects.get(pk=run_id)
    assert (run.kind, run.patients) == (RunKind.PROTOCOL, 4)
    assert queued == [chunk.pk for chunk in chunk_rows(run)] and len(queued) == 2


def test_follow_up_refresh_works_through_a_command_run_with_a_progress_line(in_follow_up, refreshes):
    out, err = StringIO(), StringIO()
    call_command("follow_up_refresh", stdout=out, stderr=err)

    run = FollowUpRun.objects.get()
    assert (run.kind, run.state, run.done, run.patients) == (RunKind.COMMAND, RunState.FINISHED, 7, 7)
    assert sorted(refreshes.patient_ids) == [p.pk for p in in_follow_up]
    assert "Refreshed the follow-up of 7 patients" in out.getvalue()
    assert "3/7 patients, 0 failed" in err.getvalue() and "7/7 patients, 0 failed" in err.getvalue()


def test_follow_up_refresh_queue_hands_the_chunks_to_the_workers(
    in_follow_up, queued, refreshes, django_capture_on_commit_callbacks
):
    out = StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("follow_up_refresh", "--queue", stdout=out)

    run = FollowUpRun.objects.get()
    assert queued == [chunk.pk for chunk in chunk_rows(run)] and len(queued) == 3
    assert refreshes.patient_ids == [] and run.state == RunState.RUNNING
    assert f"as run {run.pk} (3 chunks)" in out.getvalue()


# --- the health check -------------------------------------------------------------------------


def at(day, hour, minute=0):
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(django_settings.CLINIC_TIME_ZONE))


def nightly(day, *, state=RunState.FINISHED, patients=10, failed=0, started=None):
    started = started or at(day, 1, 30)
    return FollowUpRun.objects.create(
        kind=RunKind.NIGHTLY,
        clinic_day=day,
        state=state,
        patients=patients,
        done=patients - failed if state == RunState.FINISHED else 0,
        failed=failed,
        started_at=started,
        finished_at=None if state == RunState.RUNNING else started + timedelta(minutes=4),
    )


@pytest.fixture
def health_limits(settings):
    settings.FOLLOW_UP_NIGHTLY_DUE_HOUR = 3
    settings.FOLLOW_UP_RUN_MAX_MINUTES = 60


def test_the_health_check_answers_for_the_expected_nights_run(db, today, health_limits):
    yesterday = today - days(1)
    answer = nightly_run_health(now=at(today, 12))
    assert (answer.ok, answer.reason) == (False, f"no nightly run was started for {today} (due by 03:00)")

    nightly(yesterday)
    # Before the due hour yesterday's run is the one that counts; after it, today's.
    assert (
        nightly_run_health(now=at(today, 2, 59)).reason
        == f"the nightly run for {yesterday} finished at 01:34: 10 patients"
    )
    assert nightly_run_health(now=at(today, 2, 59)).ok
    assert not nightly_run_health(now=at(today, 3)).ok

    running = nightly(today, state=RunState.RUNNING)
    answer = nightly_run_health(now=at(today, 2, 30))
    assert (answer.ok, answer.reason) == (True, f"the nightly run for {today} is running (0 of 10 patients)")
    answer = nightly_run_health(now=at(today, 2, 31))
    assert (answer.ok, answer.run) == (False, running)
    assert answer.reason == f"the nightly run for {today} is still running after 61 min (0 of 10 patients)"

    FollowUpRun.objects.filter(pk=running.pk).update(
        state=RunState.FINISHED, failed=2, done=8, finished_at=at(today, 1, 50)
    )
    answer = nightly_run_health(now=at(today, 9))
    assert (answer.ok, answer.reason) == (
        False,
        f"the nightly run for {today} finished with 2 of 10 patients failed",
    )

    FollowUpRun.objects.filter(pk=running.pk).update(state=RunState.SUPERSEDED)
    assert nightly_run_health(now=at(today, 9)).reason == (
        f"the nightly run for {today} did not finish (Superseded by the next night's run)"
    )


def test_a_night_that_did_not_finish_stays_the_answer_until_the_next_night_catches_up(
    db, today, health_limits
):
    yesterday = today - days(1)
    nightly(yesterday, state=RunState.SUPERSEDED)
    running = nightly(today, state=RunState.RUNNING)

    # Today's run is well within its time, yet yesterday's patients wait on it: not fine.
    answer = nightly_run_health(now=at(today, 1, 45))
    assert (answer.ok, answer.run) == (False, running)
    assert answer.reason == (
        f"the nightly run for {yesterday} did not finish (superseded); "
        f"the run for {today} is catching up (0 of 10 patients)"
    )

    # Once it finishes, it has covered both nights (it counts from the last finished one).
    FollowUpRun.objects.filter(pk=running.pk).update(
        state=RunState.FINISHED, done=10, finished_at=at(today, 2)
    )
    assert nightly_run_health(now=at(today, 9)).ok


def test_a_command_run_does_not_count_as_the_nightly_one(db, today, health_limits):
    FollowUpRun.objects.create(
        kind=RunKind.COMMAND,
        clinic_day=today,
        state=RunState.FINISHED,
        patients=3,
        finished_at=timezone.now(),
    )
    assert not nightly_run_health(now=at(today, 12)).ok


def test_the_health_check_command_exits_non_zero_with_the_reason(db, today, health_limits, settings):
    settings.FOLLOW_UP_NIGHTLY_DUE_HOUR = 0  # whatever the hour now, today's run is expected
    with pytest.raises(CommandError, match=f"^no nightly run was started for {today} \\(due by 00:00\\)$"):
        call_command("follow_up_run_check", stdout=StringIO())

    nightly(today, started=timezone.now() - timedelta(minutes=5))
    out = StringIO()
    call_command("follow_up_run_check", stdout=out)
    assert out.getvalue().startswith(f"the nightly run for {today} finished at ")
