"""``python -m bench.run``: every measurement of BENCHMARKS.md in one go, a table, ``bench/results.json``.

Run by ``make bench`` after ``bench.prepare``; ``--only`` runs some parts and keeps the others'
figures from the previous results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time

from bench.common import log, setup_django

PARTS = (
    "queries",
    "load",
    "planning",
    "claim",
    "dispatch",
    "suggestions",
    "race",
    "calls",
    "staff",
    "nightly",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(PARTS), help=f"Some of: {','.join(PARTS)}")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("BENCH_SECONDS", 15)))
    parser.add_argument("--warmup", type=float, default=float(os.environ.get("BENCH_WARMUP", 3)))
    parser.add_argument("--claim-rows", default=os.environ.get("BENCH_CLAIM_ROWS", "100000,10000000"))
    parser.add_argument("--dispatch", type=int, default=int(os.environ.get("BENCH_DISPATCH", 2000)))
    parser.add_argument(
        "--suggestion-visits",
        type=int,
        default=int(os.environ.get("BENCH_SUGGESTION_VISITS", 50)),
        help="Planned visits sampled per visit kind for the slot suggestions.",
    )
    parser.add_argument("--racers", type=int, default=int(os.environ.get("BENCH_RACERS", 50)))
    args = parser.parse_args()
    parts = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    setup_django()

    from django.db import connection

    from bench import (
        booking,
        calls,
        claim,
        dispatch,
        endpoints,
        load,
        nightly,
        planning,
        queries,
        report,
        staff,
    )
    from followups.models import Visit
    from patients.models import Patient

    partial = set(parts) != set(PARTS)
    previous = json.loads(report.RESULTS.read_text()) if partial and report.RESULTS.exists() else {}
    sections = {part: previous[part] for part in PARTS if part in previous}
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    database = {
        "name": connection.settings_dict["NAME"],
        "postgresql": server,
        "patients": Patient.objects.count(),
        "visits": Visit.objects.count(),
        # The benchmark shares the machine: a load already there shows in every figure.
        "load_average_at_start": [round(load, 2) for load in os.getloadavg()],
    }
    log(f"database {database}")
    started = time.perf_counter()
    if {"queries", "load", "staff"} & set(parts):
        key = endpoints.api_key()
    if {"queries", "load"} & set(parts):
        patients = endpoints.sample_patients()
    for part in PARTS:
        if part not in parts:
            continue
        log(f"--- {part}")
        part_started = time.perf_counter()
        if part == "queries":
            result = queries.measure(key=key, patients=patients)
        elif part == "load":
            result = load.measure(key=key, patients=patients, seconds=args.seconds, warmup=args.warmup)
        elif part == "planning":
            result = planning.measure()
        elif part == "claim":
            result = claim.measure(sizes=[int(n) for n in args.claim_rows.split(",")])
        elif part == "dispatch":
            result = dispatch.measure(n=args.dispatch)
        elif part == "suggestions":
            result = booking.suggestions_measure(per_kind=args.suggestion_visits)
        elif part == "race":
            result = booking.race_measure(racers=args.racers)
        elif part == "calls":
            result = calls.measure()
        elif part == "staff":
            result = staff.measure(key=key)
        else:
            result = nightly.measure()
        result["measured_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        result["took_s"] = round(time.perf_counter() - part_started, 1)
        sections[part] = result
    results = report.write(sections, database=database)
    print()
    print(report.table(results))
    print(f"\nwritten to {report.RESULTS} in {time.perf_counter() - started:.0f} s")
    race = sections.get("race") or {}
    if "race" in parts and not race.get("exactly_places"):
        raise SystemExit(
            f"race: {race.get('booked')} bookings succeeded for {race.get('places')} places "
            f"(exactly {race.get('places')} must), or Slot.booked differs from the visits held: see above"
        )


if __name__ == "__main__":
    main()
