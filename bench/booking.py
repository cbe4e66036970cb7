"""Items 5 and 6 (issue 13): slot suggestions for one visit, and bookings racing for the last places.

suggestions: ``followups.booking.slot_suggestions(visit=...)``, materialised to a list, in process,
for a sample of the upcoming planned visits of each visit kind, on the bench database: the clinic's
default templates with their sessions of the next 26 weeks (``sessions_generate`` runs first; it
makes nothing when ``bench.prepare`` has), partly booked by ``bench.prepare`` (most places of the
next weeks, fewer further ahead). One untimed pass counts each call's queries and what it answered
(free slots inside the window, the nearest after it, none); then ``PASSES`` timed passes. The plans
(EXPLAIN ANALYZE, BUFFERS) are those of the queries of a typical visit (the median one of those
answered inside their window; its plan is printed) and of the slowest visit.

race: ``RACERS`` threads, each with its own database connection and a different planned visit of
a different patient, book through ``visit_move(to="booked", slot=...)`` into the slots of one
session of a template of the bench's own (``RACE_SLOTS`` slots of ``RACE_CAPACITY`` places: 10 in
all), released together by a barrier. Exactly 10 must be booked, every other one refused with a
``ValidationError`` of code ``slot_full``, and each slot's ``booked`` must equal the visits it
holds. Then the places are given back through ``visit_move(to="planned")`` (which must bring every
``booked`` back to 0), and the race's reminders, slots, session and template are deleted. Its 50
visits (purpose "Race (bench)") are clinical records, never deleted: they stay planned and are
reused by the next run, their window moved onto the race's day.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import datetime, timedelta
from datetime import time as clock
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from bench.common import log

SAMPLE_PER_KIND = 50
PASSES = 5
RACE_LABEL = "Race (bench)"  # "(bench)": bench.prepare books no slot of it
RACE_PURPOSE = "Race (bench)"
RACERS = 50
RACE_SLOTS, RACE_CAPACITY = 5, 2
RACE_PLACES = RACE_SLOTS * RACE_CAPACITY
RACE_SLOT_MINUTES = 20
# Within the 26 weeks that sessions_generate makes; far enough that no visit reminder falls due
# (the booking confirmations, due at once, are deleted with the race's other reminders).
RACE_AHEAD_DAYS = 175


def _percentile_ms(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))] * 1000, 3)


def _stats_ms(samples: list[float]) -> dict:
    return {
        "calls": len(samples),
        "p50_ms": _percentile_ms(samples, 0.5),
        "p95_ms": _percentile_ms(samples, 0.95),
        "max_ms": round(max(samples) * 1000, 3),
    }


def _explain(sql: str) -> str:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


def _sample(kind: str, today, n: int) -> list:
    """``n`` upcoming planned visits of ``kind``, spread over all of them (not the first ones)."""
    from followups.models import Visit

    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {Visit._meta.db_table} WHERE status = 'planned' AND visit_kind = %s "
            "AND window_end >= %s AND purpose <> %s ORDER BY md5(id::text) LIMIT %s",
            [kind, today, RACE_PURPOSE, n],
        )
        ids = [row[0] for row in cursor.fetchall()]
    return list(Visit.objects.filter(pk__in=ids).order_by("pk"))


def _explained(visit, answers: dict, timings: dict) -> dict:
    """One visit's call: its statements, their plans and the database's execution times."""
    from followups import booking

    with CaptureQueriesContext(connection) as captured:
        list(booking.slot_suggestions(visit=visit))
    statements = [query["sql"] for query in captured.captured_queries]
    plans = [_explain(sql) for sql in statements]
    execution = [
        float(line.split(":", 1)[1].split()[0])
        for plan in plans
        for line in plan.splitlines()
        if line.startswith("Execution Time:")
    ]
    return {
        "id": visit.pk,
        "kind": visit.visit_kind,
        "window": [visit.window_start, visit.window_end],
        "answer": answers[visit.pk],
        "p50_ms": _percentile_ms(timings[visit.pk], 0.5),
        "execution_ms": execution,
        "queries": statements,
        "plans": plans,
    }


def _clinic_ahead(today) -> dict:
    from django.db.models import Count, F, Max, Q, Sum

    from followups.models import ClinicSession, Slot

    now = timezone.now()
    slots = Slot.objects.filter(starts_at__gte=now, session__cancelled=False).aggregate(
        n=Count("id"),
        places=Sum("capacity"),
        taken=Sum("booked"),
        full=Count("id", filter=Q(booked__gte=F("capacity"))),
    )
    sessions = ClinicSession.objects.filter(on__gte=today, cancelled=False).aggregate(
        sessions=Count("id"), last_on=Max("on")
    )
    return {
        "sessions_ahead": sessions["sessions"],
        "last_session_on": sessions["last_on"],
        "weeks_ahead": round((sessions["last_on"] - today).days / 7, 1) if sessions["last_on"] else 0,
        "slots_ahead": slots["n"],
        "slots_full": slots["full"],
        "places_ahead": slots["places"] or 0,
        "places_booked": slots["taken"] or 0,
        "booked_share": round((slots["taken"] or 0) / slots["places"], 3) if slots["places"] else None,
    }


def suggestions_measure(*, per_kind: int = SAMPLE_PER_KIND, passes: int = PASSES) -> dict:
    from followups import booking
    from followups.codes import VisitKind

    today = timezone.localdate()
    made = booking.sessions_generate(today=today)
    clinic = _clinic_ahead(today)
    log(f"suggestions: {made} sessions generated now; clinic ahead {clinic}")
    samples = {kind: _sample(kind, today, per_kind) for kind in VisitKind.values}
    visits = [visit for kind in VisitKind.values for visit in samples[kind]]
    if not visits:
        return {"skipped": "no upcoming planned visit", "clinic": clinic}

    # The untimed pass: queries and answers of each call (and a warm-up of the timed ones).
    queries, answers = {}, {}
    for visit in visits:
        with CaptureQueriesContext(connection) as captured:
            suggestions = list(booking.slot_suggestions(visit=visit))
        queries[visit.pk] = len(captured.captured_queries)
        answers[visit.pk] = (
            "none" if not suggestions else "inside_window" if suggestions[0].inside_window else "after_window"
        )
    timings = {visit.pk: [] for visit in visits}
    for _ in range(passes):
        for visit in visits:
            started = time.perf_counter()
            list(booking.slot_suggestions(visit=visit))
            timings[visit.pk].append(time.perf_counter() - started)

    every = [t for visit in visits for t in timings[visit.pk]]
    by_kind = {}
    for kind in VisitKind.values:
        if not samples[kind]:
            by_kind[kind] = {"visits": 0}
            continue
        pks = [visit.pk for visit in samples[kind]]
        by_kind[kind] = {
            "visits": len(pks),
            **_stats_ms([t for pk in pks for t in timings[pk]]),
            "queries_per_call": dict(sorted(Counter(queries[pk] for pk in pks).items())),
            "answers": dict(Counter(answers[pk] for pk in pks)),
        }

    def p50(visit) -> float:
        return sorted(timings[visit.pk])[len(timings[visit.pk]) // 2]

    slowest = max(visits, key=p50)
    inside = sorted((v for v in visits if answers[v.pk] == "inside_window"), key=p50) or visits
    typical = inside[len(inside) // 2]
    result = {
        "sessions_generated_now": made,
        "clinic": clinic,
        "passes": passes,
        "visits": len(visits),
        **_stats_ms(every),
        "queries_per_call_max": max(queries.values()),
        "queries_per_call": dict(sorted(Counter(queries.values()).items())),
        "answers": dict(Counter(answers.values())),
        "by_kind": by_kind,
        "typical_visit": _explained(typical, answers, timings),
        "slowest_visit": _explained(slowest, answers, timings),
    }
    log(
        f"suggestions: p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms over {len(every)} calls "
        f"({len(visits)} visits x {passes}); queries per call {result['queries_per_call']}; "
        f"answers {result['answers']}"
    )
    for kind, row in by_kind.items():
        if row["visits"]:
            log(
                f"suggestions: {kind:<14} {row['visits']:>3} visits p50 {row['p50_ms']} ms "
                f"p95 {row['p95_ms']} ms queries {row['queries_per_call']} answers {row['answers']}"
            )
    for name in ("typical_visit", "slowest_visit"):
        row = result[name]
        log(
            f"suggestions: {name.replace('_', ' ')}: {row['kind']}, window {row['window'][0]} to "
            f"{row['window'][1]}, {row['answer']}, p50 {row['p50_ms']} ms; in the database "
            + ", ".join(f"{ms} ms" for ms in row["execution_ms"])
        )
    log("suggestions: plan of the typical visit's query:")
    print(result["typical_visit"]["plans"][0], flush=True)
    return result


def _race_cleanup() -> dict:
    """Give back the places the race's visits hold (the product's way: ``visit_move`` to planned),
    then delete the race's reminders, slots, session and template. Run before (what an
    interrupted run left) and after the race."""
    from followups.codes import VisitStatus
    from followups.models import ClinicSession, Reminder, SessionTemplate, Slot, Visit
    from followups.visit_moves import visit_move

    templates = SessionTemplate.objects.filter(label=RACE_LABEL)
    slots = Slot.objects.filter(session__template__in=templates)
    given_back = 0
    for visit in Visit.objects.filter(slot__in=slots, status=VisitStatus.BOOKED).select_related("patient"):
        visit_move(visit=visit, to=VisitStatus.PLANNED)
        given_back += 1
    left = {slot.pk: slot.booked for slot in slots if slot.booked}
    held = Visit.objects.filter(slot__in=slots).count()
    if left or held:
        raise RuntimeError(f"race: places not given back: booked {left}, {held} visits still hold a slot")
    Reminder.objects.filter(visit__purpose=RACE_PURPOSE).delete()
    deleted = slots.delete()[0]
    ClinicSession.objects.filter(template__in=templates).delete()
    templates.delete()
    return {"given_back": given_back, "slots_deleted": deleted}


def _race_visits(day, slot_starts: datetime, n: int) -> list:
    """``n`` planned visits of the race's kind, each of a different patient, their window
    around ``day``: those of the previous runs, and new ones for the patients they lack."""
    from followups.codes import VisitKind, VisitSource, VisitStatus
    from followups.models import Visit
    from patients.models import Patient

    have = Visit.objects.filter(purpose=RACE_PURPOSE)
    missing = n - have.count()
    if missing > 0:
        patients = (
            Patient.objects.filter(archived=False)
            .exclude(pk__in=have.values("patient_id"))
            .order_by("pk")[:missing]
        )
        Visit.objects.bulk_create(
            Visit(
                patient=patient,
                purpose=RACE_PURPOSE,
                visit_kind=VisitKind.INJECTION,
                source=VisitSource.MANUAL,
                status=VisitStatus.PLANNED,
                scheduled_for=slot_starts,
                window_start=day,
                window_end=day,
            )
            for patient in patients
        )
    # A fixture's bulk path, like bench.prepare's (no history row): the window onto the race's day.
    have.update(
        status=VisitStatus.PLANNED,
        slot=None,
        scheduled_for=slot_starts,
        window_start=day - timedelta(days=7),
        window_end=day + timedelta(days=7),
    )
    visits = list(have.select_related("patient").order_by("pk")[:n])
    if len(visits) < n or len({visit.patient_id for visit in visits}) < n:
        raise RuntimeError(f"race: {n} visits of different patients needed, {len(visits)} found")
    return visits


def race_measure(*, racers: int = RACERS) -> dict:
    from django.core.exceptions import ValidationError

    from followups import booking
    from followups.codes import VisitKind, VisitMoveError, VisitStatus
    from followups.models import SessionTemplate, SessionTemplateKind, Slot, Visit
    from followups.visit_moves import visit_move

    if racers <= RACE_PLACES:
        raise ValueError(f"race: more than {RACE_PLACES} racers, for {RACE_PLACES} places")
    leftovers = _race_cleanup()
    if leftovers["given_back"] or leftovers["slots_deleted"]:
        log(f"race: cleaned up after an earlier run: {leftovers}")
    today = timezone.localdate()
    day = today + timedelta(days=RACE_AHEAD_DAYS)
    starts_at = clock(7)
    ends_at = (datetime.combine(day, starts_at) + timedelta(minutes=RACE_SLOTS * RACE_SLOT_MINUTES)).time()
    template = SessionTemplate.objects.create(
        label=RACE_LABEL,
        weekday=day.weekday(),
        starts_at=starts_at,
        ends_at=ends_at,
        slot_minutes=RACE_SLOT_MINUTES,
        capacity=RACE_CAPACITY,
        valid_from=day,
        valid_to=day,
    )
    SessionTemplateKind.objects.create(template=template, visit_kind=VisitKind.INJECTION)
    booking.sessions_generate(today=today, templates=[template])
    slots = list(Slot.objects.filter(session__template=template).order_by("starts_at"))
    places = sum(slot.capacity for slot in slots)
    if places != RACE_PLACES:
        raise RuntimeError(f"race: the session has {places} places, not {RACE_PLACES}")
    zone = ZoneInfo(settings.CLINIC_TIME_ZONE)
    visits = _race_visits(day, datetime.combine(day, starts_at, tzinfo=zone), racers)

    barrier = threading.Barrier(len(visits) + 1)
    outcomes: list[str | None] = [None] * len(visits)
    elapsed: list[float] = [0.0] * len(visits)

    def book(i: int) -> None:
        try:
            connection.ensure_connection()  # each thread its own connection, opened before the start
            visit, slot = visits[i], slots[i % len(slots)]
            barrier.wait(timeout=60)
            started = time.perf_counter()
            try:
                visit_move(visit=visit, to=VisitStatus.BOOKED, slot=slot)
                outcomes[i] = "booked"
            except ValidationError as error:
                codes = (
                    [e.code for e in error.error_list]
                    if not hasattr(error, "error_dict")
                    else [e.code for errors in error.error_dict.values() for e in errors]
                )
                full = codes == [VisitMoveError.SLOT_FULL]
                outcomes[i] = VisitMoveError.SLOT_FULL.value if full else f"refused {codes}"
            except Exception as error:  # reported, and it fails the race
                outcomes[i] = f"error {type(error).__name__}: {error}"
            elapsed[i] = time.perf_counter() - started
        finally:
            connection.close()

    threads = [threading.Thread(target=book, args=(i,)) for i in range(len(visits))]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=60)
    started = time.perf_counter()
    for thread in threads:
        thread.join(timeout=120)
    wall = time.perf_counter() - started

    counts = Counter(outcome or "no answer" for outcome in outcomes)
    per_slot = []
    for slot in Slot.objects.filter(pk__in=[slot.pk for slot in slots]).order_by("starts_at"):
        holding = Visit.objects.filter(slot=slot, status=VisitStatus.BOOKED)
        per_slot.append(
            {
                "starts_at": slot.starts_at,
                "capacity": slot.capacity,
                "booked": slot.booked,
                "visits": holding.count(),
                "at_slot_time": holding.filter(scheduled_for=slot.starts_at).count(),
            }
        )
    booked = counts.get("booked", 0)
    refused_ids = [visit.pk for visit, outcome in zip(visits, outcomes, strict=True) if outcome != "booked"]
    refused = counts.get(VisitMoveError.SLOT_FULL.value, 0)
    # A refused booking changed nothing: the visit is still planned, in no slot.
    untouched = Visit.objects.filter(pk__in=refused_ids, status=VisitStatus.PLANNED, slot=None).count()
    slots_match = all(
        row["booked"] == row["visits"] == row["at_slot_time"] == row["capacity"] for row in per_slot
    )
    consistent = slots_match and untouched == len(refused_ids)
    exactly = booked == places and refused == len(visits) - places and consistent
    cleanup = _race_cleanup()
    result = {
        "racers": len(visits),
        "places": places,
        "slots": len(slots),
        "booked": booked,
        "refused_slot_full": refused,
        "other_outcomes": {k: v for k, v in counts.items() if k not in ("booked", VisitMoveError.SLOT_FULL)},
        "slots_after": per_slot,
        "refused_left_planned": untouched,
        "slot_booked_equals_visits": slots_match,
        "exactly_places": exactly,
        "wall_ms": round(wall * 1000, 1),
        "booking_p50_ms": _percentile_ms(elapsed, 0.5),
        "booking_max_ms": round(max(elapsed) * 1000, 1),
        "cleanup": cleanup,
        "method": "threads, one connection each, one barrier; visit_move(to='booked', slot=...)",
    }
    verdict = "OK: exactly" if exactly else "FAILED: not exactly"
    log(
        f"race: {verdict} {places} booked of {len(visits)} racing for {places} places in {len(slots)} "
        f"slots: {booked} booked, {refused} refused slot_full, other {result['other_outcomes']}; "
        f"Slot.booked == visits held: {slots_match}; refused left planned: {untouched}; "
        f"wall {result['wall_ms']} ms "
        f"(one booking p50 {result['booking_p50_ms']} ms, max {result['booking_max_ms']} ms); "
        f"cleaned up {cleanup}"
    )
    return result
