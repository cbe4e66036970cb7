import pytest
from django.conf import settings
from django.utils import translation

from tests.factories import PatientFactory, diagnosis_for


@pytest.fixture
def patient(db):
    return PatientFactory()


@pytest.fixture
def diagnosis(patient):
    return diagnosis_for(patient)


@pytest.fixture(autouse=True)
def _default_language():
    # A request through LocaleMiddleware leaves its language active in the thread; each test
    # starts from the site's language so messages compare in English.
    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)
