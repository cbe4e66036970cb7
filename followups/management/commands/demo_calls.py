"""Record a morning of the front desk's calls on the demo's call list (``make run``)."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from followups.calls.demo import demo_calls_record


class Command(BaseCommand):
    help = "Record the demo's first calls on the call list, once (refused in production)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo", help="The staff user who made the calls.")

    def handle(self, *args, username, **options):
        if settings.IS_PRODUCTION:
            raise CommandError("Demo calls are for development only.")
        by = get_user_model().objects.filter(username=username).first()
        recorded = demo_calls_record(by=by)
        self.stdout.write(f"Recorded {recorded} demo calls on the call list.")
