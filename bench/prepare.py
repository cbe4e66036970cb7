"""``python -m bench.prepare --patients N``: the bench database, migrated and seeded with N demo patients.

Creates the database if it is missing, migrates it, and seeds only the patients it lacks
(``seed_demo`` continues the numbering), so that a re-run reuses the data it has. Then tops up the
upcoming visits (planned or booked, ahead of now) to ``--upcoming-visits`` (10 per patient by default,
1,000,000 at 100,000 patients) with bench-only planned visits: manual, no treatment, spread over the
next year at 09:00 in the clinic's zone, round-robin over the seeded patients. Bulk SQL, like the
seed: no history rows, no reminders (planning them is what the benchmark measures).

Before the top-up, the clinic's sessions of the next 26 weeks are generated from its templates
(``followups.booking.sessions_generate``, what beat runs nightly), and a share of their places is
booked with bench-only booked visits (purpose "Booked (bench)"), so that slot suggestions search a
clinic that is partly full, as a real one is: most places of the next weeks taken, fewer further
ahead. Bulk SQL too: each visit holds its slot and the slot's ``booked`` counts them.
"""

from __future__ import annotations

import argparse
import os

import psycopg

from bench.common import bench_environment, log


def database_create_if_missing(url: str) -> None:
    import environ

    config = environ.Env.db_url_config(url)
    name = config["NAME"]
    with psycopg.connect(
        host=config["HOST"] or "127.0.0.1",
        port=config["PORT"] or 5432,
        user=config["USER"] or "postgres",
        password=config["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as maintenance:
        exists = maintenance.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            log(f"creating database {name}")
            maintenance.execute(f'CREATE DATABASE "{name}"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--upcoming-visits", type=int, default=None, help="Default: 10 per patient.")
    args = parser.parse_args()
    env = bench_environment()
    database_create_if_missing(env["DATABASE_URL"])
    os.environ.update(env)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from patients.models import Patient

    have = Patient.objects.count()
    if have >= args.patients:
        log(f"{have} patients already seeded (asked for {args.patients}): reusing them")
    else:
        log(f"{have} patients seeded; seeding {args.patients - have} more with seed_demo")
        call_command("seed_demo", patients=args.patients - have)
    sessions_and_bookings()
    upcoming_visits_top_up(args.upcoming_visits or 10 * args.patients)
    statistics_update()
    whole_refresh_once()


def statistics_update() -> None:
    """The planner's statistics after the bulk writes: without them it plans a patient's few rows
    as thousands (a hash join over every diagnosis, 25 ms a patient instead of 0.1)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    log("statistics updated (ANALYZE)")


def whole_refresh_once() -> None:
    """Every patient's follow-up derived once (outcomes, flags, reminders, the open series), as
    ``follow_up_refresh --queue`` does it: its chunks through a worker of 2 processes. The seed
    writes visits only, so until then no list that reads the stored flags has rows. Its run's
    record is the figure ``follow_up_refresh_100k`` (bench/nightly.py); done once per database."""
    import sys

    from django.core.management import call_command

    from bench.common import VAR, bench_environment, wait_until
    from bench.dispatch import Worker
    from followups.models import FollowUpRun
    from followups.runs.codes import RunKind, RunState
    from followups.runs.starting import run_chunks_requeue_lapsed
    from followups.tasks import queue_chunks

    runs = FollowUpRun.objects.filter(kind=RunKind.COMMAND)
    if runs.filter(state=RunState.FINISHED).exists():
        log("the follow-up was refreshed whole before: reusing it")
        return
    VAR.mkdir(parents=True, exist_ok=True)
    worker = Worker({**os.environ, **bench_environment()}, VAR / "refresh-worker.log", processes=2).start()
    try:
        if not runs.exists():
            call_command("follow_up_refresh", queue=True, stdout=sys.stdout)
        run = runs.order_by("-started_at").first()
        log(f"refreshing {run.patients} patients through {run.chunks.count()} chunks (tens of minutes)")

        def finished() -> bool:
            run_chunks_requeue_lapsed(queue=queue_chunks)  # beat's sweep: no beat runs here
            run.refresh_from_db()
            return run.state != RunState.RUNNING

        wait_until(finished, timeout=6 * 3600, interval=5, what="the whole refresh")
        log(f"refreshed {run.done} patients, {run.failed} failed, in {run.finished_at - run.started_at}")
    finally:
        worker.stop()


TOP_UP_PURPOSE = "Review (bench)"
BOOKED_PURPOSE = "Booked (bench)"
# The share of a slot's places booked, by how far ahead its session is: FULLEST in the next days,
# falling by a straight line to EMPTIEST at 26 weeks (182 days).
FULLEST, EMPTIEST = 0.95, 0.2


def sessions_and_bookings() -> None:
    """The sessions of the next 26 weeks, then bench bookings in the free slots ahead that have
    none yet (templates labelled "(bench)", the race's own, are left alone). A re-run books only
    the slots it has not seen: the sessions generated since (the 26 weeks move on each day)."""
    from django.db import connection, transaction

    from followups.booking import sessions_generate
    from followups.models import ClinicSession, Slot, Visit

    made = sessions_generate()
    log(f"sessions: {made} generated; {ClinicSession.objects.count()} in all, {Slot.objects.count()} slots")
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            WITH patients AS (
                SELECT array_agg(id ORDER BY id) AS ids FROM patients_patient WHERE NOT archived
            ),
            places AS (
                SELECT slot.id AS slot_id, slot.starts_at, session.on, place,
                       kinds.kinds, row_number() OVER (ORDER BY slot.id, place) AS n
                FROM followups_slot slot
                JOIN followups_clinicsession session ON session.id = slot.session_id
                JOIN followups_sessiontemplate template ON template.id = session.template_id
                CROSS JOIN LATERAL (
                    SELECT array_agg(visit_kind ORDER BY visit_kind) AS kinds
                    FROM followups_sessiontemplatekind WHERE template_id = template.id
                ) AS kinds
                CROSS JOIN LATERAL generate_series(1, slot.capacity) AS place
                WHERE NOT session.cancelled
                  AND template.label NOT LIKE '%%(bench)'
                  AND slot.starts_at > now()
                  AND slot.booked = 0
                  AND NOT EXISTS (SELECT 1 FROM {Visit._meta.db_table} v WHERE v.slot_id = slot.id)
                  AND (slot.id::bigint * 7919 + place * 104729) %% 1000
                      < 1000 * GREATEST(%(emptiest)s, %(fullest)s
                          - (%(fullest)s - %(emptiest)s) * (session.on - CURRENT_DATE) / 182.0)
            ),
            booked AS (
                INSERT INTO {Visit._meta.db_table} (uuid, created_at, updated_at, purpose, scheduled_for,
                    window_start, window_end, status, source, cancel_reason, sequence, visit_kind,
                    slot_id, patient_id)
                SELECT gen_random_uuid(), now(), now(), %(purpose)s, places.starts_at,
                       places.on - 7, places.on + 7, 'booked', 'manual', '', 0,
                       places.kinds[1 + place %% array_length(places.kinds, 1)], places.slot_id,
                       patients.ids[1 + (n * 7919) %% array_length(patients.ids, 1)]
                FROM places, patients
                WHERE array_length(places.kinds, 1) > 0
                RETURNING slot_id
            )
            UPDATE followups_slot slot SET booked = slot.booked + taken.n
            FROM (SELECT slot_id, count(*) AS n FROM booked GROUP BY slot_id) AS taken
            WHERE slot.id = taken.slot_id
            """,
            {"purpose": BOOKED_PURPOSE, "fullest": FULLEST, "emptiest": EMPTIEST},
        )
        log(f"bookings: {cursor.rowcount} more slots partly or fully booked with bench visits")
        cursor.execute(
            "SELECT count(*), sum(capacity), sum(booked), count(*) FILTER (WHERE booked >= capacity) "
            "FROM followups_slot WHERE starts_at > now()"
        )
        slots, places, taken, full = cursor.fetchone()
        log(f"slots ahead: {slots}, {taken or 0} of {places or 0} places booked, {full} slots full")
        cursor.execute("ANALYZE followups_slot")
        cursor.execute("ANALYZE followups_clinicsession")


def upcoming_visits_top_up(wanted: int) -> None:
    from django.conf import settings
    from django.db import connection

    from followups.codes import VisitKind
    from followups.models import Visit

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE purpose = %s) FROM followups_visit "
            "WHERE status IN ('planned', 'booked') AND scheduled_for > now()",
            [TOP_UP_PURPOSE],
        )
        upcoming, topped_up = cursor.fetchone()
        log(f"{upcoming} upcoming visits ({topped_up} of them bench top-up); wanted {wanted}")
        missing = wanted - upcoming
        if missing <= 0:
            return
        log(f"adding {missing} bench planned visits over the next 365 days")
        cursor.execute(
            f"""
            WITH patients AS (SELECT array_agg(id ORDER BY id) AS ids FROM patients_patient),
            slots AS (
                SELECT g,
                       ((date_trunc('day', now() AT TIME ZONE %(zone)s) + (1 + g %% 365) * interval '1 day'
                         + %(hour)s * interval '1 hour') AT TIME ZONE %(zone)s) AS at
                FROM generate_series(1, %(missing)s) AS g
            )
            INSERT INTO {Visit._meta.db_table} (uuid, created_at, updated_at, purpose, scheduled_for,
                window_start, window_end, status, source, cancel_reason, sequence, visit_kind, patient_id)
            SELECT gen_random_uuid(), now(), now(), %(purpose)s, at, (at AT TIME ZONE %(zone)s)::date,
                   (at AT TIME ZONE %(zone)s)::date, 'planned', 'manual', '', 0, %(kind)s,
                   patients.ids[1 + (g::bigint * 7919) %% array_length(patients.ids, 1)]
            FROM slots, patients
            """,
            {
                "zone": settings.CLINIC_TIME_ZONE,
                "hour": settings.CLINIC_VISIT_HOUR,
                "missing": missing,
                "purpose": TOP_UP_PURPOSE,
                "kind": VisitKind.REVIEW,
            },
        )
        cursor.execute(f"ANALYZE {Visit._meta.db_table}")


if __name__ == "__main__":
    main()
