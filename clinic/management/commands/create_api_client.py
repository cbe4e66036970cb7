"""``create_api_client NAME --role ROLE``: the key is the last line of the output (API.md)."""

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from clinic.api_clients import api_client_create
from clinic.roles import Role


class Command(BaseCommand):
    help = "Create an API client for another clinic system and print its key (shown only once)."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=Role.values)

    def handle(self, *args, name, role, **options):
        try:
            client, key = api_client_create(name=name, role=role)
        except ValidationError as error:
            raise CommandError(" ".join(error.messages)) from error
        self.stdout.write(f"API client '{client.name}' created with role {role}. Its key, shown only once:")
        self.stdout.write(key)
