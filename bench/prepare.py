"""``python -m bench.prepare --patients N``: the bench database, migrated and seeded with N demo patients.

Creates the database if it is missing, migrates it, and seeds only the patients it lacks
(``seed_demo`` continues the numbering), so that a re-run reuses the data it has. Then tops up the
upcoming visits (planned or booked, ahead of now) to ``--upcoming-visits`` (10 per patient by default,
1,000,000 at 100,000 patients) with bench-only planned visits: manual, no treatment, spread over the
next year at 09:00 in the clinic's zone, round-robin over the seeded patients. Bulk SQL, like the
seed: no history rows, no reminders (planning them is what the benchmark measures).
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
    upcoming_visits_top_up(args.upcoming_visits or 10 * args.patients)


TOP_UP_PURPOSE = "Review (bench)"


def upcoming_visits_top_up(wanted: int) -> None:
    from django.conf import settings
    from django.db import connection

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
                window_start, window_end, status, source, cancel_reason, sequence, patient_id)
            SELECT gen_random_uuid(), now(), now(), %(purpose)s, at, (at AT TIME ZONE %(zone)s)::date,
                   (at AT TIME ZONE %(zone)s)::date, 'planned', 'manual', '', 0,
                   patients.ids[1 + (g::bigint * 7919) %% array_length(patients.ids, 1)]
            FROM slots, patients
            """,
            {
                "zone": settings.CLINIC_TIME_ZONE,
                "hour": settings.CLINIC_VISIT_HOUR,
                "missing": missing,
                "purpose": TOP_UP_PURPOSE,
            },
        )
        cursor.execute(f"ANALYZE {Visit._meta.db_table}")


if __name__ == "__main__":
    main()
