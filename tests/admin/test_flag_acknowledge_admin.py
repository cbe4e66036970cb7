"""Acknowledging flags in the staff panel (DOMAIN.md 8, v2): the flag list opens on the flags to
review, the acknowledge page takes a clinician's note, and the patient page offers the form to
clinicians and says who acknowledged what."""

import re

import pytest
from django.urls import reverse

from clinic.models import AuditEvent
from clinic.roles import Role
from followups.codes import FlagCode
from followups.flags_store import flag_acknowledge
from followups.models import PatientFlag
from patients import codes
from tests.admin.conftest import client_for, days
from tests.factories import PatientFactory, diagnosis_for, treatment_for

CHANGELIST = "/admin/followups/patientflag/"


def acknowledge_url(flag) -> str:
    return reverse("admin:followups_patientflag_acknowledge", args=[flag.pk])


def page_url(patient) -> str:
    return reverse("admin:patients_patient_page", args=[patient.pk])


def listed(client, **params) -> list[int]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return sorted(flag.pk for flag in response.context["cl"].result_list)


def state(flag):
    flag = PatientFlag.objects.get(pk=flag.pk)
    return flag.acknowledged_by, flag.note


@pytest.fixture
def doctor(make_staff):
    return make_staff(Role.CLINICIAN)


@pytest.fixture
def clinician(doctor):
    return client_for(doctor)


@pytest.fixture
def flagged(db, today):
    """A patient diagnosed 30 days ago without imaging, on carbamazepine for 10 days without a blood
    count: flags imaging_missing and lab_monitoring_due."""
    patient = PatientFactory()
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(30))
    treatment_for(diagnosis, codes.TreatmentKind.MEDICATION, started_on=today - days(10))
    return {f.code: f for f in patient.flags.all()}


@pytest.fixture
def imaging(flagged):
    return flagged[FlagCode.IMAGING_MISSING]


@pytest.fixture
def lab(flagged):
    return flagged[FlagCode.LAB_MONITORING_DUE]


# --- the flag list --------------------------------------------------------------------------------


def test_the_flag_list_opens_on_the_flags_to_review(clinician, doctor, imaging, lab):
    assert listed(clinician) == sorted([imaging.pk, lab.pk])

    flag_acknowledge(flag=imaging, by=doctor, note="MRI requested.")

    assert listed(clinician) == [lab.pk]
    assert listed(clinician, review="acknowledged") == [imaging.pk]
    assert listed(clinician, review="all") == sorted([imaging.pk, lab.pk])


def test_the_flag_list_names_its_review_filter_and_who_acknowledged(clinician, doctor, imaging):
    flag_acknowledge(flag=imaging, by=doctor, note="MRI requested.")

    html = clinician.get(CHANGELIST, {"review": "acknowledged"}).content.decode()

    assert "To review" in html
    assert f"{doctor.get_username()}, " in html
    assert "MRI requested." in html
    assert f'data-test="flag-acknowledge-{imaging.pk}"' in html


def test_the_flag_list_combines_review_and_code(clinician, doctor, imaging, lab):
    flag_acknowledge(flag=imaging, by=doctor, note="MRI requested.")

    assert listed(clinician, code__exact=FlagCode.IMAGING_MISSING) == []
    assert listed(clinician, code__exact=FlagCode.IMAGING_MISSING, review="all") == [imaging.pk]
    assert listed(clinician, code__exact=FlagCode.LAB_MONITORING_DUE, review="acknowledged") == []


def test_a_nurse_reads_the_flag_list(nurse, imaging, lab):
    assert listed(nurse) == sorted([imaging.pk, lab.pk])


# --- the acknowledge page -------------------------------------------------------------------------


def test_a_clinician_opens_the_acknowledge_page(clinician, imaging):
    response = clinician.get(acknowledge_url(imaging))

    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-test="flag-acknowledge"' in html
    assert imaging.detail in html
    assert f"since {imaging.since:%Y-%m-%d}" in html
    assert re.search(r'<textarea [^>]*name="note"', html)
    assert state(imaging) == (None, "")


def test_a_clinician_acknowledges_with_a_note_and_returns_to_the_patient(clinician, doctor, imaging):
    response = clinician.post(acknowledge_url(imaging), {"note": "MRI requested at the partner hospital."})

    assert response.status_code == 302
    assert response["Location"] == page_url(imaging.patient)
    assert state(imaging) == (doctor, "MRI requested at the partner hospital.")
    assert PatientFlag.objects.get(pk=imaging.pk).acknowledged_at is not None
    # Audited as a change of the flag, of this patient.
    assert list(
        AuditEvent.objects.filter(actor=doctor.get_username(), method="POST").values_list(
            "channel", "action", "resource", "object_id", "patient_id"
        )
    ) == [("admin", "update", "patientflag", str(imaging.uuid), imaging.patient.uuid)]
    # The page it lands on says so.
    page = clinician.get(response["Location"])
    assert any("acknowledged" in str(m) for m in page.context["messages"])


def test_the_acknowledge_page_returns_where_it_came_from_on_this_site_only(clinician, imaging, lab):
    response = clinician.post(acknowledge_url(imaging), {"note": "Seen.", "next": CHANGELIST})
    assert (response.status_code, response["Location"]) == (302, CHANGELIST)

    response = clinician.post(acknowledge_url(lab), {"note": "Seen.", "next": "https://evil.example/"})
    assert (response.status_code, response["Location"]) == (302, page_url(lab.patient))


@pytest.mark.parametrize("note", ["", "   "])
def test_an_acknowledgement_without_a_note_is_refused_on_the_page(clinician, imaging, note):
    response = clinician.post(acknowledge_url(imaging), {"note": note})

    assert response.status_code == 200
    assert "Say what was decided" in response.content.decode()
    assert state(imaging) == (None, "")


@pytest.mark.parametrize("role", [Role.NURSE, Role.FRONT_DESK])
def test_only_a_clinician_may_open_or_post_the_acknowledge_page(make_staff, imaging, role):
    client = client_for(make_staff(role))

    assert client.get(acknowledge_url(imaging)).status_code == 403
    assert client.post(acknowledge_url(imaging), {"note": "Seen."}).status_code == 403
    assert state(imaging) == (None, "")


def test_a_superuser_acknowledges_as_a_clinician(superuser, imaging):
    assert superuser.post(acknowledge_url(imaging), {"note": "Seen."}).status_code == 302
    assert state(imaging)[1] == "Seen."


def test_an_unknown_flag_is_a_404(clinician, imaging):
    assert (
        clinician.get(
            reverse("admin:followups_patientflag_acknowledge", args=[imaging.pk + 1000])
        ).status_code
        == 404
    )
    assert clinician.get(f"{CHANGELIST}not-a-number/acknowledge/").status_code == 404


def test_an_anonymous_visitor_is_sent_to_log_in(client, imaging):
    response = client.post(acknowledge_url(imaging), {"note": "Seen."})

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert state(imaging) == (None, "")


# --- the patient page -----------------------------------------------------------------------------


def test_the_patient_page_offers_the_acknowledge_form_to_clinicians_only(clinician, nurse, imaging, lab):
    mine = clinician.get(page_url(imaging.patient)).content.decode()
    theirs = nurse.get(page_url(imaging.patient)).content.decode()

    for flag in (imaging, lab):
        form = re.search(rf'<form [^>]*data-test="flag-{flag.code}-acknowledge"[^>]*>', mine)
        assert form, flag.code
        assert f'action="{acknowledge_url(flag)}"' in form.group(0)
        assert f'data-test="flag-{flag.code}"' in theirs  # the nurse sees the flags...
        assert f'data-test="flag-{flag.code}-acknowledge"' not in theirs  # ...not the form
    assert 'name="note"' in mine


def test_the_patient_page_form_acknowledges_and_the_page_says_by_whom(clinician, doctor, nurse, imaging, lab):
    page = page_url(imaging.patient)

    response = clinician.post(acknowledge_url(imaging), {"note": "MRI requested.", "next": page})

    assert (response.status_code, response["Location"]) == (302, page)
    for client in (clinician, nurse):
        html = client.get(page).content.decode()
        mark = re.search(r'data-test="flag-imaging_missing-acknowledged">([^<]*)<', html)
        assert mark, "no acknowledgement shown"
        assert mark.group(1).startswith(f"acknowledged by {doctor.get_username()} on ")
        assert mark.group(1).endswith(": MRI requested.")
        assert 'data-test="flag-lab_monitoring_due-acknowledged"' not in html
        # The acknowledged flag stays on the page.
        assert 'data-test="flag-imaging_missing"' in html
    assert "Acknowledge again" in clinician.get(page).content.decode()
