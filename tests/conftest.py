from unittest import mock

import pytest
from django.conf import settings
from django.db import connection
from django.utils import translation

from followups.models import SessionTemplate
from tests.factories import PatientFactory, diagnosis_for, seeded_rows_restore


# A transactional test ends with Django emptying the test database in one TRUNCATE of every table,
# which the audit trail refuses (clinic migration 0003: append-only, TRUNCATE included). The test
# database's superuser passes the trigger for that one flush transaction with
# ``session_replication_role = replica``; the trigger stays in force for everything else, tests of
# it included (tests/audit/test_audit_table.py).
@pytest.fixture(autouse=True, scope="session")
def audit_trail_flushable():
    if connection.vendor != "postgresql":
        yield
        return
    operations = type(connection.ops)
    sql_flush = operations.sql_flush

    def flush_past_the_trigger(self, style, tables, **kwargs):
        statements = sql_flush(self, style, tables, **kwargs)
        # execute_sql_flush runs these in one transaction: SET LOCAL ends with it.
        return ["SET LOCAL session_replication_role = replica", *statements] if statements else statements

    with mock.patch.object(operations, "sql_flush", flush_past_the_trigger):
        yield


@pytest.fixture
def patient(db):
    return PatientFactory()


@pytest.fixture
def diagnosis(patient):
    return diagnosis_for(patient)


@pytest.fixture
def no_templates(db):
    """No session template: the migrations seed a default week, and a test that reads sessions
    makes its own so that it knows every one of them."""
    SessionTemplate.objects.all().delete()


@pytest.fixture(autouse=True)
def _default_language():
    # A request through LocaleMiddleware leaves its language active in the thread; each test
    # starts from the site's language so messages compare in English.
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture
def seeded_defaults(transactional_db):
    """The rows the migrations seed (default protocols, role groups), back after a transactional test.

    A transactional test empties every table when it ends, migration-seeded rows included; tests
    that commit (real processes, a live server) ask for this so they never depend on running first.
    """
    seeded_rows_restore()
