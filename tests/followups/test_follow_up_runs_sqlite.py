"""The nightly run on the embedded defaults that `make run` uses: SQLite under VAR_DIR, the
file-system broker and a worker of two processes (the Procfile's), no service installed.

SQLite has no row locks: the chunks' claims are conditional UPDATEs and its IMMEDIATE transactions
let one writer in at a time, so two worker processes still share the run without a chunk taken
twice or a patient left out.
"""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.smoke import ROOT, environment, manage, run

pytestmark = pytest.mark.slow

PATIENTS = 24
LOG_LEVEL = ["--loglevel", "INFO"]

# Seeds patients, deletes their flags (a refresh raises each one's "no MRI" flag again), sends
# the nightly task through the broker as beat would, and waits for its run to finish.
NIGHTLY_THROUGH_THE_WORKER = f"""
import json, os, sys, time
sys.path.insert(0, os.getcwd())
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
import django
django.setup()
from clinic.celery import app
from followups.models import FollowUpRun, FollowUpRunChunk, PatientFlag
from tests.factories import PatientFactory, diagnosis_for

ids = [diagnosis_for(PatientFactory()).patient_id for _ in range({PATIENTS})]
PatientFlag.objects.all().delete()
app.send_task("followups.daily")
deadline = time.monotonic() + 60
while time.monotonic() < deadline and not FollowUpRun.objects.filter(state="finished").exists():
    time.sleep(0.5)
run = FollowUpRun.objects.get()
chunks = FollowUpRunChunk.objects.filter(run=run)
print(json.dumps({{
    "run": [run.kind, run.state, run.patients, run.done, run.failed],
    "chunks": [len(chunks), sorted(i for c in chunks for i in c.patient_ids) == sorted(ids)],
    "flagged": PatientFlag.objects.filter(patient_id__in=ids, code="imaging_missing").count(),
}}))
"""


def test_the_nightly_run_goes_through_the_file_system_broker_to_a_worker_on_sqlite(tmp_path):
    env = environment(
        VAR_DIR=tmp_path / "var",
        FOLLOW_UP_CHUNK_SIZE="5",
    )
    migrated = manage("migrate", "--noinput", env=env)
    assert migrated.returncode == 0, migrated.stderr
    log = (tmp_path / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "clinic", "worker", "--concurrency", "2", *LOG_LEVEL],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        flow = run([sys.executable, "-c", NIGHTLY_THROUGH_THE_WORKER], env, timeout=120)
    finally:
        # A warm shutdown asked of the main process only (its pool children follow it); should it
        # hang (seen with the file-system broker), the whole group goes, never left running.
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)
        log.close()
    assert flow.returncode == 0, flow.stderr

    summary = json.loads(flow.stdout.strip().splitlines()[-1])
    assert summary == {
        "run": ["nightly", "finished", PATIENTS, PATIENTS, 0],
        "chunks": [PATIENTS // 5 + 1, True],
        "flagged": PATIENTS,
    }, (tmp_path / "worker.log").read_text()[-3000:]
