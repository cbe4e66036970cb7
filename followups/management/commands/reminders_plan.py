"""Plan the reminders of visits written in bulk (an import, a restore, the demo seed).

Those writes skip the services, so their visits have no reminder rows; this inserts the missing
ones and leaves every existing row as it is, so running it again inserts nothing.
"""

import time

from django.core.management.base import BaseCommand

from followups.reminders import reminders_plan_bulk


class Command(BaseCommand):
    help = "Plan the reminders of visits written in bulk; rows that exist are left as they are."

    def handle(self, *args, **options):
        started = time.perf_counter()
        inserted = reminders_plan_bulk()
        # A count only: the output ends up in deployment logs, which carry no patient data.
        self.stdout.write(f"Planned {inserted} reminders in {time.perf_counter() - started:.1f} s.")
