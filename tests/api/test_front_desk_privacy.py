"""The front desk books visits but never learns why they are due (issue 20): a visit's purpose
names its treatment, its treatment and its FHIR reason name the clinical record. Everywhere the
front desk reads visits (the API's visits and worklists, FHIR Appointment) those are left out;
the kind of clinic a visit needs stays. Clinicians, nurses and integrations read them as before."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from followups import services as follow_up
from followups.codes import VisitStatus
from followups.models import Visit
from tests.api.conftest import API
from tests.api.test_fhir import FHIR, assert_valid, search

CLINICAL_KEYS = {"purpose", "treatment"}


def _purposes(patient) -> set[str]:
    return set(Visit.objects.filter(patient=patient).values_list("purpose", flat=True))


def _visits_of(body: dict) -> list[dict]:
    return body["results"]


@pytest.fixture
def planned(patient_record):
    """The treatments' planned visits (ahead), and a check whose window closed last week unbooked."""
    patient = patient_record.patient
    follow_up.visit_create(
        patient=patient,
        treatment=patient_record.mvd,
        purpose="Facial nerve check after surgery",
        scheduled_for=timezone.now() - timedelta(days=7),
        status=VisitStatus.PLANNED,
    )
    purposes = _purposes(patient)
    assert len(purposes) > 1  # the treatments planned their visits, each named for what it follows
    return patient, purposes


def test_the_front_desk_reads_visits_without_their_purpose_or_treatment(front_desk, clinician, planned):
    patient, purposes = planned
    path = f"{API}visits/"

    seen = front_desk.get(path, {"patient": str(patient.uuid)})
    full = clinician.get(path, {"patient": str(patient.uuid)})

    assert seen.status_code == full.status_code == 200
    rows = _visits_of(seen.json())
    assert rows and all(CLINICAL_KEYS.isdisjoint(row) and row["visit_kind"] for row in rows)
    assert not any(purpose in seen.content.decode() for purpose in purposes)
    assert all(set(row) >= CLINICAL_KEYS for row in _visits_of(full.json()))
    one = front_desk.get(f"{API}visits/{rows[0]['id']}/").json()
    assert CLINICAL_KEYS.isdisjoint(one) and one["id"] == rows[0]["id"]


@pytest.mark.parametrize("worklist", ["due/?days=365", "overdue/"])
def test_the_front_desk_s_worklists_name_no_purpose(front_desk, nurse, planned, worklist):
    patient, purposes = planned

    seen = front_desk.get(f"{API}worklists/{worklist}")
    full = nurse.get(f"{API}worklists/{worklist}")

    assert seen.status_code == full.status_code == 200
    assert full.json()["results"], "the worklist should hold the patient's visits"
    assert all(CLINICAL_KEYS.isdisjoint(row["visit"]) for row in seen.json()["results"])
    assert all(set(row["visit"]) >= CLINICAL_KEYS for row in full.json()["results"])
    assert not any(purpose in seen.content.decode() for purpose in purposes)


def test_the_front_desk_s_appointments_carry_no_description_or_reason(front_desk, clinician, planned):
    patient, purposes = planned

    seen = [entry["resource"] for entry in search(front_desk, "Appointment", patient).get("entry", [])]
    full = [entry["resource"] for entry in search(clinician, "Appointment", patient).get("entry", [])]

    assert seen and len(seen) == len(full)
    for resource in seen:
        assert_valid(resource)
        assert "description" not in resource and "reasonReference" not in resource
    assert all("description" in resource for resource in full)
    assert any("reasonReference" in resource for resource in full)
    assert not any(purpose in json.dumps(seen) for purpose in purposes)
    read = front_desk.get(f"{FHIR}Appointment/{seen[0]['id']}", HTTP_ACCEPT="application/fhir+json")
    assert read.status_code == 200
    assert "description" not in read.json() and "reasonReference" not in read.json()
