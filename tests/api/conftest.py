"""Fixtures for the API tests: a token client per role, and a small clinical record to read.

``api_as(role)`` creates an API client in ``role`` through ``api_client_create`` (so the key is
hashed and the user sits in the role's group exactly as in production) and answers a DRF
``APIClient`` that sends ``Authorization: Token <key>`` on every request. The client carries its
``api_client`` (the ``ApiClient`` row) and ``key`` for tests that need them.

``patient_record`` is one patient with a diagnosis, an imaging study and a treatment of each kind
with details, all made through the services; ``*_body()`` build request bodies the services accept.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from django.core.cache import cache
from rest_framework.test import APIClient

from clinic.api_clients import api_client_create
from clinic.roles import Role
from patients import codes
from patients.models import Diagnosis, ImagingStudy, Patient, Treatment
from patients.services import imaging_study_record
from tests.factories import PatientFactory, diagnosis_for, treatment_for

API = "/api/v1/"
ROLES = tuple(Role)
_names = itertools.count(1)


def token_client(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def api_as(db):
    """``api_as(role, name=None)``: an ``APIClient`` authenticated as a new API client in ``role``.

    The throttle counter of the new client's user is cleared first: user ids restart with every
    test database, while the shared Redis cache keeps counters from earlier runs.
    """

    def make(role: Role | str, name: str | None = None) -> APIClient:
        role = Role(role)
        api_client, key = api_client_create(name=name or f"{role.value}-{next(_names)}", role=role.value)
        cache.delete_many([f"throttle_{scope}_window_{api_client.user_id}" for scope in ("client", "schema")])
        client = token_client(key)
        client.api_client = api_client
        client.key = key
        return client

    return make


@pytest.fixture
def clinician(api_as):
    return api_as(Role.CLINICIAN)


@pytest.fixture
def nurse(api_as):
    return api_as(Role.NURSE)


@pytest.fixture
def front_desk(api_as):
    return api_as(Role.FRONT_DESK)


@pytest.fixture
def integration(api_as):
    return api_as(Role.INTEGRATION_READ)


@pytest.fixture
def anonymous():
    return APIClient()


@dataclass
class PatientRecord:
    patient: Patient
    diagnosis: Diagnosis
    imaging_study: ImagingStudy
    medication: Treatment
    toxin: Treatment
    mvd: Treatment


@pytest.fixture
def patient_record(db) -> PatientRecord:
    """A patient with one record of every kind: a diagnosis, an MRI, and a treatment of each detail."""
    patient = PatientFactory(at_risk_hla_b1502=True, hla_b1502_result=codes.HlaB1502Result.NEGATIVE)
    diagnosis = diagnosis_for(patient, onset_date=diagnosis_date(-200))
    study = imaging_study_record(
        patient=patient,
        diagnosis=diagnosis,
        performed_on=diagnosis_date(-10),
        modality=codes.ImagingModality.MRI,
        field_strength_tesla="3.0",
        compression_found=codes.CompressionFound.YES,
        sequences=[codes.ImagingSequence.CISS, codes.ImagingSequence.TOF_MRA],
        offending_vessels=[codes.Vessel.AICA],
        report="AICA loop at the root exit zone.",
    )
    return PatientRecord(
        patient=patient,
        diagnosis=diagnosis,
        imaging_study=study,
        medication=treatment_for(diagnosis, codes.TreatmentKind.MEDICATION),
        toxin=treatment_for(diagnosis, codes.TreatmentKind.BOTULINUM_TOXIN),
        mvd=treatment_for(diagnosis, codes.TreatmentKind.MVD),
    )


def diagnosis_date(offset_days: int):
    """A date ``offset_days`` from the factories' diagnosis date (2023-03-01)."""
    return date(2023, 3, 1) + timedelta(days=offset_days)


# --- request bodies that the services accept ------------------------------------------------------


def patient_body(**overrides) -> dict:
    body = {
        "mrn": f"API{next(_names):06d}",
        "given_name": "Ada",
        "family_name": "Lovelace",
        "date_of_birth": "1970-02-03",
        "sex": "female",
        "email": "ada@patients.example",
    }
    body.update(overrides)
    return body


def diagnosis_body(patient: Patient, **overrides) -> dict:
    body = {
        "patient": str(patient.uuid),
        "kind": "primary",
        "side": "right",
        "diagnosed_on": "2023-06-01",
        "muscles": ["orbicularis_oculi"],
    }
    body.update(overrides)
    return body


def imaging_body(patient: Patient, **overrides) -> dict:
    body = {"patient": str(patient.uuid), "performed_on": "2023-05-20", "modality": "mri"}
    body.update(overrides)
    return body


def medication_body(diagnosis: Diagnosis, **overrides) -> dict:
    body = {
        "patient": str(diagnosis.patient.uuid),
        "diagnosis": str(diagnosis.uuid),
        "kind": "medication",
        "started_on": "2024-03-01",
        "medication": {"drug": "clonazepam", "daily_dose_mg": "1.5"},
    }
    body.update(overrides)
    return body
