"""The audit trail cannot be emptied: TRUNCATE is refused in the database, superusers included."""

import pytest
from django.db import DatabaseError, connection, transaction

from clinic.models import AuditEvent

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="SQLite has no TRUNCATE; DELETE is refused by 0002"
)


def recorded(**fields) -> AuditEvent:
    defaults = {"actor": "someone", "channel": "api", "action": "read", "resource": "patient"}
    return AuditEvent.objects.create(**defaults, method="GET", path="/api/v1/patients/", status=200, **fields)


def test_truncate_is_refused_even_for_a_superuser_that_owns_the_table(db):
    event = recorded()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolsuper, pg_get_userbyid(relowner) = current_user FROM pg_roles, pg_class "
            "WHERE rolname = current_user AND relname = 'clinic_auditevent'"
        )
        assert cursor.fetchone() == (True, True)  # the strongest role there is: triggers still fire

    for statement in ("TRUNCATE clinic_auditevent", "TRUNCATE clinic_auditevent RESTART IDENTITY CASCADE"):
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)

    assert list(AuditEvent.objects.all()) == [event]


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_still_ends_and_leaves_the_trigger_in_force():
    """This test's own end is a flush past the trigger (conftest); the trigger holds meanwhile."""
    recorded()
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute("TRUNCATE clinic_auditevent")
    assert AuditEvent.objects.count() == 1
