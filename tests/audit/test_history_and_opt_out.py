"""Two reads and a change that used to leave no trace: the admin's history pages (past values) and
the opt-out through a patient's signed link (a consent change)."""

import pytest
from django.test import Client
from django.urls import reverse

from clinic.models import AuditEvent
from clinic.roles import Role
from followups.patient_links import OPT_OUT, link_token
from patients.services import patient_update
from tests.factories import PatientFactory, diagnosis_for, treatment_for


def reads(path_part: str) -> list[tuple]:
    rows = AuditEvent.objects.filter(path__contains=path_part).order_by("id")
    return [(e.channel, e.action, e.resource, e.object_id, e.patient_id, e.status) for e in rows]


# --- history pages ------------------------------------------------------------------------------


@pytest.fixture
def changed_diagnosis(db):
    diagnosis = diagnosis_for(PatientFactory())
    diagnosis.notes = "first"
    diagnosis.save()
    return diagnosis


def test_a_history_page_and_a_past_version_are_reads_of_the_object(staff_as, changed_diagnosis):
    clinician = staff_as(Role.CLINICIAN)
    base = f"/admin/patients/diagnosis/{changed_diagnosis.pk}/history/"
    version = changed_diagnosis.history.earliest()

    assert clinician.get(base).status_code == 200
    assert clinician.get(f"{base}{version.history_id}/").status_code == 200

    expected = (
        "admin",
        "read",
        "diagnosis",
        str(changed_diagnosis.uuid),
        changed_diagnosis.patient.uuid,
        200,
    )
    assert reads("/history/") == [expected, expected]
    assert {e.actor for e in AuditEvent.objects.filter(path__contains="/history/")} == {
        clinician.user.username
    }


def test_a_visit_s_action_page_is_a_read_of_the_visit(staff_as, db):
    from django.utils import timezone

    from followups.models import Visit
    from followups.services import visit_create
    from tests.followups.conftest import at_clinic, days

    patient = PatientFactory()
    diagnosis_for(patient)
    visit = visit_create(
        patient=patient, purpose="Check", scheduled_for=at_clinic(timezone.localdate() + days(3))
    )
    visit = Visit.objects.get(pk=visit.pk)

    assert staff_as(Role.FRONT_DESK).get(f"/admin/followups/visit/{visit.pk}/act/").status_code == 200

    assert reads("/act/") == [("admin", "read", "visit", str(visit.uuid), patient.uuid, 200)]


def test_the_patient_s_own_history_names_the_patient(staff_as, db):
    patient = PatientFactory()
    patient_update(patient=patient, phone="+49 30 555")

    assert staff_as(Role.NURSE).get(f"/admin/patients/patient/{patient.pk}/history/").status_code == 200

    assert reads("/history/") == [("admin", "read", "patient", str(patient.uuid), patient.uuid, 200)]


def test_django_s_own_history_page_is_a_read_too(staff_as, db):
    """Admins without simple_history show Django's log of admin changes to the row."""
    treatment = treatment_for(diagnosis_for(PatientFactory()), "medication")
    detail = treatment.medication

    assert (
        staff_as(Role.CLINICIAN).get(f"/admin/patients/medicationdetail/{detail.pk}/history/").status_code
        == 200
    )
    assert [row[1:5] for row in reads("/history/")] == [
        ("read", "medicationdetail", str(detail.pk), treatment.patient.uuid)
    ]


# --- opt-out ------------------------------------------------------------------------------------


@pytest.fixture
def consenting(db):
    return PatientFactory(
        given_name="Ada",
        family_name="Lovelace",
        mrn="OPT-MRN-1",
        email="ada@patients.example",
        email_reminders=True,
    )


def opt_out_path(patient) -> str:
    return reverse("reminders-opt-out", args=[link_token(OPT_OUT, patient.uuid)])


@pytest.mark.parametrize("body", [{}, {"List-Unsubscribe": "One-Click"}])
def test_the_opt_out_is_recorded_as_the_patient_s_link_changing_the_patient(consenting, body):
    response = Client().post(opt_out_path(consenting), body, REMOTE_ADDR="198.51.100.4")

    assert response.status_code == 200
    [event] = AuditEvent.objects.all()
    assert (event.actor, event.actor_id, event.channel, event.action, event.resource) == (
        "patient-link",
        None,
        "patient",
        "update",
        "patient",
    )
    assert (event.object_id, event.patient_id, event.status, event.remote_addr) == (
        str(consenting.uuid),
        consenting.uuid,
        200,
        "198.51.100.4",
    )
    assert event.path == "/reminders/opt-out/[token]/"
    # Ids only: neither the link's token (a key to the patient's pages) nor the patient's details.
    text = " ".join(str(value) for value in vars(event).values())
    token = link_token(OPT_OUT, consenting.uuid)
    assert [s for s in ("Ada", "Lovelace", "OPT-MRN-1", "ada@patients.example", token) if s in text] == []


def test_the_opt_out_s_history_row_says_the_link_did_it(consenting):
    Client().post(opt_out_path(consenting))

    latest = consenting.history.latest()
    assert (latest.email_reminders, latest.history_user_id) == (False, None)
    assert latest.history_change_reason == "opt-out by the patient's link"
    # Only that row: the rows before it keep their own story.
    assert consenting.history.exclude(history_change_reason="opt-out by the patient's link").count() >= 1


def test_opening_the_link_and_opting_out_twice_record_only_the_change(consenting):
    browser = Client()
    assert browser.get(opt_out_path(consenting)).status_code == 200
    assert browser.post(opt_out_path(consenting)).status_code == 200
    assert browser.post(opt_out_path(consenting)).status_code == 200

    assert AuditEvent.objects.count() == 1
    assert consenting.history.filter(history_change_reason="opt-out by the patient's link").count() == 1
