"""What the benchmark's parts share: the bench database guard, timing, waiting, ports, processes."""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"
VAR = ROOT / "var" / "bench"
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/hfs_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/9"


def database_url() -> str:
    return os.environ.get("BENCH_DATABASE_URL") or DEFAULT_DATABASE_URL


def redis_url() -> str:
    return os.environ.get("BENCH_REDIS_URL") or DEFAULT_REDIS_URL


def bench_environment() -> dict[str, str]:
    """The environment of every process of the benchmark: the bench database and Redis db, no DEBUG."""
    url = database_url()
    name = url.rsplit("/", 1)[-1].split("?", 1)[0]
    # The benchmark truncates tables: only ever in a database of its own, named as one
    # (hfs_bench, hfs_bench_*, or hfs_*_bench for a second copy beside it).
    if not (name.startswith("hfs_bench") or (name.startswith("hfs_") and name.endswith("_bench"))):
        raise SystemExit(
            f"BENCH_DATABASE_URL must name a database hfs_bench, hfs_bench_* or hfs_*_bench, not {name!r}."
        )
    return {
        "DATABASE_URL": url,
        "REDIS_URL": redis_url(),
        "CELERY_BROKER_URL": redis_url(),
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "false",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
    }


def setup_django() -> None:
    os.environ.update(bench_environment())
    import django

    django.setup()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, *, timeout: float, interval: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout}s waiting for {what}")


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples) * 1000, 3)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


class BackgroundProcess:
    """A server the benchmark runs (gunicorn, a Celery worker): a session of its own, so that it
    stops with its children; its output in a log; started once ``ready()`` says so."""

    what = "process"
    start_timeout = 30.0
    stop_timeout = 20.0

    def __init__(self, args: list[str], *, env: dict, log_path: Path, log_mode: str = "ab"):
        self.args, self.env, self.log_path, self.log_mode = args, env, log_path, log_mode
        self.process = None

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self):
        self._out = self.log_path.open(self.log_mode)
        self.process = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._started, timeout=self.start_timeout, interval=0.2, what=self.what)
        return self

    def _started(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.what} exited; see {self.log_path}")
        return self.ready()

    def stop(self):
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self._out.close()
