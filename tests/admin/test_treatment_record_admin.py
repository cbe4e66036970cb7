"""Recording, changing, stopping and retracting treatments in the staff panel (issue 16).

Each page writes through the service the API uses, so follow-up is planned in the same call; a
refusal of the service appears on the field it concerns, and nothing of a refused form is stored.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from followups.codes import VisitStatus
from followups.models import Visit
from patients import codes
from patients.models import MvdComplication, Treatment
from tests.factories import PatientFactory, diagnosis_for, treatment_for

ADD = "/admin/patients/treatment/add/"


def days(n: int) -> timedelta:
    return timedelta(days=n)


@pytest.fixture
def patient(db, today):
    patient = PatientFactory(email_reminders=True)
    diagnosis_for(patient, diagnosed_on=today - days(200))
    return patient


def treatment_post(patient, kind, **fields) -> dict:
    """A filled-in treatment page: the treatment's fields, then each detail's with its prefix."""
    diagnosis = patient.diagnoses.get()
    data = {
        "patient": patient.pk,
        "kind": kind,
        "treatment-diagnosis": diagnosis.pk,
        "treatment-status": fields.pop("status", "completed"),
        "treatment-started_on": fields.pop("started_on"),
        "treatment-notes": fields.pop("notes", ""),
        "complications-TOTAL_FORMS": "2",
        "complications-INITIAL_FORMS": "0",
    }
    data.update(fields)
    return data


def field_errors(response, form_name: str) -> dict:
    page = response.context["page"]
    form = {"treatment": page.treatment_form, "detail": page.detail}[form_name]
    return {name: [str(m) for m in messages] for name, messages in form.errors.items()}


def test_a_clinician_records_an_mvd_with_its_vessels_and_a_complication_and_its_visits_are_planned(
    clinician, patient, today
):
    operated = today - days(20)
    form = clinician.get(f"{ADD}?patient={patient.pk}&kind=mvd")
    assert form.status_code == 200
    assert b'name="mvd-offending_vessels"' in form.content
    assert b'name="complications-0-kind"' in form.content

    response = clinician.post(
        ADD,
        treatment_post(
            patient,
            "mvd",
            started_on=operated.isoformat(),
            **{
                "mvd-technique": "interposition",
                "mvd-offending_vessels": ["aica", "vein"],
                "complications-0-kind": "transient_facial_palsy",
                "complications-0-onset_on": (operated + days(2)).isoformat(),
                "complications-0-resolved_on": (operated + days(15)).isoformat(),
            },
        ),
    )

    mvd = Treatment.objects.get(patient=patient)
    assert response.status_code == 302
    assert response["Location"] == f"/admin/patients/patient/{patient.pk}/page/#treatment-{mvd.pk}"
    assert (mvd.kind, mvd.status, mvd.started_on) == ("mvd", "completed", operated)
    assert sorted(mvd.mvd.vessel_rows.values_list("vessel", flat=True)) == ["aica", "vein"]
    assert list(mvd.mvd.complications.values_list("kind", "onset_on", "resolved_on")) == [
        ("transient_facial_palsy", operated + days(2), operated + days(15))
    ]
    assert Visit.objects.filter(treatment=mvd, status=VisitStatus.PLANNED).exists()


def test_the_treatment_page_names_the_patients_diagnoses_and_offers_each_kind(clinician, patient):
    chooser = clinician.get(f"{ADD}?patient={patient.pk}")
    assert chooser.status_code == 200
    for kind in codes.TreatmentKind.values:
        assert f'data-test="treatment-kind-{kind}"'.encode() in chooser.content
    page = clinician.get(f"/admin/patients/patient/{patient.pk}/page/")
    assert b'data-test="treatment-add-mvd"' in page.content


def test_without_a_patient_the_add_page_sends_staff_to_the_patients_not_to_a_403(clinician, db):
    response = clinician.get(ADD)
    assert response.status_code == 302
    assert response["Location"] == "/admin/patients/patient/"


def test_a_toxin_session_over_200_units_in_30_days_is_refused_on_the_units_and_nothing_is_stored(
    clinician, patient, today
):
    earlier = treatment_for(
        patient.diagnoses.get(),
        "botulinum_toxin",
        started_on=today - days(10),
        botulinum_toxin={
            "product": "onabotulinumtoxinA",
            "injections": [{"muscle": "orbicularis_oculi", "units": "150"}],
        },
    )
    form = clinician.get(f"{ADD}?patient={patient.pk}&kind=botulinum_toxin")
    # The other sessions are listed beside the units, for the running total.
    assert b"150 U onabotulinumtoxinA" in form.content

    response = clinician.post(
        ADD,
        treatment_post(
            patient,
            "botulinum_toxin",
            started_on=today.isoformat(),
            **{
                "botulinum_toxin-product": "onabotulinumtoxinA",
                "botulinum_toxin-units_orbicularis_oculi": "40",
                "botulinum_toxin-units_zygomaticus": "20",
            },
        ),
    )

    assert response.status_code == 200
    errors = field_errors(response, "detail")
    assert "at most 200 units" in " ".join(errors["__all__"])
    assert "210" in " ".join(errors["__all__"])
    assert list(Treatment.objects.filter(patient=patient)) == [earlier]


def test_a_dose_above_the_ceiling_is_refused_on_the_dose_field(clinician, patient, today):
    response = clinician.post(
        ADD,
        treatment_post(
            patient,
            "medication",
            status="active",
            started_on=today.isoformat(),
            **{"medication-drug": "carbamazepine", "medication-daily_dose_mg": "1500"},
        ),
    )
    assert response.status_code == 200
    assert "1200" in " ".join(field_errors(response, "detail")["daily_dose_mg"])
    assert not Treatment.objects.filter(patient=patient).exists()


def test_a_complication_before_the_surgery_is_refused_on_its_own_row(clinician, patient, today):
    operated = today - days(20)
    response = clinician.post(
        ADD,
        treatment_post(
            patient,
            "mvd",
            started_on=operated.isoformat(),
            **{
                "mvd-technique": "interposition",
                "mvd-offending_vessels": ["aica"],
                # The first row is left empty: the refused one is the second row of the form.
                "complications-1-kind": "csf_leak",
                "complications-1-onset_on": (operated - days(3)).isoformat(),
            },
        ),
    )
    assert response.status_code == 200
    rows = response.context["page"].complications
    assert rows[0].errors == {}
    assert "before surgery" in " ".join(rows[1].errors["onset_on"])
    assert not Treatment.objects.filter(patient=patient).exists()
    assert not MvdComplication.objects.exists()


def test_a_course_is_changed_then_stopped_with_its_reason(clinician, patient, today):
    course = treatment_for(patient.diagnoses.get(), "medication", started_on=today - days(60))
    change = f"/admin/patients/treatment/{course.pk}/change/"
    form = clinician.get(change)
    assert form.status_code == 200
    assert b'value="400.00"' in form.content or b'value="400"' in form.content

    data = treatment_post(
        patient,
        "medication",
        status="active",
        started_on=course.started_on.isoformat(),
        **{"medication-drug": "carbamazepine", "medication-daily_dose_mg": "600"},
    )
    assert clinician.post(change, data).status_code == 302
    course.refresh_from_db()
    assert course.medication.daily_dose_mg == 600
    assert course.medication.dose_changed_on == today

    stop = f"/admin/patients/treatment/{course.pk}/stop/"
    assert clinician.get(stop).status_code == 200
    response = clinician.post(stop, {"ended_on": today.isoformat(), "stop_reason": "adverse_effect"})
    assert response.status_code == 302
    course.refresh_from_db()
    assert (course.status, course.ended_on, course.medication.stop_reason) == (
        "stopped",
        today,
        "adverse_effect",
    )
    # A stopped course is no longer offered a stop.
    assert clinician.get(stop).status_code == 403


def test_stopping_before_the_course_began_is_refused_on_the_date(clinician, patient, today):
    course = treatment_for(patient.diagnoses.get(), "medication", started_on=today - days(60))
    response = clinician.post(
        f"/admin/patients/treatment/{course.pk}/stop/",
        {"ended_on": (today - days(90)).isoformat(), "stop_reason": "ineffective"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["ended_on"]
    course.refresh_from_db()
    assert course.status == "active"


def test_retracting_asks_first_then_cancels_the_visits_the_treatment_planned(clinician, patient, today):
    mvd = treatment_for(patient.diagnoses.get(), "mvd", started_on=today - days(5))
    assert Visit.objects.filter(treatment=mvd, status=VisitStatus.PLANNED).exists()
    retract = f"/admin/patients/treatment/{mvd.pk}/retract/"

    asked = clinician.get(retract)
    assert asked.status_code == 200
    assert b'data-test="retract-confirm"' in asked.content
    mvd.refresh_from_db()
    assert mvd.status == "completed"

    assert clinician.post(retract).status_code == 302
    mvd.refresh_from_db()
    assert mvd.status == "entered_in_error"
    assert not Visit.objects.filter(treatment=mvd, status=VisitStatus.PLANNED).exists()
    # Retracted, it is shown but no longer changed.
    summary = clinician.get(f"/admin/patients/treatment/{mvd.pk}/change/")
    assert b'data-test="treatment-form"' not in summary.content
    assert b"Entered in error" in summary.content


def test_a_nurse_reads_the_whole_mvd_but_cannot_record_and_the_front_desk_sees_nothing(
    nurse, front_desk, patient, today
):
    mvd = treatment_for(
        patient.diagnoses.get(),
        "mvd",
        started_on=today - days(30),
        mvd={
            "technique": "interposition",
            "offending_vessels": ["pica"],
            "complications": [{"kind": "hearing_loss_transient", "onset_on": today - days(29)}],
        },
    )
    summary = nurse.get(f"/admin/patients/treatment/{mvd.pk}/change/")
    assert summary.status_code == 200
    text = summary.content.decode()
    assert "Posterior inferior cerebellar artery" in text
    assert "hearing loss" in text.lower() and "(lasting)" in text
    assert 'data-test="treatment-form"' not in text
    assert nurse.get(f"{ADD}?patient={patient.pk}&kind=mvd").status_code == 403
    assert nurse.post(f"/admin/patients/treatment/{mvd.pk}/retract/").status_code == 403

    assert front_desk.get(f"/admin/patients/treatment/{mvd.pk}/change/").status_code == 403
    assert front_desk.get(f"{ADD}?patient={patient.pk}&kind=mvd").status_code == 403
    mvd.refresh_from_db()
    assert mvd.status == "completed"


def test_an_archived_patients_treatments_are_read_only_and_a_retract_is_refused_not_a_500(
    clinician, patient, today
):
    from patients.services import patient_archive

    mvd = treatment_for(patient.diagnoses.get(), "mvd", started_on=today - days(5))
    patient_archive(patient=patient)

    summary = clinician.get(f"/admin/patients/treatment/{mvd.pk}/change/")
    assert summary.status_code == 200
    assert b'data-test="treatment-form"' not in summary.content
    assert clinician.post(f"/admin/patients/treatment/{mvd.pk}/retract/").status_code == 403
    assert clinician.get(f"{ADD}?patient={patient.pk}").status_code == 302
    mvd.refresh_from_db()
    assert mvd.status == "completed"


def test_a_second_dose_change_is_dated_today_not_by_the_previous_changes_date(clinician, patient, today):
    course = treatment_for(patient.diagnoses.get(), "medication", started_on=today - days(90))
    change = f"/admin/patients/treatment/{course.pk}/change/"
    medication = course.medication
    medication.daily_dose_mg, medication.dose_changed_on = 600, today - days(30)
    medication.save()

    form = clinician.get(change).context["page"]
    data = {
        f"{bound.prefix}-{name}" if bound.prefix else name: value
        for bound in (form.treatment_form, form.detail)
        for name, value in bound.initial.items()
        if value is not None
    }
    data.update(
        {
            "treatment-started_on": course.started_on.isoformat(),
            "medication-dose_changed_on": (today - days(30)).isoformat(),
            "medication-daily_dose_mg": "800",
            "medication-stop_reason": "",
        }
    )
    assert clinician.post(change, data).status_code == 302
    medication.refresh_from_db()
    assert (medication.daily_dose_mg, medication.dose_changed_on) == (800, today)


def test_changing_a_treatment_whose_diagnosis_was_retracted_keeps_that_diagnosis(clinician, patient, today):
    from patients.services import diagnosis_retract

    first = patient.diagnoses.get()
    course = treatment_for(first, "medication", started_on=today - days(60))
    diagnosis_for(patient, diagnosed_on=today - days(10))
    diagnosis_retract(diagnosis=first)

    form = clinician.get(f"/admin/patients/treatment/{course.pk}/change/")
    choices = form.context["page"].treatment_form.fields["diagnosis"].queryset
    assert first in choices
    assert f'<option value="{first.pk}" selected>'.encode() in form.content


def test_the_pages_that_show_a_patients_record_before_a_write_are_audited(clinician, patient, today):
    from clinic.models import AuditEvent

    course = treatment_for(patient.diagnoses.get(), "medication", started_on=today - days(60))
    for url in (
        f"{ADD}?patient={patient.pk}&kind=botulinum_toxin",
        f"/admin/patients/treatment/{course.pk}/stop/",
        f"/admin/patients/treatment/{course.pk}/retract/",
    ):
        before = AuditEvent.objects.count()
        assert clinician.get(url).status_code == 200
        read = AuditEvent.objects.order_by("-pk").first()
        assert AuditEvent.objects.count() > before, url
        assert (read.action, read.patient_id) == ("read", patient.uuid), url


def test_the_mvd_names_its_surgeon_among_the_clinicians_and_a_nurse_is_refused(
    clinician, patient, today, make_staff
):
    from clinic.roles import Role
    from patients.services import treatment_record

    surgeon, nurse = make_staff(Role.CLINICIAN), make_staff(Role.NURSE)
    form = clinician.get(f"{ADD}?patient={patient.pk}&kind=mvd")
    offered = set(form.context["page"].detail.fields["surgeon"].queryset)
    assert surgeon in offered and nurse not in offered

    operated = today - days(3)
    response = clinician.post(
        ADD,
        treatment_post(
            patient,
            "mvd",
            started_on=operated.isoformat(),
            **{
                "mvd-technique": "transposition",
                "mvd-offending_vessels": ["aica"],
                "mvd-surgeon": surgeon.pk,
            },
        ),
    )
    assert response.status_code == 302
    mvd = Treatment.objects.get(patient=patient, kind="mvd")
    assert mvd.mvd.surgeon == surgeon
    assert surgeon.username.encode() in clinician.get(f"/admin/patients/treatment/{mvd.pk}/change/").content

    with pytest.raises(ValidationError) as refused:
        treatment_record(
            patient=patient,
            diagnosis=patient.diagnoses.get(),
            kind="mvd",
            started_on=operated,
            status="completed",
            mvd={"technique": "interposition", "offending_vessels": ["aica"], "surgeon": nurse},
        )
    assert "mvd.surgeon" in refused.value.message_dict


def test_an_mvd_whose_surgeon_has_left_the_clinic_stays_editable(clinician, patient, today, make_staff):
    from clinic.roles import Role

    surgeon = make_staff(Role.CLINICIAN)
    mvd = treatment_for(
        patient.diagnoses.get(),
        "mvd",
        started_on=today - days(40),
        mvd={"technique": "interposition", "offending_vessels": ["aica"], "surgeon": surgeon},
    )
    surgeon.is_active = False
    surgeon.save()

    change = f"/admin/patients/treatment/{mvd.pk}/change/"
    response = clinician.post(
        change,
        treatment_post(
            patient,
            "mvd",
            started_on=mvd.started_on.isoformat(),
            notes="Seen at 6 weeks.",
            **{
                "mvd-technique": "interposition",
                "mvd-offending_vessels": ["aica"],
                "mvd-surgeon": surgeon.pk,
            },
        ),
    )
    assert response.status_code == 302, response.context and response.context["page"].detail.errors
    mvd.refresh_from_db()
    assert (mvd.notes, mvd.mvd.surgeon) == ("Seen at 6 weeks.", surgeon)
