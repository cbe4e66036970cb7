"""Real parts for the reminder fault tests: an SMTP sink, a throwaway Redis, Celery processes.

Each test runs with committed data (``transaction=True``) because the worker and beat are other
processes reading the test database.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def consenting_patient(mrn: str, n: int, group: str, family_name: str):
    """A patient who consents to e-mail reminders, at an address of its own: what every fault test
    of the reminders writes to, through the service."""
    from datetime import date

    from patients import services as record

    return record.patient_create(
        mrn=mrn,
        given_name=f"Pat{n}",
        family_name=family_name,
        date_of_birth=date(1970, 1, 1),
        sex="female",
        email=f"{group}{n}@patients.example",
        email_reminders=True,
    )


def wait_until(condition, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@dataclass
class SmtpSink:
    """An SMTP server on loopback that keeps every accepted message and can be told to refuse."""

    messages: list = field(default_factory=list)
    # A reply for the next DATA commands: None accepts (250), else e.g. "451 4.3.0 try later".
    reply: str | None = None
    # Per-recipient replies (address -> reply), checked before ``reply``.
    refuse: dict = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server, session, envelope):
        recipient = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        answer = self.refuse.get(recipient) or self.reply
        if answer:
            return answer
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def message_ids(self) -> Counter:
        with self.lock:
            return Counter(message["Message-ID"] for message in self.messages)


@pytest.fixture
def smtp_sink():
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    sink.port = controller.port
    yield sink
    controller.stop()


class RedisServer:
    """A throwaway redis-server on its own port, which a test may restart."""

    def __init__(self, port: int):
        self.port = port
        self.process = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(self._answers, timeout=10, what="redis-server")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def redis_server():
    server = RedisServer(free_port())
    server.start()
    yield server
    server.stop()


class CeleryProcess:
    """``celery worker`` or ``celery beat`` in a process of its own, logging to a file.

    ``supervised`` does what the Procfile's loop and compose's restart policy do in the product:
    a process that dies on its own (not stopped by the test) is started again.
    """

    def __init__(self, args: list[str], env: dict, log: Path, supervised: bool = False):
        self.args, self.env, self.log = args, env, log
        self.process = None
        self.restarts = 0
        self._stopping = threading.Event()
        if supervised:
            threading.Thread(target=self._supervise, daemon=True).start()

    def _supervise(self):
        while not self._stopping.wait(0.5):
            if self.process is not None and self.process.poll() is not None and not self._stopping.is_set():
                self.restarts += 1
                self._spawn()

    def start(self):
        self._out = self.log.open("ab")
        self._spawn()
        return self

    def _spawn(self):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "clinic", *self.args],
            cwd=ROOT,
            env=self.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self):
        """SIGKILL the whole process group: the main process and its pool children."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self):
        self._stopping.set()
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture
def celery_env(smtp_sink, redis_server):
    """The environment the worker and beat share with this test: same database, loopback mail."""
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://{}@{}:{}/{}".format(
            db["USER"], db["HOST"] or "127.0.0.1", db["PORT"] or 5432, db["NAME"]
        ),
        "REDIS_URL": redis_server.url,
        "CELERY_BROKER_URL": redis_server.url,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_sink.port}",
        "EMAIL_TIMEOUT": "2",
        "REMINDER_SWEEP_SECONDS": "0.5",
        "REMINDER_SEND_TIME_LIMIT": "3",
        "REMINDER_LEASE_SECONDS": "12",
        "REMINDER_RETRY_BASE_SECONDS": "1",
        "REMINDER_RETRY_MAX_SECONDS": "2",
        "REMINDER_BATCH_SIZE": "50",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("DJANGO_ENV", None)
    return env


@pytest.fixture
def celery_processes(celery_env, tmp_path):
    started = []

    def start(kind: str, *extra: str, supervised: bool = False) -> CeleryProcess:
        if kind == "worker":
            args = [
                "worker",
                "--concurrency",
                "2",
                "--loglevel",
                "INFO",
                "--without-mingle",
                "--without-gossip",
                *extra,
            ]
        else:
            args = ["beat", "--loglevel", "INFO", "--schedule", str(tmp_path / "beat-schedule"), *extra]
        log = tmp_path / f"{kind}-{len(started)}.log"
        process = CeleryProcess(args, celery_env, log, supervised=supervised).start()
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture(autouse=True)
def _default_protocols(seeded_defaults):
    pass


def duplicate_warnings(text: str) -> set[int]:
    """Reminder ids whose lease lapsed mid-send, as the sweeper logged them."""
    return {int(m) for m in re.findall(r"reminder (\d+): lease lapsed after a send task took it", text)}
