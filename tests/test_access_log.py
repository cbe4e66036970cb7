"""Request lines in the logs carry no query string and no patient link's token (issue 20: MRNs and
family names reached the web server's access log through the staff's searches).

gunicorn is started for real with the project's config (``python:clinic.gunicorn``), on the
embedded SQLite defaults, and its access log read; the development server's request lines go
through the ``django.server`` logger and its filter.
"""

import contextlib
import logging
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.smoke import ROOT, environment

SEARCH = "/admin/patients/patient/?q=Mustermann&mrn=MRN0012345"
TOKEN = "AbCdEf123456.signed-part"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def gunicorn_log(tmp_path) -> Path:
    port, log = free_port(), tmp_path / "access.log"
    env = environment(VAR_DIR=str(tmp_path / "var"), PORT=str(port))
    with log.open("w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "clinic.wsgi:application", "-c", "python:clinic.gunicorn"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=2)
                break
            except OSError:
                time.sleep(0.2)
        for path in (SEARCH, f"/p/visit/{TOKEN}/?from=mail", "/healthz?patient=MRN0012345"):
            # A redirect to the login or a 404: the log line is what counts.
            with contextlib.suppress(urllib.error.HTTPError):
                urllib.request.urlopen(base + path, timeout=10)
        time.sleep(0.5)  # the access log is written after each response
    finally:
        server.terminate()
        server.wait(timeout=20)
    return log


def test_gunicorn_logs_paths_without_query_strings_or_link_tokens(gunicorn_log):
    lines = [line for line in gunicorn_log.read_text().splitlines() if '"GET ' in line]

    assert any('"GET /admin/patients/patient/ HTTP/1.1" 302' in line for line in lines), lines
    assert any('"GET /p/visit/[token]/ HTTP/1.1"' in line for line in lines), lines
    text = "\n".join(lines)
    for secret in ("Mustermann", "MRN0012345", TOKEN, "from=mail", "?"):
        assert secret not in text


def test_the_development_server_s_request_lines_hide_queries_and_tokens(caplog):
    logger = logging.getLogger("django.server")
    with caplog.at_level(logging.INFO, logger="django.server"):
        logger.info('"%s" %s %s', f"GET {SEARCH} HTTP/1.1", 200, 5120)
        logger.info('"%s" %s %s', f"GET /p/rebook/{TOKEN}/?lang=de HTTP/1.1", 200, 880)

    messages = [record.getMessage() for record in caplog.records]
    assert messages == [
        '"GET /admin/patients/patient/?[query] HTTP/1.1" 200 5120',
        '"GET /p/rebook/[token]/?[query] HTTP/1.1" 200 880',
    ]
