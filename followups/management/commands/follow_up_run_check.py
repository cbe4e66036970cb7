"""Whether last night's follow-up run finished, for a container health check or monitoring.

Exits 0 with one line when it did (or is running within its time), 1 with one line saying why
when it did not: none started for the clinic day, still running past FOLLOW_UP_RUN_MAX_MINUTES,
or patients whose refresh failed. ``--run ID`` tells how far any one run got instead.
"""

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum

from followups.models import FollowUpRun
from followups.runs.health import nightly_run_health


class Command(BaseCommand):
    help = "Exit non-zero, with the reason, when the last nightly follow-up run did not finish."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, metavar="ID", help="Show how far this run got.")

    def handle(self, *args, run, **options):
        if run is not None:
            found = FollowUpRun.objects.filter(pk=run).first()
            if found is None:
                raise CommandError(f"No follow-up run {run}.")
            reached = found.chunks.aggregate(total=Sum("position"))["total"] or 0
            self.stdout.write(
                f"{found}: {reached} of {found.patients} patients reached, {found.done} done "
                f"and {found.failed} failed in finished chunks"
            )
            return
        health = nightly_run_health()
        if not health.ok:
            raise CommandError(health.reason)
        self.stdout.write(health.reason)
