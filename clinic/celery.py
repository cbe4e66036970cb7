"""The Celery app shared by every app's ``tasks.py``.

Tasks take ids only, never patient data, and the scheduled work is a handful of static beat
entries that poll the database (ARCHITECTURE.md): a lost message only delays, never loses.
"""

import os

from celery import Celery
from celery.signals import task_prerun
from django.db import close_old_connections

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")

app = Celery("clinic")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_configure.connect
def _make_filesystem_broker_folders(sender, **kwargs):
    # The embedded file-system broker needs its folders before the first message.
    options = sender.conf.broker_transport_options or {}
    for key in ("data_folder_in", "data_folder_out", "processed_folder", "control_folder"):
        if options.get(key):
            os.makedirs(options[key], exist_ok=True)


@task_prerun.connect
def _drop_stale_database_connections(task=None, **kwargs):
    # With CELERY_DB_REUSE_MAX the fixup keeps connections between tasks; like Django between
    # requests, close one that errored or outlived CONN_MAX_AGE, and let the health check probe
    # the rest on first use. An eager task runs inside its caller's transaction: leave it alone.
    if task is not None and getattr(task.request, "is_eager", False):
        return
    close_old_connections()
