"""``manage.py db_grant_app_role``: the application's role reads and writes, never rewrites the trail.

The role is created here, granted by the command as the owner would after ``migrate`` (committed:
these are transactional tests), and then used for real over a connection of its own. Whatever that
connection writes is rolled back; teardown drops the role and what was granted to it.
"""

import os
import uuid

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import errors, sql

from clinic.models import AuditEvent
from patients.models import Patient
from tests.factories import PatientFactory

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="roles exist on PostgreSQL only"),
    pytest.mark.django_db(transaction=True),
]


def owner_connection() -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        dbname=settings["NAME"],
        autocommit=True,
    )


def role_drop(role: str) -> None:
    with owner_connection() as owner:
        exists = owner.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        if exists:
            name = sql.Identifier(role)
            owner.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(name))
            owner.execute(sql.SQL("DROP OWNED BY {}").format(name))
            owner.execute(sql.SQL("DROP ROLE {}").format(name))


@pytest.fixture
def role_name():
    role = f"hfs_app_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    yield role
    role_drop(role)


@pytest.fixture
def app_role(role_name):
    with owner_connection() as owner:
        owner.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role_name)))
    call_command("db_grant_app_role", role_name)
    return role_name


def as_role(role: str) -> psycopg.Connection:
    settings = connection.settings_dict
    return psycopg.connect(
        host=settings["HOST"] or "127.0.0.1",
        port=settings["PORT"] or 5432,
        user=role,
        dbname=settings["NAME"],
    )


def run(app: psycopg.Connection, statement, params=()):
    """One statement in a transaction of its own, rolled back: nothing the role does is kept."""
    try:
        cursor = app.execute(statement, params)
        return cursor.fetchall() if cursor.description else cursor.rowcount
    finally:
        app.rollback()


AUDIT_INSERT = (
    "INSERT INTO clinic_auditevent (at, actor, channel, action, resource, object_id, method, path, status) "
    "VALUES (now(), 'app', 'api', 'read', 'patient', '', 'GET', '/api/v1/patients/', 200) RETURNING id"
)


def patient_insert() -> tuple[str, list]:
    """An INSERT of a whole patient row, with the values Django would write for a new patient."""
    patient = PatientFactory.build()
    fields = [f for f in Patient._meta.concrete_fields if not f.primary_key]
    values = [f.get_db_prep_save(f.pre_save(patient, add=True), connection) for f in fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO patients_patient ({columns}) VALUES ({placeholders}) RETURNING uuid", values


def test_the_app_role_reads_and_writes_records_and_appends_to_the_trail(app_role):
    with as_role(app_role) as app:
        statement, values = patient_insert()
        assert len(run(app, statement, values)) == 1
        assert run(app, "SELECT count(*) FROM patients_patient") == [(0,)]  # the insert was rolled back
        assert run(app, "UPDATE patients_patient SET phone = phone WHERE false") == 0
        assert run(app, "DELETE FROM patients_historicalpatient WHERE false") == 0
        assert len(run(app, AUDIT_INSERT)) == 1
        assert run(app, "SELECT count(*) FROM clinic_auditevent") == [(0,)]
        assert run(app, "SELECT count(*) FROM django_migrations")[0][0] > 0


REFUSED = (
    "UPDATE clinic_auditevent SET actor = 'someone else'",
    "DELETE FROM clinic_auditevent",
    "TRUNCATE clinic_auditevent",
    "ALTER TABLE clinic_auditevent DISABLE TRIGGER clinic_auditevent_append_only",
    "DROP TRIGGER clinic_auditevent_no_truncate ON clinic_auditevent",
    "DROP TABLE clinic_auditevent",
    "DROP TABLE patients_patient",
    "TRUNCATE patients_patient CASCADE",
    "CREATE TABLE public.scratch (id int)",
    "DELETE FROM django_migrations",
)


def test_the_app_role_may_not_rewrite_the_trail_nor_change_the_schema(app_role):
    with as_role(app_role) as app:
        for statement in REFUSED:
            with pytest.raises(errors.InsufficientPrivilege):
                run(app, statement)
                pytest.fail(f"the app role ran: {statement}")


def test_a_rerun_grants_the_same_and_takes_back_a_grant_made_by_hand(app_role):
    with owner_connection() as owner:
        owner.execute(sql.SQL("GRANT ALL ON clinic_auditevent TO {}").format(sql.Identifier(app_role)))

    call_command("db_grant_app_role", app_role)
    call_command("db_grant_app_role", app_role)

    with owner_connection() as owner:
        rights = owner.execute(
            "SELECT privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee = %s AND table_name = %s ORDER BY 1",
            [app_role, AuditEvent._meta.db_table],
        ).fetchall()
    assert [right for (right,) in rights] == ["INSERT", "SELECT"]
    with as_role(app_role) as app, pytest.raises(errors.InsufficientPrivilege):
        run(app, "TRUNCATE clinic_auditevent")


def test_a_table_made_by_a_later_migration_is_granted_by_the_next_run(app_role):
    with owner_connection() as owner:
        owner.execute("CREATE TABLE audit_role_later (id int)")
    try:
        with as_role(app_role) as app, pytest.raises(errors.InsufficientPrivilege):
            run(app, "SELECT * FROM audit_role_later")
        call_command("db_grant_app_role", app_role)
        with as_role(app_role) as app:
            assert run(app, "SELECT * FROM audit_role_later") == []
    finally:
        with owner_connection() as owner:
            owner.execute("DROP TABLE audit_role_later")


def test_with_a_password_variable_the_command_creates_the_role(role_name, monkeypatch):
    monkeypatch.setenv("APP_DB_PASSWORD", "a-long-random-password")

    call_command("db_grant_app_role", role_name, password_env="APP_DB_PASSWORD")
    call_command("db_grant_app_role", role_name, password_env="APP_DB_PASSWORD")

    with owner_connection() as owner:
        row = owner.execute(
            "SELECT rolcanlogin, rolsuper, rolcreaterole, rolcreatedb, rolpassword IS NOT NULL "
            "FROM pg_authid WHERE rolname = %s",
            [role_name],
        ).fetchone()
    assert row == (True, False, False, False, True)
    with as_role(role_name) as app:
        assert len(run(app, AUDIT_INSERT)) == 1


def test_the_command_refuses_what_would_not_hold(role_name, monkeypatch):
    owner = connection.settings_dict["USER"]
    with pytest.raises(CommandError, match="No role"):
        call_command("db_grant_app_role", role_name)
    with pytest.raises(CommandError, match="role running this command"):
        call_command("db_grant_app_role", owner)
    monkeypatch.setenv("EMPTY_PASSWORD", "")
    with pytest.raises(CommandError, match="holds no password"):
        call_command("db_grant_app_role", role_name, password_env="EMPTY_PASSWORD")

    with owner_connection() as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN SUPERUSER").format(sql.Identifier(role_name)))
    with pytest.raises(CommandError, match="superuser"):
        call_command("db_grant_app_role", role_name)

    with owner_connection() as admin:
        admin.execute(sql.SQL("ALTER ROLE {} NOSUPERUSER").format(sql.Identifier(role_name)))
        admin.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(owner), sql.Identifier(role_name)))
    with pytest.raises(CommandError, match="member of"):
        call_command("db_grant_app_role", role_name)


def test_sqlite_has_no_roles_and_the_command_says_so(monkeypatch):
    monkeypatch.setattr(connection, "vendor", "sqlite")
    with pytest.raises(CommandError, match="sqlite has no database roles"):
        call_command("db_grant_app_role", "hfs_app")
