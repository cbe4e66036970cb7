"""Item 7 (issue 14): the call list and the lost-to-follow-up list on the bench database.

``followups.calls.selectors.call_list`` and ``lost_to_follow_up_list``, a page of ``PAGE`` rows
through ``call_rows`` (what the staff page, the API and the CSV show), in process: the first page,
a page deep in the list (offset ``DEEP``, the last page when the list is shorter) and the count a
paginator asks for, each ``PASSES`` times, median and worst; the queries per page (the same at any
depth) and the plan (EXPLAIN ANALYZE, BUFFERS) of the first page's query.

Before measuring, the list is given a worked look: ``ATTEMPTED_SHARE`` of its patients get three
unanswered calls of the last days (they are then unreachable), another share a call-later of next
week, bulk SQL, recorded by no one and marked with ``BENCH_NOTE``; a re-run first deletes those rows
(bench rows only: the bench database is the benchmark's own).
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.common import log

PAGE = 50
DEEP = 5_000
PASSES = 3
ATTEMPTED_SHARE = 0.1
BENCH_NOTE = "(bench)"


def _worked_look(today) -> dict:
    """Attempts on a share of the listed patients, as a morning of calls would leave them."""
    from followups.calls.selectors import call_list
    from followups.codes import ContactChannel, ContactOutcome
    from followups.models import ContactAttempt

    ContactAttempt.objects.filter(note=BENCH_NOTE).delete()
    listed = list(call_list(today=today).values_list("pk", flat=True))
    step = max(1, int(1 / ATTEMPTED_SHARE))
    unanswered, snoozed = listed[::step], listed[1::step]
    now = timezone.now()
    rows = [
        ContactAttempt(
            patient_id=pk,
            at=now - timedelta(days=day),
            channel=ContactChannel.PHONE,
            outcome=ContactOutcome.NO_ANSWER,
            note=BENCH_NOTE,
        )
        for pk in unanswered
        for day in (1, 2, 3)
    ] + [
        ContactAttempt(
            patient_id=pk,
            at=now - timedelta(hours=1),
            channel=ContactChannel.PHONE,
            outcome=ContactOutcome.CALL_LATER,
            remind_on=today + timedelta(days=7),
            note=BENCH_NOTE,
        )
        for pk in snoozed
    ]
    ContactAttempt.objects.bulk_create(rows, batch_size=5_000)
    return {"listed_before": len(listed), "unreachable_made": len(unanswered), "snoozed_made": len(snoozed)}


def _timed(call) -> tuple[list[float], int]:
    samples, queries = [], 0
    for _ in range(PASSES):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            call()
            samples.append(time.perf_counter() - started)
        queries = len(captured)
    return samples, queries


def _figures(samples: list[float], queries: int) -> dict:
    return {
        "median_ms": round(statistics.median(samples) * 1000, 1),
        "max_ms": round(max(samples) * 1000, 1),
        "queries": queries,
    }


def _plan(queryset) -> str:
    sql, params = queryset.query.sql_with_params()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def _list_measure(name: str, listed, who, today) -> dict:
    """``listed``: the list in order; ``who``: the same patients unordered, what pages count."""
    from followups.calls.selectors import call_rows

    count_samples, _ = _timed(lambda: who.count())
    total = who.count()
    deep = min(DEEP, max(0, total - PAGE))
    first_samples, first_queries = _timed(lambda: call_rows(listed[:PAGE], today=today))
    deep_samples, deep_queries = _timed(lambda: call_rows(listed[deep : deep + PAGE], today=today))
    plan = _plan(listed[:PAGE])
    execution = [line for line in plan.splitlines() if line.startswith("Execution Time:")]
    result = {
        "patients": total,
        "count": _figures(count_samples, 1),
        "first_page": _figures(first_samples, first_queries),
        "deep_page": {"offset": deep, **_figures(deep_samples, deep_queries)},
        "first_page_plan_execution": execution[0] if execution else "",
    }
    log(f"{name}: {result}")
    log(f"{name}: plan of the first page\n{plan}")
    return result


def measure() -> dict:
    from followups.calls.selectors import (
        call_list,
        call_list_patients,
        lost_to_follow_up_list,
        lost_to_follow_up_patients,
    )

    today = timezone.localdate()
    look = _worked_look(today)
    log(f"call list worked look: {look}")
    return {
        "page": PAGE,
        "passes": PASSES,
        **look,
        "call_list": _list_measure(
            "call list", call_list(today=today), call_list_patients(today=today), today
        ),
        "lost_to_follow_up": _list_measure(
            "lost to follow-up",
            lost_to_follow_up_list(today=today),
            lost_to_follow_up_patients(today=today),
            today,
        ),
    }
