"""Ending and resuming follow-up through the API (API.md "Added in v2":
``patients/{id}/end-follow-up/`` and ``resume-follow-up/``; DOMAIN.md section 9)."""

from datetime import timedelta

from django.utils import timezone

from followups.codes import VisitStatus
from followups.models import Visit
from patients.models import Patient
from tests.api.conftest import API
from tests.factories import PatientFactory, diagnosis_for
from tests.followups.conftest import record_toxin


def followed():
    patient = PatientFactory(email="ada.api@patients.example", email_reminders=True)
    record_toxin(
        diagnosis_for(patient, diagnosed_on=timezone.localdate() - timedelta(days=30)), timezone.localdate()
    )
    return patient


def end_url(patient) -> str:
    return f"{API}patients/{patient.uuid}/end-follow-up/"


def resume_url(patient) -> str:
    return f"{API}patients/{patient.uuid}/resume-follow-up/"


def test_the_front_desk_ends_follow_up_and_the_patient_says_so(front_desk):
    patient = followed()
    on = timezone.localdate() - timedelta(days=1)

    response = front_desk.post(
        end_url(patient), {"reason": "moved_away", "on": on.isoformat()}, format="json"
    )

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["follow_up_ended_on"], body["follow_up_end_reason"]) == (
        str(patient.uuid),
        on.isoformat(),
        "moved_away",
    )
    assert not Visit.objects.filter(
        patient=patient, status__in=(VisitStatus.PLANNED, VisitStatus.BOOKED)
    ).exists()
    read = front_desk.get(f"{API}patients/{patient.uuid}/").json()
    assert (read["follow_up_ended_on"], read["follow_up_end_reason"]) == (on.isoformat(), "moved_away")


def test_a_bad_end_is_a_400_with_field_messages_and_changes_nothing(front_desk):
    patient = followed()
    ahead = timezone.localdate() + timedelta(days=3)

    wrong = front_desk.post(end_url(patient), {"reason": "bored"}, format="json")
    future = front_desk.post(end_url(patient), {"reason": "deceased", "on": ahead.isoformat()}, format="json")
    unknown = front_desk.post(end_url(patient), {"reason": "deceased", "why": "x"}, format="json")

    assert (wrong.status_code, set(wrong.json())) == (400, {"reason"})
    assert future.status_code == 400 and "on" in future.json()
    assert unknown.status_code == 400
    assert Patient.objects.get(pk=patient.pk).follow_up_ended_on is None


def test_ending_twice_is_a_400_and_only_a_clinician_resumes(front_desk, clinician):
    patient = followed()
    assert (
        front_desk.post(end_url(patient), {"reason": "declined_follow_up"}, format="json").status_code == 200
    )

    again = front_desk.post(end_url(patient), {"reason": "moved_away"}, format="json")
    by_front_desk = front_desk.post(resume_url(patient), {}, format="json")
    by_clinician = clinician.post(resume_url(patient), {}, format="json")

    assert again.status_code == 400
    assert by_front_desk.status_code == 403
    assert by_clinician.status_code == 200
    assert by_clinician.json()["follow_up_ended_on"] is None
    assert Visit.objects.filter(patient=patient, status=VisitStatus.PLANNED).exists()


def test_the_end_fields_are_not_written_through_the_patient_itself(clinician):
    patient = followed()

    response = clinician.patch(
        f"{API}patients/{patient.uuid}/", {"follow_up_ended_on": "2026-01-01"}, format="json"
    )

    assert response.status_code == 400
    assert Patient.objects.get(pk=patient.pk).follow_up_ended_on is None


def test_an_unknown_patient_is_a_404(clinician):
    missing = "00000000-0000-4000-8000-000000000000"
    assert (
        clinician.post(
            f"{API}patients/{missing}/end-follow-up/", {"reason": "moved_away"}, format="json"
        ).status_code
        == 404
    )
