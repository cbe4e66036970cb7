"""Planning the reminders of visits written in bulk (an import, a restore, the demo seed).

Two paths that insert the same rows: one INSERT ... SELECT per range of visits on PostgreSQL,
where a million visits take well under a minute, and batches of ``wanted_for`` and
``bulk_create`` elsewhere (SQLite, the embedded path). Both only insert what is missing: the
unique constraint on (visit, kind, visit time) settles any row another transaction planned
meanwhile, and rows that exist are never read back into a new state.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from followups.codes import ReminderKind, ReminderStatus, VisitStatus
from followups.models import Reminder, Visit
from followups.reminders.planning import (
    ARCHIVED_REASON,
    DAYS_BEFORE,
    ENDED_REASON,
    INVITATION_DAYS_BEFORE_WINDOW,
    LAST_CALL_DAYS_BEFORE_CLOSE,
    LATE_REASON,
    NO_CONSENT_REASON,
    asking_for_reminders,
    ineligible_reason,
    patient_zone,
    set_open_state,
    wanted_for,
)

# Enough visits per statement to keep the per-statement cost small, few enough that one
# transaction does not hold a long lock on the range or write a burst of WAL at commit.
SQL_CHUNK = 50_000
PYTHON_BATCH = 1_000

# The kinds per visit status: the day each falls on (``anchor`` + ``shift`` days, where the anchor
# is the appointment's local day, the window's first or last day, or the day a visit was missed:
# its window's last day, or its appointment's when that came later) and the day it is still
# worth sending on (the same, except for an invitation: until the window closes). As
# ``planning.wanted_for`` says.
_KINDS = [
    *[
        (VisitStatus.BOOKED, kind, "local_day", -days, "local_day", -days)
        for kind, days in DAYS_BEFORE.items()
    ],
    (
        VisitStatus.PLANNED,
        ReminderKind.BOOKING_INVITATION,
        "window_start",
        -INVITATION_DAYS_BEFORE_WINDOW,
        "window_end",
        0,
    ),
    (
        VisitStatus.PLANNED,
        ReminderKind.BOOKING_LAST_CALL,
        "window_end",
        -LAST_CALL_DAYS_BEFORE_CLOSE,
        "window_end",
        -LAST_CALL_DAYS_BEFORE_CLOSE,
    ),
    (VisitStatus.MISSED, ReminderKind.MISSED_VISIT, "missed_on", 1, "missed_on", 1),
]

# Converting a time between zones is the costly part, so each visit's local day is computed once
# and each due time once per (zone, local wall time), which many reminders share.
# A due time is REMINDER_SEND_HOUR on a local day; Python places a wall time that occurs twice
# (a clock turned back) at its first occurrence, PostgreSQL's AT TIME ZONE at its second. The
# offset in force a day before gives the first one; it is kept when it really shows that wall time.
# A planned visit's invitations are keyed on noon UTC of its window's first day.
_INSERT = """
WITH visit AS MATERIALIZED (
    SELECT
        v.id, v.status, v.scheduled_for, v.window_start, v.window_end, z.zone,
        (v.scheduled_for AT TIME ZONE z.zone)::date AS local_day,
        CASE
            WHEN p.archived THEN %(archived)s
            WHEN p.follow_up_ended_on IS NOT NULL THEN %(ended)s
            WHEN NOT p.email_reminders OR p.email = '' THEN %(no_consent)s
        END AS ineligible
    FROM followups_visit v
    JOIN patients_patient p ON p.id = v.patient_id
    CROSS JOIN LATERAL (SELECT coalesce(nullif(p.timezone, ''), %(clinic_zone)s) AS zone) z
    WHERE v.id > %(after)s AND v.id <= %(upto)s
      AND (
        (v.status = %(booked)s AND v.scheduled_for >= %(recent)s)
        OR (v.status = %(planned)s AND v.window_end >= %(recent_day)s)
        OR (
            v.status = %(missed)s AND (v.window_end >= %(recent_day)s OR v.scheduled_for >= %(recent)s)
            AND NOT EXISTS (SELECT 1 FROM followups_visit rebooked WHERE rebooked.rebooked_from_id = v.id)
        )
      )
),
kinds AS (
    SELECT * FROM unnest(
        %(kind_status)s::text[], %(kind)s::text[], %(kind_anchor)s::text[], %(kind_shift)s::integer[],
        %(kind_by_anchor)s::text[], %(kind_by_shift)s::integer[]
    ) AS k (status, kind, anchor, shift, by_anchor, by_shift)
),
wanted AS MATERIALIZED (
    SELECT
        visit.id AS visit_id, k.kind, visit.zone, visit.ineligible,
        CASE
            WHEN visit.status = %(planned)s THEN (visit.window_start + time '12:00') AT TIME ZONE 'UTC'
            ELSE visit.scheduled_for
        END AS visit_time,
        (
            CASE k.anchor
                WHEN 'local_day' THEN visit.local_day
                WHEN 'window_start' THEN visit.window_start
                WHEN 'missed_on' THEN GREATEST(visit.window_end, visit.local_day)
                ELSE visit.window_end
            END + k.shift
        ) + %(send_time)s AS wall,
        (
            CASE k.by_anchor
                WHEN 'local_day' THEN visit.local_day
                WHEN 'missed_on' THEN GREATEST(visit.window_end, visit.local_day)
                ELSE visit.window_end
            END + k.by_shift
        ) + %(send_time)s AS by_wall
    FROM visit
    JOIN kinds k ON k.status = visit.status
),
missing AS MATERIALIZED (
    SELECT * FROM wanted w
    WHERE NOT EXISTS (
        SELECT 1 FROM followups_reminder r
        WHERE r.visit_id = w.visit_id AND r.kind = w.kind AND r.visit_time = w.visit_time
          AND r.visit_id > %(after)s AND r.visit_id <= %(upto)s
    )
),
placed AS MATERIALIZED (
    SELECT
        wall.zone, wall.wall,
        CASE
            WHEN (earliest.due AT TIME ZONE wall.zone) = wall.wall THEN earliest.due
            ELSE later.due
        END AS due
    FROM (
        SELECT zone, wall FROM missing UNION SELECT zone, by_wall FROM missing
    ) wall
    CROSS JOIN LATERAL (SELECT wall.wall AT TIME ZONE wall.zone AS due) later
    CROSS JOIN LATERAL (
        SELECT (
            wall.wall
            - ((later.due - interval '1 day') AT TIME ZONE wall.zone)
            + ((later.due - interval '1 day') AT TIME ZONE 'UTC')
        ) AT TIME ZONE 'UTC' AS due
    ) earliest
)
INSERT INTO followups_reminder (
    uuid, visit_id, kind, visit_time, due_at, status, status_reason, next_attempt_at,
    attempts, message_id, last_error, created_at, updated_at
)
SELECT
    gen_random_uuid(), w.visit_id, w.kind, w.visit_time, placed.due,
    CASE WHEN w.ineligible IS NULL AND send_by.due > %(now)s THEN %(pending)s ELSE %(skipped)s END,
    CASE
        WHEN w.ineligible IS NOT NULL THEN w.ineligible
        WHEN send_by.due <= %(now)s THEN %(late)s
        ELSE ''
    END,
    CASE WHEN w.ineligible IS NULL AND send_by.due > %(now)s THEN placed.due END,
    0, '', '', %(written_at)s, %(written_at)s
FROM missing w
JOIN placed ON placed.zone = w.zone AND placed.wall = w.wall
JOIN placed send_by ON send_by.zone = w.zone AND send_by.wall = w.by_wall
ON CONFLICT ON CONSTRAINT followups_reminder_once DO NOTHING
"""

_NEXT_BOUND = """
SELECT max(id) FROM (SELECT id FROM followups_visit WHERE id > %s ORDER BY id LIMIT %s) AS chunk
"""


def reminders_plan_bulk_sql(*, now: datetime, chunk: int = SQL_CHUNK) -> int:
    """The PostgreSQL path: one INSERT ... SELECT per ``chunk`` visits, each committed on its own."""
    recent = now - timedelta(days=2)
    params = {
        "now": now,
        "recent": recent,
        "recent_day": recent.date(),
        "clinic_zone": settings.CLINIC_TIME_ZONE,
        "send_time": time(settings.REMINDER_SEND_HOUR),
        "planned": VisitStatus.PLANNED.value,
        "booked": VisitStatus.BOOKED.value,
        "missed": VisitStatus.MISSED.value,
        "pending": ReminderStatus.PENDING.value,
        "skipped": ReminderStatus.SKIPPED.value,
        "late": LATE_REASON,
        "archived": ARCHIVED_REASON,
        "ended": ENDED_REASON,
        "no_consent": NO_CONSENT_REASON,
        "kind_status": [row[0].value for row in _KINDS],
        "kind": [row[1].value for row in _KINDS],
        "kind_anchor": [row[2] for row in _KINDS],
        "kind_shift": [row[3] for row in _KINDS],
        "kind_by_anchor": [row[4] for row in _KINDS],
        "kind_by_shift": [row[5] for row in _KINDS],
    }
    inserted, after = 0, 0
    with connection.cursor() as cursor:
        while True:
            cursor.execute(_NEXT_BOUND, [after, chunk])
            upto = cursor.fetchone()[0]
            if upto is None:
                return inserted
            params.update(after=after, upto=upto, written_at=timezone.now())
            with transaction.atomic():
                cursor.execute(_INSERT, params)
                inserted += cursor.rowcount
            after = upto


def reminders_plan_bulk_python(*, now: datetime, batch: int = PYTHON_BATCH) -> int:
    """The portable path: ``batch`` visits at a time through ``wanted_for``, a few queries per batch."""
    visits = (
        Visit.objects.filter(asking_for_reminders(now - timedelta(days=2)))
        .select_related("patient", "rebooked_as")
        .order_by("pk")
    )
    inserted, after = 0, 0
    while True:
        with transaction.atomic():
            page = list(visits.filter(pk__gt=after)[:batch])
            if not page:
                return inserted
            inserted += _insert_missing(page, now)
        after = page[-1].pk


def _insert_missing(visits: list[Visit], now: datetime) -> int:
    in_range = Reminder.objects.filter(visit_id__gte=visits[0].pk, visit_id__lte=visits[-1].pk)
    existing = set(in_range.values_list("visit_id", "kind", "visit_time"))
    rows = []
    for visit in visits:
        ineligible = ineligible_reason(visit.patient)
        for want in wanted_for(visit, patient_zone(visit.patient)):
            if want.key not in existing:
                row = Reminder(visit=visit, kind=want.kind, visit_time=want.visit_time)
                set_open_state(row, want, ineligible, now)
                rows.append(row)
    if not rows:
        return 0
    Reminder.objects.bulk_create(rows, ignore_conflicts=True)
    # Rows planned meanwhile by another transaction were skipped: count what is there now. The
    # caller's transaction makes this exact on SQLite, whose writers take turns.
    return in_range.count() - len(existing)


def reminders_plan_bulk(*, now: datetime | None = None) -> int:
    """Insert the reminder rows missing for every visit that asks for one; answer how many.

    For visits written in bulk, which never went through ``planning.reminders_plan_for``: each
    missing row is the one it would create for a visit with no rows yet, over the same horizon. It
    only inserts; a row that exists stays as it is, whatever its state, so a second run inserts
    nothing. Commits as it goes, one range of visits at a time.
    """
    now = now or timezone.now()
    if connection.vendor == "postgresql":
        return reminders_plan_bulk_sql(now=now)
    return reminders_plan_bulk_python(now=now)
