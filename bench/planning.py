"""Item 2: reminders for every upcoming visit planned in one go, then the re-run that inserts nothing.

``followups.reminders.reminders_plan_bulk(*, now=None) -> int`` (set-based SQL) is timed on an empty
outbox: the reminders table of the bench database is truncated first.
"""

from __future__ import annotations

import time

from django.db import connection
from django.db.models import Count
from django.utils import timezone

from bench.common import log


def measure() -> dict:
    from followups import reminders
    from followups.models import Reminder, Visit

    upcoming = Visit.objects.filter(
        status__in=("planned", "booked"), scheduled_for__gt=timezone.now()
    ).count()
    plan_bulk = getattr(reminders, "reminders_plan_bulk", None)
    if plan_bulk is None:
        log("planning: followups.reminders.reminders_plan_bulk does not exist yet: skipped")
        return {"skipped": "reminders_plan_bulk does not exist yet", "upcoming_visits": upcoming}
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {Reminder._meta.db_table}")
    log(f"planning: reminders for {upcoming} upcoming visits")
    started = time.perf_counter()
    inserted = plan_bulk()
    first = time.perf_counter() - started
    started = time.perf_counter()
    again = plan_bulk()
    second = time.perf_counter() - started
    if again != 0:
        raise RuntimeError(f"the re-run of reminders_plan_bulk inserted {again} rows; it must insert none")
    by_status = dict(Reminder.objects.order_by().values_list("status").annotate(n=Count("id")))
    log(f"planning: {inserted} rows in {first:.1f} s; re-run {second:.1f} s (0 rows)")
    return {
        "upcoming_visits": upcoming,
        "inserted": inserted,
        "reminders_by_status": by_status,
        "plan_s": round(first, 2),
        "replan_s": round(second, 2),
    }
