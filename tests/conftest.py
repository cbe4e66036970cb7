import pytest

from tests.factories import PatientFactory, diagnosis_for


@pytest.fixture
def patient(db):
    return PatientFactory()


@pytest.fixture
def diagnosis(patient):
    return diagnosis_for(patient)
