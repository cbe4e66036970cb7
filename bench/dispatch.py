"""Item 4: reminders per second end to end, beside the floor of a plain smtplib loop.

The product path: N due reminders of consenting patients; a real Celery worker (prefork, 2
processes, the product's concurrency) on Redis (the bench's own db); one ``reminders.sweep`` task
sent as beat would send it; the sweep claims batch after batch and queues one send task per row;
each send renders the e-mail and hands it to an aiosmtpd sink on loopback. Timed from the moment
the sweep is queued until the database shows every row sent.

The floor: one process, a plain ``smtplib`` loop sending N copies of a real rendered reminder (the
same bytes, the same size) to the same sink, one SMTP connection per message, as Django's
``EmailMessage.send()`` in the product opens one per message (that is the fair comparison; one
connection for all N is reported too, for reference). The loop runs in a child process, so that
it does not share the interpreter lock with the sink, as the worker's processes do not.
"""

from __future__ import annotations

import multiprocessing
import os
import smtplib
import sys
import threading
import time

from aiosmtpd.controller import Controller
from django.db import connection

from bench.common import VAR, BackgroundProcess, bench_environment, free_port, log, redis_url, wait_until

# The product's concurrency (Procfile, docker-compose.yml). BENCH_WORKER_PROCESSES and
# BENCH_WORKER_PGOPTIONS (e.g. "-c synchronous_commit=off") exist for experiments that explain a
# figure; the results say when they were set.
WORKER_PROCESSES = int(os.environ.get("BENCH_WORKER_PROCESSES", 2))
WORKER_PGOPTIONS = os.environ.get("BENCH_WORKER_PGOPTIONS", "")


class CountingSink:
    """Accepts every message and counts it; keeps nothing."""

    def __init__(self):
        self.count = 0
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.count += 1
        return "250 OK"


def _due_reminders(n: int) -> int:
    """Truncate the outbox and add ``n`` reminders due now for upcoming visits of consenting patients."""
    from followups.models import Reminder

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Reminder._meta.db_table}")
        cursor.execute(
            """
            INSERT INTO followups_reminder (uuid, kind, visit_time, due_at, status, attempts,
                next_attempt_at, message_id, last_error, status_reason, created_at, updated_at, visit_id)
            SELECT gen_random_uuid(), 'visit_1d', v.scheduled_for, now() - interval '1 minute', 'pending', 0,
                   now() - interval '1 minute', '', '', '', now(), now(), v.id
            FROM followups_visit v JOIN patients_patient p ON p.id = v.patient_id
            WHERE v.status IN ('planned', 'booked') AND v.scheduled_for > now() + interval '1 day'
              AND p.email_reminders AND NOT p.archived AND p.email <> ''
            ORDER BY v.id
            LIMIT %s
            """,
            [n],
        )
        return cursor.rowcount


def _sent() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM followups_reminder WHERE status = 'sent'")
        return cursor.fetchone()[0]


def _not_sent_summary() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT status, status_reason, count(*) FROM followups_reminder GROUP BY 1, 2")
        return {f"{status} {reason}".strip(): n for status, reason, n in cursor.fetchall()}


class Worker(BackgroundProcess):
    what = "the Celery worker"
    start_timeout = 60.0
    stop_timeout = 30.0

    def __init__(self, env: dict, log_path, processes: int = WORKER_PROCESSES):
        args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "clinic",
            "worker",
            "--pool",
            "prefork",
            "--concurrency",
            str(processes),
            "--loglevel",
            "INFO",
            "--without-mingle",
            "--without-gossip",
        ]
        super().__init__(args, env=env, log_path=log_path, log_mode="wb")

    def ready(self) -> bool:
        return b" ready." in self.log_path.read_bytes()


def _through_the_worker(n: int, timeout: float) -> tuple[int, float]:
    from clinic.celery import app

    queued = _due_reminders(n)
    started = time.perf_counter()
    app.send_task("reminders.sweep")
    wait_until(lambda: _sent() >= queued, timeout=timeout, interval=0.05, what=f"{queued} reminders sent")
    return queued, time.perf_counter() - started


def _floor(port: int, n: int, message: bytes, sender: str, recipient: str, one_connection: bool) -> float:
    started = time.perf_counter()
    if one_connection:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for _ in range(n):
                smtp.sendmail(sender, [recipient], message)
    else:
        for _ in range(n):
            with smtplib.SMTP("127.0.0.1", port) as smtp:
                smtp.sendmail(sender, [recipient], message)
    return time.perf_counter() - started


def measure(*, n: int) -> dict:
    import redis
    from django.conf import settings

    from followups.models import Reminder
    from followups.reminders.messages import reminder_message

    VAR.mkdir(parents=True, exist_ok=True)
    sink = CountingSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    worker = None
    try:
        # The floor first, with a real rendered reminder.
        if not _due_reminders(1):
            raise RuntimeError("no upcoming visit of a consenting patient to remind: run bench.prepare")
        reminder = Reminder.objects.select_related("visit__patient", "visit__rebooked_as").get()
        message = reminder_message(reminder).message().as_bytes(linesep="\r\n")
        sender, recipient = settings.DEFAULT_FROM_EMAIL, reminder.visit.patient.email
        with multiprocessing.get_context("fork").Pool(1) as pool:
            per_message = pool.apply(_floor, (controller.port, n, message, sender, recipient, False))
            one = pool.apply(_floor, (controller.port, n, message, sender, recipient, True))
        log(f"dispatch floor: {n / per_message:.0f}/s (one connection each), {n / one:.0f}/s (one for all)")

        redis.Redis.from_url(redis_url()).flushdb()
        env = {
            **os.environ,
            **bench_environment(),
            "EMAIL_URL": f"smtp://127.0.0.1:{controller.port}",
            "PYTHONUNBUFFERED": "1",
            "LOG_LEVEL": "INFO",
        }
        if WORKER_PGOPTIONS:
            env["PGOPTIONS"] = WORKER_PGOPTIONS
        worker = Worker(env, VAR / "worker.log").start()
        # Warm-up: the pool's processes open their database connections and load the templates.
        _through_the_worker(50, timeout=120)
        received = sink.count
        queued, seconds = _through_the_worker(n, timeout=600)
        delivered = sink.count - received
        outcome = _not_sent_summary()
    finally:
        if worker is not None:
            worker.stop()
        controller.stop()
    per_second = queued / seconds
    floor_per_second = n / per_message
    result = {
        "reminders": queued,
        "worker": f"celery prefork, {WORKER_PROCESSES} processes, broker {redis_url()}"
        + (f", PGOPTIONS {WORKER_PGOPTIONS!r}" if WORKER_PGOPTIONS else ""),
        "batch_size": settings.REMINDER_BATCH_SIZE,
        "seconds": round(seconds, 2),
        "per_s": round(per_second, 1),
        "messages_at_sink": delivered,
        "rows_by_status": outcome,
        "message_bytes": len(message),
        "smtplib_floor_per_s": round(floor_per_second, 1),
        "smtplib_one_connection_per_s": round(n / one, 1),
        "ratio_to_smtplib_floor": round(per_second / floor_per_second, 3),
    }
    log(
        f"dispatch: {queued} reminders in {seconds:.2f} s = {per_second:.0f}/s; "
        f"floor {floor_per_second:.0f}/s; ratio {result['ratio_to_smtplib_floor']}"
    )
    return result
