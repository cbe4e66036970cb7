"""Every list of rows that belong to a patient is searched as the patient list is (issue 16): a
phone typed in another formatting, or part of the MRN, finds that patient's rows and no other's."""

import pytest

from tests.factories import PatientFactory, diagnosis_for, treatment_for

LISTS = {
    "patients/diagnosis": lambda row: row.patient_id,
    "patients/imagingstudy": lambda row: row.patient_id,
    "patients/treatment": lambda row: row.patient_id,
    "patients/medicationdetail": lambda row: row.treatment.patient_id,
    "followups/visit": lambda row: row.patient_id,
    "followups/assessment": lambda row: row.patient_id,
    "followups/labresult": lambda row: row.patient_id,
    "followups/treatmentoutcome": lambda row: row.treatment.patient_id,
    "followups/patientflag": lambda row: row.patient_id,
    "followups/reminder": lambda row: row.visit.patient_id,
}


@pytest.fixture
def neighbour(db, today):
    """Another patient with rows in every list, whose phone and MRN share nothing with the planted one."""
    patient = PatientFactory(email_reminders=True, phone="+44 20 7946 0000", mrn="ZZ-998877")
    diagnosis = diagnosis_for(patient, diagnosed_on=today.replace(year=today.year - 1))
    treatment_for(diagnosis, "medication", started_on=today.replace(year=today.year - 1))
    return patient


@pytest.mark.parametrize("changelist", sorted(LISTS))
@pytest.mark.parametrize("term", ["+49 (30) 123-4567", "MRN-FRAGMENT"])
def test_each_list_finds_the_rows_of_the_patient_searched_for(
    planted, neighbour, clinician, changelist, term
):
    patient = planted["patient"]
    if term == "MRN-FRAGMENT":
        term = patient.mrn[2:-1].lower()
    response = clinician.get(f"/admin/{changelist}/", {"q": term})

    assert response.status_code == 200
    rows = list(response.context["cl"].result_list)
    assert rows, f"{changelist}: nothing found for {term!r}"
    assert {LISTS[changelist](row) for row in rows} == {patient.pk}
    assert b'name="q"' in response.content
