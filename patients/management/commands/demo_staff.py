"""Create (or reset) the demo staff login that `make run` prints: for the embedded demo only."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Create or reset the demo staff login and print it (refused in production)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="demo")

    def handle(self, *args, username, **options):
        if settings.IS_PRODUCTION:
            raise CommandError("The demo login is for development only; use createsuperuser.")
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=username)
        user.is_staff = True
        user.is_superuser = True
        user.set_password(password)
        user.save()
        self.stdout.write(
            f"Demo staff login for {settings.SITE_URL}/admin/ : username {username}, password {password}"
        )
