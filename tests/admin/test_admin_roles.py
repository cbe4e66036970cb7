"""Roles as groups in the admin: the front desk sees contact data, visits and reminders and no
clinical data anywhere; nurses read the clinical record and write visits and assessments;
clinicians (and superusers) do everything. Also the cost of the changelists at any page size."""

import pytest

from followups.codes import ReminderStatus, VisitSource, VisitStatus
from followups.models import Reminder, Visit
from tests.admin.conftest import CLINICAL_MARKERS, at_clinic, days
from tests.factories import PatientFactory

CLINICAL_LISTS = (
    "patients/diagnosis",
    "patients/imagingstudy",
    "patients/treatment",
    "patients/medicationdetail",
    "patients/botulinumtoxindetail",
    "patients/mvddetail",
    "patients/mvdcomplication",
    "patients/toxininjection",
    "followups/assessment",
    "followups/labresult",
    "followups/treatmentoutcome",
    "followups/patientflag",
    "followups/protocol",
)


def front_desk_pages(planted):
    patient = planted["patient"]
    visit = patient.visits.exclude(status=VisitStatus.CANCELLED).first()
    reminder = Reminder.objects.filter(visit__patient=patient).first()
    return [
        "/admin/",
        "/admin/patients/",
        "/admin/followups/",
        "/admin/patients/patient/",
        f"/admin/patients/patient/?q={patient.mrn}",
        f"/admin/patients/patient/{patient.pk}/change/",
        f"/admin/patients/patient/{patient.pk}/page/",
        "/admin/followups/visit/",
        f"/admin/followups/visit/{visit.pk}/change/",
        f"/admin/followups/visit/{visit.pk}/act/",
        "/admin/followups/reminder/",
        f"/admin/followups/reminder/{reminder.pk}/change/",
    ]


def test_the_front_desk_sees_no_clinical_data_anywhere(planted, front_desk):
    for url in front_desk_pages(planted):
        response = front_desk.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        for marker in CLINICAL_MARKERS:
            assert marker not in html, f"{marker!r} on {url}"


def test_the_same_pages_show_the_planted_values_to_a_clinician(planted, clinician):
    """The scan above can fail: a clinician's pages carry the very markers it looks for."""
    seen = "".join(clinician.get(url).content.decode() for url in front_desk_pages(planted))

    for marker in (
        "PLANTED-DIAGNOSIS-NOTE",
        "Carbamazepine",
        "HLA-B",
        "Cohen-Albert",
        "37.25",
        "recovery-chart",
    ):
        assert marker in seen, marker


def test_the_front_desk_sees_contact_data_visits_and_reminders(planted, front_desk):
    patient = planted["patient"]

    html = front_desk.get(f"/admin/patients/patient/{patient.pk}/page/").content.decode()

    for section in ("patient-demographics", "patient-visits", "patient-reminders", "patient-timeline"):
        assert f'id="{section}"' in html
    for section in (
        "patient-flags",
        "patient-chart",
        "patient-diagnoses",
        "patient-treatments",
        "patient-outcomes",
    ):
        assert f'id="{section}"' not in html
    assert patient.email in html and patient.phone in html
    assert 'data-test="visit"' in html and 'data-test="reminder"' in html
    assert "patient-archive" not in html
    assert "assessment-add" not in html


@pytest.mark.parametrize("model", CLINICAL_LISTS)
def test_every_clinical_list_is_closed_to_the_front_desk(planted, front_desk, model):
    assert front_desk.get(f"/admin/{model}/").status_code == 403


def test_the_front_desk_can_neither_filter_by_nor_read_the_hla_result(planted, front_desk):
    patient = planted["patient"]

    filtered = front_desk.get("/admin/patients/patient/?hla_b1502_result__exact=positive")
    history = front_desk.get(f"/admin/patients/patient/{patient.pk}/history/")

    # A lookup the admin does not allow is refused outright (Django's DisallowedModelAdminLookup).
    assert filtered.status_code == 400
    assert history.status_code == 403


def test_the_front_desk_edits_contact_data_without_touching_clinical_fields(planted, front_desk):
    patient = planted["patient"]
    form = front_desk.get(f"/admin/patients/patient/{patient.pk}/change/").context["adminform"].form
    assert "hla_b1502_result" not in form.fields
    data = {name: form.initial.get(name) or "" for name in form.fields}
    data.update(phone="+49 30 7654321", email_reminders="on", date_of_birth=patient.date_of_birth.isoformat())

    response = front_desk.post(f"/admin/patients/patient/{patient.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:3000]
    patient.refresh_from_db()
    assert patient.phone == "+49 30 7654321"
    assert patient.at_risk_hla_b1502 is True


def test_the_front_desk_books_visits_and_handles_reminders_but_does_not_archive(planted, front_desk, today):
    patient = planted["patient"]
    visit = patient.visits.filter(status=VisitStatus.PLANNED).first()
    reminder = Reminder.objects.filter(visit__patient=patient, status=ReminderStatus.PENDING).first()

    booked = front_desk.post(
        f"/admin/followups/visit/{visit.pk}/act/",
        {"action": "book", "book-scheduled_for": f"{today + days(4)}T10:00"},
    )
    cancelled = front_desk.post(f"/admin/followups/reminder/{reminder.pk}/act/", {"action": "cancel"})
    archive = front_desk.post(f"/admin/patients/patient/{patient.pk}/act/", {"action": "archive"})
    assess = front_desk.get(f"/admin/followups/assessment/add/?patient={patient.pk}")

    assert booked.status_code == 302 and cancelled.status_code == 302
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.BOOKED
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.CANCELLED
    assert archive.status_code == 403 and assess.status_code == 403
    patient.refresh_from_db()
    assert not patient.archived


def test_a_nurse_reads_the_clinical_record_and_writes_visits_and_assessments_only(planted, nurse):
    patient = planted["patient"]
    visit = patient.visits.filter(status=VisitStatus.PLANNED).first()
    reminder = Reminder.objects.filter(visit__patient=patient, status=ReminderStatus.PENDING).first()

    assert nurse.get("/admin/patients/diagnosis/").status_code == 200
    assert nurse.get("/admin/followups/patientflag/").status_code == 200
    assert "recovery-chart" in nurse.get(f"/admin/patients/patient/{patient.pk}/page/").content.decode()
    assert nurse.get("/admin/patients/diagnosis/add/").status_code == 403
    assert nurse.get(f"/admin/followups/assessment/add/?patient={patient.pk}").status_code == 200
    assert nurse.post(f"/admin/followups/visit/{visit.pk}/act/", {"action": "complete"}).status_code == 302
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.COMPLETED
    assert (
        nurse.post(f"/admin/followups/reminder/{reminder.pk}/act/", {"action": "cancel"}).status_code == 403
    )
    assert nurse.post(f"/admin/patients/patient/{patient.pk}/act/", {"action": "archive"}).status_code == 403
    assert nurse.post(f"/admin/patients/patient/{patient.pk}/act/", {"action": "restore"}).status_code == 403
    changelist = nurse.get("/admin/followups/reminder/").content.decode()
    assert "cancel_selected" not in changelist


def test_a_staff_user_without_a_role_sees_nothing(planted, make_staff):
    from tests.admin.conftest import client_for

    client = client_for(make_staff(None))

    assert client.get(f"/admin/patients/patient/{planted['patient'].pk}/page/").status_code == 403
    assert client.get("/admin/followups/visit/").status_code == 403
    assert 'data-test="dashboard"' not in client.get("/admin/").content.decode()


@pytest.mark.parametrize("who", ["clinician", "superuser"])
def test_clinicians_and_superusers_do_everything(planted, request, who):
    client = request.getfixturevalue(who)
    patient = planted["patient"]

    assert client.get("/admin/patients/diagnosis/add/").status_code == 200
    assert client.get("/admin/followups/protocol/").status_code == 200
    archive = {"action": "archive", "confirmed": "yes"}
    assert client.post(f"/admin/patients/patient/{patient.pk}/act/", archive).status_code == 302


# --- cost of the changelists --------------------------------------------------------------------


@pytest.mark.parametrize("count", [1, 30])
def test_the_patient_list_costs_the_same_whatever_its_length(
    db, clinician, count, django_assert_max_num_queries
):
    for _ in range(count):
        PatientFactory()

    with django_assert_max_num_queries(8):
        response = clinician.get("/admin/patients/patient/")

    assert len(response.context["cl"].result_list) == count


@pytest.mark.parametrize("count", [1, 30])
def test_the_visit_list_costs_the_same_whatever_its_length(
    db, clinician, today, count, django_assert_max_num_queries
):
    patients = [PatientFactory() for _ in range(3)]
    Visit.objects.bulk_create(
        Visit(
            patient=patients[n % 3],
            purpose="Check",
            scheduled_for=at_clinic(today + days(n % 5)),
            window_start=today + days(n % 5),
            window_end=today + days(n % 5),
            status=VisitStatus.BOOKED,
            source=VisitSource.MANUAL,
        )
        for n in range(count)
    )

    with django_assert_max_num_queries(11):
        response = clinician.get("/admin/followups/visit/?worklist=week")

    assert len(response.context["cl"].result_list) == count
    assert not response.context["cl"].show_full_result_count


def test_the_changelists_use_autocomplete_and_joins(db):
    from django.contrib import admin

    from followups.models import Assessment, LabResult
    from patients.models import Diagnosis, ImagingStudy, Patient

    for model in (Diagnosis, ImagingStudy, Assessment, LabResult):
        assert "patient" in admin.site._registry[model].autocomplete_fields
    for model in (Visit, Reminder, Diagnosis, Assessment):
        assert admin.site._registry[model].list_select_related
    for model in (Patient, Visit, Reminder, Diagnosis, Assessment):
        assert admin.site._registry[model].show_full_result_count is False
