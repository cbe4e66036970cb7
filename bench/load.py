"""Item 1: the API under load on loopback, each endpoint right beside its floor, in one gunicorn.

gunicorn runs ``clinic.wsgi`` with ``bench.settings`` (product URLs and floor views in the same
server) and the product's worker class, sync, as docker-compose.yml runs it: 2 workers, one per
core. A sync worker closes the connection after each response, so wrk reconnects for every
request, for the API and the floor alike (a few tens of microseconds on loopback). wrk runs one
thread with 4 connections (2 per core): the two workers stay busy and a request waits for at most
one other in the backlog, the same for the API and its floor. Each endpoint first gets a warm-up
(not measured), then the floor, the duty floor and the API are measured back to back for the same
duration; a Lua script cycles through the sampled patients and prints wrk's own latency percentiles.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path

from bench.common import VAR, BackgroundProcess, bench_environment, free_port, log
from bench.endpoints import ENDPOINTS

WORKERS = 2
CONNECTIONS = 4
LUA = """
local paths = {%(paths)s}
local i = 0
%(auth)s
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %%d, "duration_us": %%d, "errors": %%d, "non_2xx_3xx": %%d, ' ..
    '"p50_ms": %%.3f, "p95_ms": %%.3f, "p99_ms": %%.3f, "mean_ms": %%.3f, "max_ms": %%.3f}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.mean / 1000, latency.max / 1000))
end
"""


class Gunicorn(BackgroundProcess):
    what = "gunicorn"

    def __init__(self, port: int, log_path: Path):
        self.port = port
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "clinic.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WORKERS),
            "--worker-class",
            "sync",
            "--worker-tmp-dir",
            "/dev/shm",
            "--backlog",
            "64",
            "--log-level",
            "warning",
        ]
        super().__init__(args, env={**os.environ, **bench_environment()}, log_path=log_path)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as response:
                return response.status == 200
        except OSError:
            return False


def wrk(port: int, paths: list[str], *, seconds: float, key: str | None, script: Path) -> dict:
    auth = f'wrk.headers["Authorization"] = "Token {key}"' if key else ""
    script.write_text(LUA % {"paths": ", ".join(json.dumps(p) for p in paths), "auth": auth})
    out = subprocess.run(
        [
            "wrk",
            "--threads",
            "1",
            "--connections",
            str(CONNECTIONS),
            "--duration",
            f"{seconds:g}s",
            "--timeout",
            "10s",
            "--script",
            str(script),
            f"http://127.0.0.1:{port}",
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("BENCH_JSON "))
    result = json.loads(line.removeprefix("BENCH_JSON "))
    result["rps"] = round(result["requests"] / (result.pop("duration_us") / 1e6), 1)
    if result["errors"] or result["non_2xx_3xx"]:
        raise RuntimeError(f"wrk saw errors on {paths[0]}: {result}\n{out}")
    return result


def measure(*, key: str, patients: list[str], seconds: float, warmup: float) -> dict:
    VAR.mkdir(parents=True, exist_ok=True)
    server = Gunicorn(free_port(), VAR / "gunicorn.log").start()
    results = {
        "server": f"gunicorn sync, {WORKERS} workers",
        "load": f"wrk, 1 thread, {CONNECTIONS} connections, {seconds:g} s per run after {warmup:g} s warm-up",
        "endpoints": {},
    }
    try:
        for endpoint in ENDPOINTS:
            api_paths = endpoint.paths(endpoint.api, patients)
            floor_paths = endpoint.paths(endpoint.floor, patients)
            duty_paths = endpoint.paths(endpoint.duty_floor, patients)
            script = VAR / f"wrk-{endpoint.name}.lua"
            wrk(server.port, api_paths, seconds=warmup, key=key, script=script)
            wrk(server.port, floor_paths, seconds=warmup, key=None, script=script)
            floor = wrk(server.port, floor_paths, seconds=seconds, key=None, script=script)
            duty_floor = wrk(server.port, duty_paths, seconds=seconds, key=key, script=script)
            api = wrk(server.port, api_paths, seconds=seconds, key=key, script=script)
            row = {
                "is_list": endpoint.is_list,
                "api": api,
                "floor": floor,
                "duty_floor": duty_floor,
                "p50_ratio_to_floor": round(api["p50_ms"] / floor["p50_ms"], 2),
                "p95_ratio_to_floor": round(api["p95_ms"] / floor["p95_ms"], 2),
                "p50_ratio_to_duty_floor": round(api["p50_ms"] / duty_floor["p50_ms"], 2),
            }
            results["endpoints"][endpoint.name] = row
            log(
                f"load {endpoint.name}: api {api['rps']} rps p50 {api['p50_ms']} ms p95 {api['p95_ms']} ms; "
                f"floor {floor['rps']} rps p50 {floor['p50_ms']} ms; ratio {row['p50_ratio_to_floor']}; "
                f"duty floor p50 {duty_floor['p50_ms']} ms; ratio {row['p50_ratio_to_duty_floor']}"
            )
    finally:
        server.stop()
    lists = [row for row in results["endpoints"].values() if row["is_list"]]
    results["list_latency_ratio_to_floor"] = max(row["p50_ratio_to_floor"] for row in lists)
    results["list_latency_ratio_to_duty_floor"] = max(row["p50_ratio_to_duty_floor"] for row in lists)
    return results
