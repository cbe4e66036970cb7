import pytest
from django.conf import settings
from django.utils import translation

from followups.models import SessionTemplate
from tests.factories import PatientFactory, diagnosis_for, seeded_rows_restore


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
