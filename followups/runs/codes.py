"""The kinds of follow-up run and the states a run moves through (``followups.runs.closing``)."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class RunKind(models.TextChoices):
    NIGHTLY = "nightly", _("Nightly run")
    PROTOCOL = "protocol", _("Protocol re-applied")
    COMMAND = "command", _("Refresh from the command line")


class RunState(models.TextChoices):
    # running -> finished when its last chunk finishes (failed patients are counted, not a state);
    # a nightly run still running when the next day's starts -> superseded: the new run covers
    # its patients as of the new day.
    RUNNING = "running", _("Running")
    FINISHED = "finished", _("Finished")
    SUPERSEDED = "superseded", _("Superseded by the next night's run")
