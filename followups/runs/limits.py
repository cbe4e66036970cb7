"""The sizes and times of follow-up runs: the ``FOLLOW_UP_*`` settings (clinic/settings.py says what
each means and checks that they fit together).

Read at each use, so a deployment's settings and a test's overrides apply alike; the task options
(time limits) are read once, when ``followups.tasks`` is imported.
"""

from django.conf import settings


def limit(name: str):
    return getattr(settings, name)
