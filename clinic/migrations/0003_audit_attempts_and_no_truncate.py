"""The audit trail records attempts too (logins, refusals), and refuses TRUNCATE (issue 20).

0002 made the table refuse UPDATE and DELETE; TRUNCATE fires neither, so an owner could still empty
it in one statement. PostgreSQL gets a statement-level BEFORE TRUNCATE trigger, which fires for
superusers too: only ``session_replication_role = replica`` (superusers only) or dropping or
disabling the trigger (the table's owner) passes it, and the application runs under a role that
owns nothing (``manage.py db_grant_app_role``). SQLite has no TRUNCATE: ``DELETE FROM`` is its only
way to empty a table, and 0002's trigger refuses that already.

Widening ``action`` (for ``login_failed``) makes SQLite rebuild the table, which drops its triggers:
they are put back after the rebuild, in both directions.
"""

from django.db import migrations, models

POSTGRES_NO_TRUNCATE = """
CREATE TRIGGER clinic_auditevent_no_truncate
    BEFORE TRUNCATE ON clinic_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION clinic_audit_append_only();
"""
POSTGRES_DROP = "DROP TRIGGER IF EXISTS clinic_auditevent_no_truncate ON clinic_auditevent;"
# The statements of 0002, which a migration cannot import (its module name starts with a digit).
SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER IF NOT EXISTS clinic_auditevent_no_update BEFORE UPDATE ON clinic_auditevent
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;""",
    """CREATE TRIGGER IF NOT EXISTS clinic_auditevent_no_delete BEFORE DELETE ON clinic_auditevent
       BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;""",
]


def sqlite_append_only(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_APPEND_ONLY:
            schema_editor.execute(statement)


def refuse_truncate(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_NO_TRUNCATE)


def allow_truncate(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_DROP)


class Migration(migrations.Migration):
    dependencies = [("clinic", "0002_roles_and_append_only_audit")]

    operations = [
        # Backwards, this runs last: after SQLite's rebuild back to the narrow column.
        migrations.RunPython(migrations.RunPython.noop, sqlite_append_only),
        migrations.AlterField(
            model_name="auditevent",
            name="action",
            field=models.CharField(
                choices=[
                    ("read", "Read"),
                    ("create", "Create"),
                    ("update", "Update"),
                    ("delete", "Delete or retract"),
                    ("login", "Log in"),
                    ("logout", "Log out"),
                    ("login_failed", "Failed login"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="actor",
            field=models.CharField(
                help_text=(
                    "The user name at the time (API clients: api:NAME), the name a failed login tried, "
                    "patient-link for a patient's signed link, or anonymous."
                ),
                max_length=150,
            ),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="channel",
            field=models.CharField(help_text="api, fhir, admin or patient (a patient's link)", max_length=8),
        ),
        migrations.RunPython(sqlite_append_only, migrations.RunPython.noop),
        migrations.RunPython(refuse_truncate, allow_truncate),
    ]
