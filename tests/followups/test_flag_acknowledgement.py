"""A clinician acknowledges a flag (DOMAIN.md 8, v2): it stays on the patient's page, marked by whom
and when with a note, leaves the flagged worklist, and comes back unacknowledged when the fact behind
it changes (a new ``since`` or subject) -- never when the flags are only computed again."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.utils import timezone

from clinic.roles import Role, group_for
from followups import services as followups
from followups.codes import FlagCode, LabTest, VisitStatus
from followups.flags_store import flag_acknowledge, flags_sync
from followups.models import PatientFlag
from followups.selectors import flags_to_review, worklist_flagged
from followups.visit_moves import visit_move
from patients import services as record
from tests.followups.conftest import (
    at_clinic,
    days,
    flags_of,
    record_course,
    record_log,
    record_mvd,
    record_toxin,
)

F = FlagCode
_users = iter(range(1, 10_000))


def staff(role: Role | None, *, superuser: bool = False):
    user = get_user_model().objects.create_user(
        username=f"{role.value if role else 'super'}-{next(_users)}", is_staff=True, is_superuser=superuser
    )
    if role is not None:
        user.groups.add(group_for(role))
    return user


@pytest.fixture
def clinician(db):
    return staff(Role.CLINICIAN)


@pytest.fixture
def imaging_flag(recent_diagnosis):
    """A confirmed diagnosis without imaging: the patient's one flag, imaging_missing."""
    (flag,) = flags_of(recent_diagnosis.patient)
    assert flag.code == F.IMAGING_MISSING
    return flag


def reloaded(flag) -> PatientFlag:
    return PatientFlag.objects.get(pk=flag.pk)


def acknowledgement(flag):
    flag = reloaded(flag)
    return flag.acknowledged_by, flag.acknowledged_at, flag.note


def refusal(error: ValidationError) -> dict:
    return {field: [e.code for e in errors] for field, errors in error.error_dict.items()}


# --- who may, and with what ---------------------------------------------------------------------


def test_a_clinician_acknowledges_a_flag_with_a_note(imaging_flag, clinician):
    before = timezone.now()

    done = flag_acknowledge(flag=imaging_flag, by=clinician, note="  MRI booked at the partner hospital.  ")

    by, at, note = acknowledgement(imaging_flag)
    assert (by, note) == (clinician, "MRI booked at the partner hospital.")
    assert before <= at <= timezone.now()
    assert (done.acknowledged_by, done.acknowledged_at, done.note) == (by, at, note)
    # Nothing else of the flag changes.
    flag = reloaded(imaging_flag)
    assert (flag.code, flag.subject, flag.detail, flag.since) == (
        imaging_flag.code,
        imaging_flag.subject,
        imaging_flag.detail,
        imaging_flag.since,
    )


def test_a_superuser_counts_as_a_clinician(imaging_flag, db):
    admin = staff(None, superuser=True)

    flag_acknowledge(flag=imaging_flag, by=admin, note="Seen.")

    assert acknowledgement(imaging_flag)[0] == admin


@pytest.mark.parametrize("role", [Role.NURSE, Role.FRONT_DESK, Role.INTEGRATION_READ, None])
def test_only_a_clinician_acknowledges_a_flag(imaging_flag, role):
    with pytest.raises(ValidationError) as refused:
        flag_acknowledge(flag=imaging_flag, by=staff(role), note="Seen.")

    assert refusal(refused.value) == {NON_FIELD_ERRORS: ["not_a_clinician"]}
    assert refused.value.error_dict[NON_FIELD_ERRORS][0].message == "Only a clinician acknowledges a flag."
    assert acknowledgement(imaging_flag) == (None, None, "")


@pytest.mark.parametrize(
    ("note", "code"),
    [("", "required"), ("   \n ", "required"), (None, "required"), ("x" * 501, "max_length")],
)
def test_an_acknowledgement_needs_a_note_of_at_most_500_characters(imaging_flag, clinician, note, code):
    with pytest.raises(ValidationError) as refused:
        flag_acknowledge(flag=imaging_flag, by=clinician, note=note)

    assert refusal(refused.value) == {"note": [code]}
    assert acknowledgement(imaging_flag) == (None, None, "")


def test_a_note_of_500_characters_is_kept_whole(imaging_flag, clinician):
    flag_acknowledge(flag=imaging_flag, by=clinician, note="x" * 500)

    assert acknowledgement(imaging_flag)[2] == "x" * 500


def test_a_nurse_without_a_note_hears_both_refusals(imaging_flag, db):
    with pytest.raises(ValidationError) as refused:
        flag_acknowledge(flag=imaging_flag, by=staff(Role.NURSE), note="")

    assert refusal(refused.value) == {NON_FIELD_ERRORS: ["not_a_clinician"], "note": ["required"]}


def test_acknowledging_again_replaces_the_note_and_the_clinician(imaging_flag, clinician):
    flag_acknowledge(flag=imaging_flag, by=clinician, note="MRI requested.")
    other = staff(Role.CLINICIAN)

    flag_acknowledge(flag=imaging_flag, by=other, note="Patient declines MRI.")

    assert acknowledgement(imaging_flag)[0::2] == (other, "Patient declines MRI.")


# --- where an acknowledged flag shows ----------------------------------------------------------------


def test_an_acknowledged_flag_leaves_the_worklist_but_stays_on_the_patient(imaging_flag, clinician):
    patient = imaging_flag.patient
    assert list(worklist_flagged()) == [imaging_flag]
    assert list(flags_to_review()) == [imaging_flag]

    flag_acknowledge(flag=imaging_flag, by=clinician, note="MRI requested.")

    assert list(worklist_flagged()) == []
    assert list(worklist_flagged(code=F.IMAGING_MISSING)) == []
    assert list(flags_to_review()) == []
    assert list(patient.flags.all()) == [imaging_flag]


def test_only_the_acknowledged_flag_leaves_the_worklist(recent_diagnosis, clinician, today):
    patient = recent_diagnosis.patient
    course = record_course(recent_diagnosis, today - days(10))
    lab = PatientFlag.objects.get(patient=patient, code=F.LAB_MONITORING_DUE)

    flag_acknowledge(flag=lab, by=clinician, note="Blood count taken at the GP's.")

    assert [(f.code, f.subject) for f in worklist_flagged()] == [
        (F.IMAGING_MISSING, str(recent_diagnosis.uuid))
    ]
    assert {f.subject for f in patient.flags.all()} == {str(course.uuid), str(recent_diagnosis.uuid)}


# --- recomputed: the acknowledgement holds while the fact does ------------------------------------------


def test_a_recompute_with_the_same_since_keeps_the_acknowledgement(imaging_flag, clinician, today):
    patient = imaging_flag.patient
    flag_acknowledge(flag=imaging_flag, by=clinician, note="MRI requested.")
    held = acknowledgement(imaging_flag)

    flags_sync(patient=patient)
    flags_sync(patient=patient, today=today + days(30))
    followups.patient_follow_up_refresh(patient=patient)

    assert acknowledgement(imaging_flag) == held
    assert reloaded(imaging_flag).since == imaging_flag.since
    assert list(flags_to_review()) == []


def test_a_new_wording_of_the_same_fact_keeps_the_acknowledgement(make_patient, clinician, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=120)
    record_log(patient, today - days(100), spasms_per_day=Decimal("20"))
    record_course(diagnosis, today - days(100))
    record_log(patient, today - days(1), spasms_per_day=Decimal("20"))
    (flag,) = flags_of(patient, F.CONSIDER_MVD_EVALUATION)
    assert "outcome unchanged" in flag.detail
    flag_acknowledge(flag=flag, by=clinician, note="Patient declines surgery for now.")

    record_log(patient, today, spasms_per_day=Decimal("30"))  # unchanged -> worse

    flag = reloaded(flag)
    assert "outcome worse" in flag.detail
    assert (flag.acknowledged_by, flag.note) == (clinician, "Patient declines surgery for now.")


def test_a_new_since_brings_the_flag_back_unacknowledged(recent_diagnosis, clinician, today):
    """The same subject with a new fact: a later House-Brackmann grade still shows a palsy."""
    patient = recent_diagnosis.patient
    record_mvd(recent_diagnosis, today - days(25))
    record_log(patient, today - days(15), house_brackmann_grade=3)
    (flag,) = flags_of(patient, F.FACIAL_PALSY_AFTER_MVD)
    flag_acknowledge(flag=flag, by=clinician, note="Eye care explained; review in three weeks.")
    assert F.FACIAL_PALSY_AFTER_MVD not in {f.code for f in flags_to_review()}

    record_log(patient, today - days(1), house_brackmann_grade=2)

    back = reloaded(flag)
    assert back.since == today - days(1)
    assert (back.acknowledged_by, back.acknowledged_at, back.note) == (None, None, "")
    assert back in worklist_flagged(code=F.FACIAL_PALSY_AFTER_MVD)


def test_a_lab_result_that_lapses_again_is_a_new_fact(recent_diagnosis, clinician, today):
    patient = recent_diagnosis.patient
    record_course(recent_diagnosis, today - days(200))
    (flag,) = flags_of(patient, F.LAB_MONITORING_DUE)
    assert flag.since == today - days(200)
    flag_acknowledge(flag=flag, by=clinician, note="Lab requested.")

    # A result of 150 days ago came in: monitoring fell due again 59 days ago, a new fact.
    followups.lab_result_record(patient=patient, test=LabTest.BLOOD_COUNT, taken_on=today - days(150))

    back = reloaded(flag)
    assert back.since == today - days(59)
    assert acknowledgement(back) == (None, None, "")


def test_a_new_short_toxin_interval_comes_back_unacknowledged(make_patient, clinician, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=400)
    record_toxin(diagnosis, today - days(200))
    record_toxin(diagnosis, today - days(150))
    (flag,) = flags_of(patient, F.BOTOX_INTERVAL_SHORT)
    flag_acknowledge(flag=flag, by=clinician, note="Early re-injection agreed with the patient.")
    assert list(worklist_flagged(code=F.BOTOX_INTERVAL_SHORT)) == []

    latest = record_toxin(diagnosis, today - days(100))  # 50 days after the previous one again

    (back,) = flags_of(patient, F.BOTOX_INTERVAL_SHORT)
    assert (back.subject, back.since) == (str(latest.uuid), today - days(100))
    assert (back.acknowledged_by, back.acknowledged_at, back.note) == (None, None, "")
    assert list(worklist_flagged(code=F.BOTOX_INTERVAL_SHORT)) == [back]


def test_a_new_overdue_window_comes_back_unacknowledged(recent_diagnosis, clinician, today):
    patient = recent_diagnosis.patient
    missed = followups.visit_create(
        patient=patient, purpose="Check", scheduled_for=at_clinic(today - days(10)), status=VisitStatus.BOOKED
    )
    visit_move(visit=missed, to=VisitStatus.MISSED)
    (first,) = flags_of(patient, F.OVERDUE_FOLLOW_UP)
    flag_acknowledge(flag=first, by=clinician, note="Patient abroad until next month.")
    followups.visit_create(
        patient=patient,
        purpose="Check",
        scheduled_for=at_clinic(today + days(2)),
        window_end=today + days(3),
        status=VisitStatus.PLANNED,
    )

    # That visit's window closes unattended: a new fact, a new flag to review; the first holds.
    flags_sync(patient=patient, today=today + days(4))

    flags = {f.since: f for f in flags_of(patient, F.OVERDUE_FOLLOW_UP)}
    assert set(flags) == {today - days(10), today + days(3)}
    assert acknowledgement(flags[today - days(10)])[2] == "Patient abroad until next month."
    assert acknowledgement(flags[today + days(3)]) == (None, None, "")
    assert list(worklist_flagged(code=F.OVERDUE_FOLLOW_UP)) == [flags[today + days(3)]]


def test_a_flag_that_stops_holding_and_comes_back_is_unacknowledged(imaging_flag, clinician, today):
    patient = imaging_flag.patient
    flag_acknowledge(flag=imaging_flag, by=clinician, note="MRI requested.")
    study = record.imaging_study_record(
        patient=patient, performed_on=today, modality="mri", sequences=["ciss"]
    )
    assert flags_of(patient) == []

    record.imaging_study_retract(study=study)

    (back,) = flags_of(patient)
    assert (back.code, back.since) == (F.IMAGING_MISSING, imaging_flag.since)
    assert acknowledgement(back) == (None, None, "")


def test_an_archived_patients_acknowledged_flag_goes_with_the_others(imaging_flag, clinician):
    flag_acknowledge(flag=imaging_flag, by=clinician, note="MRI requested.")

    record.patient_archive(patient=imaging_flag.patient)

    assert not PatientFlag.objects.filter(pk=imaging_flag.pk).exists()


def test_the_acknowledgement_time_is_now_not_the_flags_date(imaging_flag, clinician):
    flag_acknowledge(flag=imaging_flag, by=clinician, note="Seen.")

    at = acknowledgement(imaging_flag)[1]
    assert timezone.localdate(at) == timezone.localdate()
    assert timezone.now() - at < timedelta(minutes=1)


def test_the_history_keeps_an_acknowledgement_when_the_flag_goes(imaging_flag, clinician, today):
    flag_acknowledge(flag=imaging_flag, by=clinician, note="MRI requested.")
    record.imaging_study_record(
        patient=imaging_flag.patient, performed_on=today, modality="mri", sequences=["ciss"]
    )
    assert not PatientFlag.objects.filter(pk=imaging_flag.pk).exists()

    last = PatientFlag.history.filter(id=imaging_flag.pk).latest()
    assert (last.history_type, last.acknowledged_by_id, last.note) == ("-", clinician.pk, "MRI requested.")


def test_the_history_keeps_an_acknowledgement_its_new_fact_cleared(recent_diagnosis, clinician, today):
    patient = recent_diagnosis.patient
    surgery = record_mvd(recent_diagnosis, today - days(60))
    record_log(patient, today - days(50), house_brackmann_grade=3)
    (palsy,) = flags_of(patient, F.FACIAL_PALSY_AFTER_MVD)
    flag_acknowledge(flag=palsy, by=clinician, note="Eye care given.")

    record_log(patient, today - days(10), house_brackmann_grade=2)

    assert acknowledgement(palsy) == (None, None, "")
    notes = set(PatientFlag.history.filter(id=palsy.pk).values_list("note", flat=True))
    assert "Eye care given." in notes
    assert surgery.started_on < reloaded(palsy).since


def test_a_flag_gone_while_it_was_read_is_a_clear_refusal(imaging_flag, clinician):
    PatientFlag.objects.filter(pk=imaging_flag.pk).delete()

    with pytest.raises(ValidationError) as refused:
        flag_acknowledge(flag=imaging_flag, by=clinician, note="MRI requested.")

    assert refusal(refused.value) == {NON_FIELD_ERRORS: ["flag_gone"]}
