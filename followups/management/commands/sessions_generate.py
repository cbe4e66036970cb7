"""Generate the clinic's dated sessions and slots 26 weeks ahead from its session templates
(what beat does nightly); sessions that exist are left as they are."""

from django.core.management.base import BaseCommand

from followups.booking import sessions_generate


class Command(BaseCommand):
    help = "Generate the dated clinic sessions of the next 26 weeks; existing ones are kept."

    def handle(self, *args, **options):
        self.stdout.write(f"Generated {sessions_generate()} clinic sessions.")
