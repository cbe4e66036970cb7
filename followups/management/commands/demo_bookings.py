"""Give the demo's upcoming appointments a place in the clinic's sessions (``make run``)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from followups.demo_bookings import demo_bookings_into_slots


class Command(BaseCommand):
    help = (
        "Move the demo's upcoming booked visits into slots of the clinic's sessions (refused in production)."
    )

    def handle(self, *args, **options):
        if settings.IS_PRODUCTION:
            raise CommandError("Demo bookings are for development only.")
        placed, left = demo_bookings_into_slots()
        self.stdout.write(f"Placed {placed} upcoming appointments in slots; {left} left at their own time.")
