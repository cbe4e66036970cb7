"""Give the application's database role what the running app needs, and nothing more (issue 20).

Migrations run under the role that owns the tables; web, worker and beat run under another one that
owns nothing. An owner can drop or disable the audit trail's triggers and truncate it; this role
cannot: it may read and write every table, but only read and append to the audit trail, and never
change the schema.

Run it as the owner after every ``migrate`` (compose's migrate service does both). That, rather
than ``ALTER DEFAULT PRIVILEGES``, is how new tables reach the role: default privileges would give a
new table every right, where this command keeps the audit trail's exception in one place, and they
bind only to objects that the role which set them creates. Each run revokes what the role holds on
the schema's tables and sequences and grants it afresh, in one transaction, so it is idempotent and
also takes back anything granted by hand.

With ``--password-env NAME`` it also creates the role if it is missing (LOGIN, no other attribute)
and sets its password from that environment variable, so that the password never appears in a
command line. Without it, the role must exist already.
"""

import os

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from clinic.models import AuditEvent

# Read by Django's own checks (migrations pending?) and written only by ``migrate``, as the owner.
MIGRATIONS_TABLE = "django_migrations"


class Command(BaseCommand):
    help = "Grant a database role what the application needs (run as the tables' owner after migrate)."

    def add_arguments(self, parser):
        parser.add_argument("role", help="The role web, worker and beat connect as, e.g. hfs_app.")
        parser.add_argument(
            "--password-env",
            metavar="NAME",
            help="Create the role if missing and set its password from this environment variable.",
        )

    def handle(self, *args, role: str, password_env: str | None, **options):
        if connection.vendor != "postgresql":
            raise CommandError(
                f"{connection.vendor} has no database roles: the application and the migrations share one "
                "file and one user there. Use PostgreSQL to run the application under its own role."
            )
        password = _password_from(password_env)
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_schema(), current_database()")
            owner, schema, database = cursor.fetchone()
            if role == owner:
                raise CommandError(
                    f"{role} is the role running this command; the application needs a role of its own."
                )
            superuser = _is_superuser(cursor, role)
            if superuser is None and password is None:
                raise CommandError(f"No role {role}: create it (LOGIN) or pass --password-env to create it.")
            if superuser:
                raise CommandError(f"{role} is a superuser: no grant can hold it back.")
            if superuser is not None and _is_member(cursor, role, owner):
                raise CommandError(f"{role} is a member of {owner}, so it holds the owner's rights.")
            owned = _tables_owned_by(cursor, role, schema)
            if owned:
                raise CommandError(
                    f"{role} owns {', '.join(owned)}: the tables belong to the role that runs migrations."
                )
            if password is not None:
                _role_login(cursor, role, password, create=superuser is None)
            _grant(cursor, role=role, schema=schema, database=database)
            if _may_create_in(cursor, role, schema):
                # Before PostgreSQL 15 every role may create tables in ``public`` through PUBLIC.
                raise CommandError(
                    f"{role} may still create tables in {schema} (a grant to PUBLIC?): "
                    f"REVOKE CREATE ON SCHEMA {schema} FROM PUBLIC, then run this again."
                )
        self.stdout.write(f"{role} may now use {database} as the application (schema {schema}).")


def _password_from(name: str | None) -> str | None:
    if name is None:
        return None
    password = os.environ.get(name, "")
    if not password:
        raise CommandError(f"The environment variable {name} holds no password.")
    return password


def _is_superuser(cursor, role: str) -> bool | None:
    """Whether ``role`` is a superuser; None when there is no such role."""
    cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
    row = cursor.fetchone()
    return None if row is None else row[0]


def _is_member(cursor, role: str, owner: str) -> bool:
    cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [role, owner])
    return cursor.fetchone()[0]


def _may_create_in(cursor, role: str, schema: str) -> bool:
    cursor.execute("SELECT has_schema_privilege(%s, %s, 'CREATE')", [role, schema])
    return cursor.fetchone()[0]


def _tables_owned_by(cursor, role: str, schema: str) -> list[str]:
    cursor.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = %s AND tableowner = %s ORDER BY tablename",
        [schema, role],
    )
    return [name for (name,) in cursor.fetchall()]


def _role_login(cursor, role: str, password: str, *, create: bool) -> None:
    quoted = connection.ops.quote_name(role)
    if create:
        cursor.execute(f"CREATE ROLE {quoted} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT")
    # Django's PostgreSQL cursors bind parameters on the client, so a utility statement takes one.
    cursor.execute(f"ALTER ROLE {quoted} WITH LOGIN PASSWORD %s", [password])


def _grant(cursor, *, role: str, schema: str, database: str) -> None:
    quote = connection.ops.quote_name
    role, schema_name = quote(role), quote(schema)
    audit = quote(AuditEvent._meta.db_table)
    statements = [
        # Start from nothing: a rerun, or a grant made by hand, leaves no more than what follows.
        f"REVOKE ALL ON ALL TABLES IN SCHEMA {schema_name} FROM {role}",
        f"REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema_name} FROM {role}",
        f"REVOKE CREATE ON SCHEMA {schema_name} FROM {role}",
        f"GRANT CONNECT ON DATABASE {quote(database)} TO {role}",
        f"GRANT USAGE ON SCHEMA {schema_name} TO {role}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema_name} TO {role}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema_name} TO {role}",
        # The audit trail is read and appended to; its triggers refuse UPDATE, DELETE and TRUNCATE
        # to everyone, and without these rights the role is refused before it gets that far.
        f"REVOKE UPDATE, DELETE ON {audit} FROM {role}",
        f"REVOKE INSERT, UPDATE, DELETE ON {quote(MIGRATIONS_TABLE)} FROM {role}",
    ]
    for statement in statements:
        cursor.execute(statement)
