"""Item 3: the sweeper's claim (``reminders_claim_due``) at 100,000 and at 10,000,000 reminder rows.

The outbox is filled with INSERT ... SELECT generate_series over the existing visits, shaped like a
clinic's years of history: most rows sent, some cancelled or skipped, about one in ten pending for
the visits ahead (due later), a few in flight and very few due now. Each claim runs in a
transaction that is rolled back, so the due rows stay due for the next run (and the send tasks it
would queue after commit never are). Timed: the whole call (its SELECT ... FOR UPDATE SKIP LOCKED
of due rows, of lapsed leases when the batch is not full, and the UPDATE of what it took), and its
first SELECT alone; the plans come from EXPLAIN (ANALYZE, BUFFERS) of the SQL it ran, and of its
lapsed-lease SELECT even when a full batch of due rows left the call no reason to run it.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.common import log, median_ms

RUNS = 50

# The shares of rows per status, by thousandths; what is left after these is sent.
FILL = """
WITH visits AS (SELECT array_agg(id) AS ids FROM followups_visit),
rows AS (
    SELECT g, visits.ids[1 + g %% array_length(visits.ids, 1)] AS visit_id,
           (g::bigint * 7919) %% 10000 AS share, now() AS at
    FROM generate_series(%(first)s, %(last)s) AS g, visits
)
INSERT INTO followups_reminder (uuid, kind, visit_time, due_at, status, attempts, next_attempt_at,
    claim_id, lease_expires_at, send_started_at, sent_at, message_id, last_error, status_reason,
    created_at, updated_at, visit_id)
SELECT gen_random_uuid(),
       (ARRAY['visit_7d', 'visit_1d', 'missed_visit'])[1 + g %% 3],
       timestamptz '2015-01-01' + g * interval '1 second',
       at - interval '1 day',
       s.status,
       CASE WHEN s.status IN ('sent', 'sending') THEN 1 ELSE 0 END,
       CASE s.status
           WHEN 'pending' THEN
               CASE WHEN share < %(due)s THEN at - (share + 1) * interval '1 second'
                    ELSE at + (share %% 720 + 1) * interval '1 hour' END
       END,
       CASE WHEN s.status = 'sending' THEN gen_random_uuid() END,
       CASE WHEN s.status = 'sending' THEN
           CASE WHEN g %% 4 = 0 THEN at - interval '1 minute' ELSE at + interval '4 minutes' END
       END,
       NULL,
       CASE WHEN s.status = 'sent' THEN at - g %% 100000 * interval '1 hour' END,
       CASE WHEN s.status = 'sent' THEN 'bench-' || g || '@clinic.invalid' ELSE '' END,
       '', '', at, at, visit_id
FROM rows,
LATERAL (SELECT CASE
    WHEN share < %(due)s THEN 'pending'
    WHEN share < 1000 THEN 'pending'
    WHEN share < 1002 THEN 'sending'
    WHEN share < 1400 THEN 'cancelled'
    WHEN share < 1700 THEN 'skipped'
    WHEN share < 1710 THEN 'failed'
    ELSE 'sent' END AS status) AS s
"""


def _fill(first: int, last: int) -> None:
    # One in 10,000 rows due now (10 at 100,000 rows, 1,000 at 10,000,000): "few due".
    with connection.cursor() as cursor:
        cursor.execute(FILL, {"first": first, "last": last, "due": 1})
        cursor.execute("VACUUM ANALYZE followups_reminder")


def _claim_once(batch: int):
    from followups.reminders import reminders_claim_due

    with transaction.atomic():
        started = time.perf_counter()
        claimed = reminders_claim_due(batch=batch, now=timezone.now())
        elapsed = time.perf_counter() - started
        transaction.set_rollback(True)
    return elapsed, len(claimed)


def _explain(sql: str) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def _lapsed_select_sql(batch: int) -> str:
    from followups.codes import ReminderStatus
    from followups.models import Reminder

    queryset = (
        Reminder.objects.filter(status=ReminderStatus.SENDING, lease_expires_at__lt=timezone.now())
        .order_by("lease_expires_at")
        .select_for_update(skip_locked=True)
        .values_list("pk", flat=True)[:batch]
    )
    with transaction.atomic():  # Django compiles FOR UPDATE only inside one
        sql, params = queryset.query.sql_with_params()
        return connection.ops.compose_sql(sql, params)


def _measure_at(rows: int, batch: int) -> dict:
    from followups.models import Reminder

    counts = dict(Reminder.objects.order_by().values_list("status").annotate(n=Count("id")))
    for _ in range(5):
        _claim_once(batch)
    with CaptureQueriesContext(connection) as captured:
        _claim_once(batch)
    selects = [q["sql"] for q in captured.captured_queries if q["sql"].lstrip().upper().startswith("SELECT")]
    timings, claimed = [], 0
    for _ in range(RUNS):
        elapsed, claimed = _claim_once(batch)
        timings.append(elapsed)
    first_select = []
    for _ in range(RUNS):
        with transaction.atomic(), connection.cursor() as cursor:
            started = time.perf_counter()
            cursor.execute(selects[0])
            cursor.fetchall()
            first_select.append(time.perf_counter() - started)
            transaction.set_rollback(True)
    result = {
        "rows": rows,
        "rows_by_status": counts,
        "batch": batch,
        "claimed_per_call": claimed,
        "claim_call_median_ms": median_ms(timings),
        "claim_call_max_ms": round(max(timings) * 1000, 3),
        "due_select_median_ms": median_ms(first_select),
        "queries": [q["sql"] for q in captured.captured_queries],
        "plans": [_explain(sql) for sql in selects],
        "lapsed_select_plan": _explain(_lapsed_select_sql(batch)),
    }
    log(
        f"claim at {rows} rows: whole claim {result['claim_call_median_ms']} ms (median of {RUNS}), "
        f"due SELECT {result['due_select_median_ms']} ms, {claimed} claimed per call"
    )
    return result


def measure(*, sizes: list[int]) -> dict:
    from followups.models import Reminder

    batch = settings.REMINDER_BATCH_SIZE
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Reminder._meta.db_table}")
    results, filled = {}, 0
    for rows in sorted(sizes):
        started = time.perf_counter()
        log(f"claim: filling the outbox to {rows} rows")
        _fill(filled + 1, rows)
        filled = rows
        log(f"claim: filled in {time.perf_counter() - started:.0f} s")
        results[str(rows)] = _measure_at(rows, batch)
    return {"runs": RUNS, "at": results}
