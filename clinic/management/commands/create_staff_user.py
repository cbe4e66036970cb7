"""``create_staff_user NAME --role ROLE [--password P] [--email E] [--update]``: a staff-panel login.

The password is never printed nor logged. Without ``--password`` (which a shell's history and the
process list can see) it is asked twice at a terminal, or else read from ``STAFF_USER_PASSWORD``
(for scripts and containers); with neither, the command refuses rather than make a login nobody
knows the password of. Django's password validators (``AUTH_PASSWORD_VALIDATORS``) judge it.

Only the roles of people at the panel are offered: ``integration_read`` and ``lab`` are the roles of
other clinic systems, which sign in with an API key (``create_api_client``), not a password.

``--update`` changes an existing staff user instead: their role (their other groups stay) and, if a
password is given, their password; without ``--update`` an existing NAME is refused.
"""

import getpass
import os
import sys

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.db import transaction

from clinic.roles import Role, group_for

PANEL_ROLES = (Role.CLINICIAN, Role.NURSE, Role.FRONT_DESK)
PASSWORD_VARIABLE = "STAFF_USER_PASSWORD"


class Command(BaseCommand):
    help = (
        "Create a staff-panel user in a role (clinician, nurse or front_desk). The password is asked "
        f"at a terminal, else read from {PASSWORD_VARIABLE}; --password works too but shows in the "
        "shell's history. --update changes an existing staff user's role (and password, if given)."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="the username the person signs in with")
        parser.add_argument("--role", required=True, help=f"one of: {', '.join(PANEL_ROLES)}")
        parser.add_argument("--password", help=f"prefer the prompt or {PASSWORD_VARIABLE}")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--update", action="store_true", help="change an existing staff user's role and password"
        )

    def handle(self, *args, name, role, password, email, update, **options):
        role = panel_role(role)
        User = get_user_model()
        user = User.objects.filter(username=name).first()
        if user is None and update:
            raise CommandError(f"There is no user '{name}' to update; leave out --update to create one.")
        if user is not None and not update:
            raise CommandError(
                f"A user '{name}' exists already. Choose another name, or give --update to change "
                "their role and password."
            )
        if user is not None and (user.is_superuser or not user.is_staff):
            what = "a superuser (a clinician everywhere)" if user.is_superuser else "not a staff user"
            raise CommandError(f"'{name}' is {what}; change them in the panel, not with this command.")
        if user is None:
            user = User(username=name, is_staff=True)
            username_check(user)
        if email:
            try:
                validate_email(email)
            except ValidationError as error:
                raise CommandError(f"--email: {' '.join(error.messages)}") from error
            user.email = email

        password = password if password is not None else self.password_asked(keep_allowed=update)
        if password is not None:
            try:
                password_validation.validate_password(password, user)
            except ValidationError as error:
                raise CommandError("The password is refused: " + " ".join(error.messages)) from error
            user.set_password(password)

        with transaction.atomic():
            user.save()
            user.groups.remove(*user.groups.filter(name__in=Role.values))
            user.groups.add(group_for(role))
        done = "updated" if update else "created"
        self.stdout.write(f"Staff user '{name}' {done} in role {role.label}; they sign in at /admin/.")

    def password_asked(self, *, keep_allowed: bool) -> str | None:
        """The password from the terminal or the environment; ``None`` keeps the current one (an
        update only)."""
        if sys.stdin.isatty():
            keep = " (empty keeps the current one)" if keep_allowed else ""
            first = getpass.getpass(f"Password{keep}: ")
            if not first and keep_allowed:
                return None
            if getpass.getpass("Password (again): ") != first:
                raise CommandError("The two passwords differ; nothing was changed.")
            return first
        if PASSWORD_VARIABLE in os.environ:
            return os.environ[PASSWORD_VARIABLE]
        if keep_allowed:
            return None
        raise CommandError(
            f"No password: run this at a terminal to be asked for one, or set {PASSWORD_VARIABLE} "
            "(or give --password)."
        )


def panel_role(value: str) -> Role:
    if value in PANEL_ROLES:
        return Role(value)
    if value in Role.values:
        raise CommandError(
            f"'{value}' is a role for other clinic systems, which use the API with a key, not the staff "
            f"panel: python manage.py create_api_client NAME --role {value}"
        )
    raise CommandError(f"Unknown role '{value}'. Staff roles: {', '.join(PANEL_ROLES)}.")


def username_check(user) -> None:
    try:
        user.clean_fields(exclude=[field.name for field in user._meta.fields if field.name != "username"])
    except ValidationError as error:
        raise CommandError(f"NAME: {' '.join(error.messages)}") from error
