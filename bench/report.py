"""The table printed at the end and ``bench/results.json`` (written to a tmp file, then renamed)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from pathlib import Path

from bench.common import BENCH_DIR

# BENCH_RESULTS: another file, for a run that must not replace the figures of record.
RESULTS = Path(os.environ.get("BENCH_RESULTS") or BENCH_DIR / "results.json")

# key: (what, target, the test the figure must pass)
TARGETS = {
    "list_latency_ratio_to_floor": ("list endpoints p50 / floor p50 (worst)", "<= 1.5", lambda v: v <= 1.5),
    "max_queries_per_request": ("queries per request (any page size)", "<= 5", lambda v: v <= 5),
    "plan_1m_visits_s": ("plan reminders of 1,000,000 visits (s)", "< 60", lambda v: v < 60),
    "replan_1m_visits_s": ("re-run, inserting nothing (s)", "< 20", lambda v: v < 20),
    "claim_ms_at_10m_rows": ("claim at 10,000,000 rows (ms, median)", "< 20", lambda v: v < 20),
    "dispatch_per_s": ("reminders dispatched per second", ">= 200", lambda v: v >= 200),
    "dispatch_ratio_to_smtplib_floor": ("dispatch / smtplib floor", ">= 0.5", lambda v: v >= 0.5),
    "suggestions_p50_ms": ("slot suggestions for one visit (ms, p50)", "< 20", lambda v: v < 20),
    "race_booked_of_10_places": ("50 bookings racing for 10 places: booked", "== 10", lambda v: v == 10),
    "call_list_page_queries": ("call list, a page of 50: queries", "<= 2", lambda v: v <= 2),
    "call_list_page_ms": ("call list, first page of 50 (ms, median)", "< 1000", lambda v: v < 1000),
    "nightly_100k_s": ("the nightly run, 2 worker processes (s)", "< 600", lambda v: v < 600),
    "nightly_worker_ratio": ("nightly rate, 2 processes / 1", "> 1.5", lambda v: v > 1.5),
    "longest_chunk_s": ("longest task of a nightly run (s)", "<= 60", lambda v: v <= 60),
    "staff_worst_p50_ms": ("staff pages, worst p50 (ms)", "< 300", lambda v: v < 300),
}


def machine() -> dict:
    meminfo = Path("/proc/meminfo").read_text().splitlines()
    memory_kb = next(int(line.split()[1]) for line in meminfo if line.startswith("MemTotal:"))
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "")
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "cpu": model,
        "load_average_at_end": [round(load, 2) for load in os.getloadavg()],
        "python": platform.python_version(),
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "",
    }


def headline(sections: dict) -> dict:
    load = sections.get("load") or {}
    queries = sections.get("queries") or {}
    planning = sections.get("planning") or {}
    claim = (sections.get("claim") or {}).get("at", {})
    dispatch = sections.get("dispatch") or {}
    suggestions = sections.get("suggestions") or {}
    race = sections.get("race") or {}
    calls = (sections.get("calls") or {}).get("call_list") or {}
    nightly = sections.get("nightly") or {}
    staff = sections.get("staff") or {}
    largest = claim[max(claim, key=int)] if claim else {}
    return {
        "list_latency_ratio_to_floor": load.get("list_latency_ratio_to_floor"),
        # Not a target of the issue: the same lists against a floor that also does the API's duties.
        "list_latency_ratio_to_duty_floor": load.get("list_latency_ratio_to_duty_floor"),
        "max_queries_per_request": queries.get("max_queries_per_request"),
        "plan_1m_visits_s": planning.get("plan_s"),
        "replan_1m_visits_s": planning.get("replan_s"),
        "claim_ms_at_10m_rows": (
            largest.get("claim_call_median_ms") if largest.get("rows") == 10_000_000 else None
        ),
        "dispatch_per_s": dispatch.get("per_s"),
        "dispatch_ratio_to_smtplib_floor": dispatch.get("ratio_to_smtplib_floor"),
        "suggestions_p50_ms": suggestions.get("p50_ms"),
        # Booked, when the race had 10 places and every slot's count matched its visits afterwards.
        "race_booked_of_10_places": (
            race.get("booked") if race.get("places") == 10 and race.get("slot_booked_equals_visits") else None
        ),
        "call_list_page_queries": (calls.get("first_page") or {}).get("queries"),
        "call_list_page_ms": (calls.get("first_page") or {}).get("median_ms"),
        "nightly_100k_s": nightly.get("nightly_100k_s"),
        "nightly_worker_ratio": nightly.get("nightly_worker_ratio"),
        "longest_chunk_s": nightly.get("longest_chunk_s"),
        "staff_worst_p50_ms": staff.get("staff_worst_p50_ms"),
        # Not a target: the whole refresh through the chunks (bench.prepare), a patient's cost.
        "follow_up_refresh_ms_per_patient": (nightly.get("follow_up_refresh_100k") or {}).get(
            "per_patient_ms_one_process"
        ),
    }


def write(sections: dict, *, database: dict) -> dict:
    results = {
        **headline(sections),
        "machine": machine(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "database": database,
        "targets": {key: target for key, (_, target, _) in TARGETS.items()},
        **sections,
    }
    results["targets_met"] = {
        key: None if results[key] is None else bool(test(results[key]))
        for key, (_, _, test) in TARGETS.items()
    }
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2, default=str) + "\n")
    tmp.replace(RESULTS)
    return results


def table(results: dict) -> str:
    lines = [f"{'measure':<44} {'value':>10}  {'target':<8} met", "-" * 70]
    for key, (what, target, _) in TARGETS.items():
        value = results[key]
        met = {None: "-", True: "yes", False: "NO"}[results["targets_met"][key]]
        shown = "-" if value is None else f"{value:g}"
        lines.append(f"{what:<44} {shown:>10}  {target:<8} {met}")
    load = results.get("load") or {}
    if load:
        lines += [
            "",
            f"{'endpoint':<22} {'rps':>8} {'p50 ms':>8} {'p95 ms':>8} {'floor rps':>10} "
            f"{'floor p50':>10} {'floor p95':>10} {'p50 x':>6} {'duty p50':>9} {'x duty':>7} {'queries':>8}",
            "-" * 118,
        ]
        counts = (results.get("queries") or {}).get("endpoints", {})
        for name, row in load["endpoints"].items():
            api, floor, duty = row["api"], row["floor"], row.get("duty_floor", {})
            count = max((v["api"] for v in counts.get(name, {}).values()), default="")
            lines.append(
                f"{name:<22} {api['rps']:>8} {api['p50_ms']:>8.2f} {api['p95_ms']:>8.2f} {floor['rps']:>10} "
                f"{floor['p50_ms']:>10.2f} {floor['p95_ms']:>10.2f} {row['p50_ratio_to_floor']:>6} "
                f"{duty.get('p50_ms', '-'):>9} {row.get('p50_ratio_to_duty_floor', '-'):>7} {count:>8}"
            )
    suggestions = results.get("suggestions") or {}
    if suggestions.get("by_kind"):
        lines += [
            "",
            f"{'slot suggestions':<22} {'visits':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}  "
            f"{'queries/call':<14} answers",
            "-" * 100,
        ]
        rows = [*suggestions["by_kind"].items(), ("all", suggestions)]
        for name, row in rows:
            if not row.get("calls"):
                continue
            counts = ",".join(f"{n}x{q}" for q, n in row["queries_per_call"].items())
            answers = ", ".join(f"{k} {v}" for k, v in row["answers"].items())
            lines.append(
                f"{name:<22} {row.get('visits', ''):>7} {row['p50_ms']:>8.2f} {row['p95_ms']:>8.2f} "
                f"{row['max_ms']:>8.2f}  {counts:<14} {answers}"
            )
    race = results.get("race") or {}
    if race.get("racers"):
        lines += [
            "",
            f"race: {race['racers']} bookings for {race['places']} places in {race['slots']} slots: "
            f"{race['booked']} booked, {race['refused_slot_full']} refused slot_full, "
            f"other {race['other_outcomes'] or 'none'}; Slot.booked == visits held: "
            f"{race['slot_booked_equals_visits']}; wall {race['wall_ms']} ms",
        ]
    calls = results.get("calls") or {}
    if calls.get("call_list"):
        lines += [
            "",
            f"{'list (page of ' + str(calls['page']) + ')':<22} {'patients':>9} {'count ms':>9} "
            f"{'first ms':>9} {'deep ms':>8} {'at':>6} {'queries':>8}",
            "-" * 78,
        ]
        for name in ("call_list", "lost_to_follow_up"):
            row = calls[name]
            lines.append(
                f"{name:<22} {row['patients']:>9} {row['count']['median_ms']:>9} "
                f"{row['first_page']['median_ms']:>9} {row['deep_page']['median_ms']:>8} "
                f"{row['deep_page']['offset']:>6} {row['first_page']['queries']:>8}"
            )
    return "\n".join(lines)
