"""The flags of DOMAIN.md sections 4 and 8: raised when they hold, not otherwise, cleared when the
record changes, and keeping their ``since`` while they hold."""

from decimal import Decimal

import pytest

from followups import services as followups
from followups.codes import FlagCode, LabTest
from followups.models import PatientFlag
from patients import codes
from patients import services as record
from tests.factories import PatientFactory, diagnosis_for
from tests.followups.conftest import (
    at_clinic,
    days,
    flag_codes,
    flags_of,
    live,
    record_course,
    record_log,
    record_mvd,
    record_toxin,
)

F = FlagCode


def details(patient, code):
    return [(f.subject, f.detail) for f in flags_of(patient, code)]


def mri(patient, on, *sequences, modality=codes.ImagingModality.MRI):
    return record.imaging_study_record(
        patient=patient, performed_on=on, modality=modality, sequences=sequences
    )


# --- botox_interval_short (section 4) ------------------------------------------------------------


@pytest.mark.parametrize(("gap", "flagged"), [(83, True), (84, False), (120, False)])
def test_a_toxin_session_less_than_84_days_after_the_previous_one_is_flagged(
    make_patient, today, gap, flagged
):
    patient, diagnosis = make_patient(diagnosed_days_ago=400)
    record_toxin(diagnosis, today - days(300))
    second = record_toxin(diagnosis, today - days(300 - gap))

    expected = [
        (
            str(second.uuid),
            f"Toxin session of {second.started_on} came {gap} days after the previous one "
            "(at least 84 expected).",
        )
    ]
    assert details(patient, F.BOTOX_INTERVAL_SHORT) == (expected if flagged else [])


def test_the_short_interval_flag_goes_when_the_session_is_retracted(make_patient, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=400)
    record_toxin(diagnosis, today - days(200))
    second = record_toxin(diagnosis, today - days(150))
    assert F.BOTOX_INTERVAL_SHORT in flag_codes(patient)

    record.treatment_retract(treatment=second)

    assert F.BOTOX_INTERVAL_SHORT not in flag_codes(patient)


# --- hla_b1502_missing (section 4) ----------------------------------------------------------------


def test_carbamazepine_for_an_at_risk_patient_without_an_hla_result_is_flagged_until_one_is_recorded(
    db, today
):
    patient = PatientFactory(at_risk_hla_b1502=True)
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(30))
    course = record_course(diagnosis, today)

    assert details(patient, F.HLA_B1502_MISSING) == [
        (
            str(course.uuid),
            f"Carbamazepine from {today} without an HLA-B*1502 result for a patient of at-risk ancestry.",
        )
    ]

    record.patient_update(patient=patient, hla_b1502_result=codes.HlaB1502Result.NEGATIVE)

    assert flags_of(patient, F.HLA_B1502_MISSING) == []


def test_a_planned_carbamazepine_course_is_flagged_before_it_starts(db, today):
    patient = PatientFactory(at_risk_hla_b1502=True)
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(30))
    record_course(diagnosis, today + days(10), status=codes.TreatmentStatus.PLANNED)

    assert F.HLA_B1502_MISSING in flag_codes(patient)


@pytest.mark.parametrize(
    ("at_risk", "result", "drug", "status"),
    [
        (False, codes.HlaB1502Result.NOT_TESTED, codes.Drug.CARBAMAZEPINE, codes.TreatmentStatus.ACTIVE),
        (True, codes.HlaB1502Result.POSITIVE, codes.Drug.CARBAMAZEPINE, codes.TreatmentStatus.ACTIVE),
        (True, codes.HlaB1502Result.NOT_TESTED, codes.Drug.OXCARBAZEPINE, codes.TreatmentStatus.ACTIVE),
        (True, codes.HlaB1502Result.NOT_TESTED, codes.Drug.CARBAMAZEPINE, codes.TreatmentStatus.STOPPED),
    ],
)
def test_no_hla_flag_without_all_of_its_conditions(db, today, at_risk, result, drug, status):
    patient = PatientFactory(at_risk_hla_b1502=at_risk, hla_b1502_result=result)
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(30))
    record_course(diagnosis, today - days(5), drug=drug, status=status)

    assert F.HLA_B1502_MISSING not in flag_codes(patient)


# --- lab_monitoring_due (section 4) ---------------------------------------------------------------


def test_carbamazepine_without_a_recent_blood_count_is_flagged_until_one_is_recorded(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    course = record_course(recent_diagnosis, today - days(10))

    assert details(patient, F.LAB_MONITORING_DUE) == [
        (str(course.uuid), "Complete blood count due: none in the last 90 days of the carbamazepine course.")
    ]

    lab = followups.lab_result_record(
        patient=patient, test=LabTest.BLOOD_COUNT, taken_on=today, abnormal=False
    )
    assert flags_of(patient, F.LAB_MONITORING_DUE) == []

    followups.lab_result_retract(result=lab)
    assert F.LAB_MONITORING_DUE in flag_codes(patient)


@pytest.mark.parametrize(("taken_days_ago", "flagged"), [(0, False), (90, False), (91, True)])
def test_a_blood_count_counts_for_90_days(recent_diagnosis, today, taken_days_ago, flagged):
    patient = recent_diagnosis.patient
    record_course(recent_diagnosis, today - days(200))

    followups.lab_result_record(
        patient=patient, test=LabTest.BLOOD_COUNT, taken_on=today - days(taken_days_ago)
    )

    assert (F.LAB_MONITORING_DUE in flag_codes(patient)) is flagged


def test_the_lab_flag_turns_on_by_the_calendar(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    record_course(recent_diagnosis, today - days(200))
    followups.lab_result_record(patient=patient, test=LabTest.BLOOD_COUNT, taken_on=today - days(80))
    assert F.LAB_MONITORING_DUE not in flag_codes(patient)

    followups.flags_sync(patient=patient, today=today + days(10))
    assert F.LAB_MONITORING_DUE not in flag_codes(patient)
    followups.flags_sync(patient=patient, today=today + days(11))
    assert F.LAB_MONITORING_DUE in flag_codes(patient)


def test_oxcarbazepine_needs_a_sodium_result_not_a_blood_count(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    course = record_course(recent_diagnosis, today - days(10), drug=codes.Drug.OXCARBAZEPINE, dose="600")

    followups.lab_result_record(patient=patient, test=LabTest.BLOOD_COUNT, taken_on=today)
    assert details(patient, F.LAB_MONITORING_DUE) == [
        (str(course.uuid), "Serum sodium due: none in the last 90 days of the oxcarbazepine course.")
    ]

    followups.lab_result_record(patient=patient, test=LabTest.SODIUM, taken_on=today, value=Decimal("138"))
    assert flags_of(patient, F.LAB_MONITORING_DUE) == []


@pytest.mark.parametrize(
    ("drug", "status", "starts_in"),
    [
        (codes.Drug.CLONAZEPAM, codes.TreatmentStatus.ACTIVE, -10),
        (codes.Drug.CARBAMAZEPINE, codes.TreatmentStatus.STOPPED, -10),
        (codes.Drug.CARBAMAZEPINE, codes.TreatmentStatus.COMPLETED, -10),
        (codes.Drug.CARBAMAZEPINE, codes.TreatmentStatus.PLANNED, 10),
        (codes.Drug.CARBAMAZEPINE, codes.TreatmentStatus.ACTIVE, 10),
    ],
)
def test_no_lab_flag_outside_an_active_course_of_a_monitored_drug(
    recent_diagnosis, today, drug, status, starts_in
):
    dose = "2" if drug == codes.Drug.CLONAZEPAM else "400"
    record_course(recent_diagnosis, today + days(starts_in), drug=drug, dose=dose, status=status)

    assert F.LAB_MONITORING_DUE not in flag_codes(recent_diagnosis.patient)


# --- consider_mvd_evaluation (section 8) ----------------------------------------------------------


def course_with_logs(diagnosis, started_on, before, after, today):
    """A carbamazepine course from ``started_on``, spasms per day logged on its first day and today."""
    patient = diagnosis.patient
    record_log(patient, started_on, spasms_per_day=Decimal(before))
    course = record_course(diagnosis, started_on)
    record_log(patient, today, spasms_per_day=Decimal(after))
    # Keep the blood count flag out of the way.
    followups.lab_result_record(patient=patient, test=LabTest.BLOOD_COUNT, taken_on=today)
    return course


@pytest.mark.parametrize(
    ("after", "outcome", "flagged"),
    [("20", "unchanged", True), ("25", "worse", True), ("10", "improved", False), ("0", "cured", False)],
)
def test_a_course_of_90_days_with_no_benefit_suggests_an_mvd_evaluation(
    make_patient, today, after, outcome, flagged
):
    patient, diagnosis = make_patient(diagnosed_days_ago=120)
    course = course_with_logs(diagnosis, today - days(90), "20", after, today)

    assert course.outcome.category == outcome
    expected = [
        (
            str(course.uuid),
            f"Medication since {today - days(90)}, outcome {outcome}: "
            "consider evaluation for microvascular decompression.",
        )
    ]
    assert details(patient, F.CONSIDER_MVD_EVALUATION) == (expected if flagged else [])


def test_the_mvd_suggestion_waits_for_90_days_of_treatment(make_patient, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=120)
    course_with_logs(diagnosis, today - days(89), "20", "20", today)
    assert F.CONSIDER_MVD_EVALUATION not in flag_codes(patient)

    followups.flags_sync(patient=patient, today=today + days(1))

    assert F.CONSIDER_MVD_EVALUATION in flag_codes(patient)


def test_no_mvd_suggestion_for_secondary_hfs(patient, today):
    diagnosis = diagnosis_for(
        patient,
        diagnosed_on=today - days(120),
        kind=codes.HfsKind.SECONDARY,
        secondary_cause=codes.SecondaryCause.CPA_TUMOR,
    )
    course_with_logs(diagnosis, today - days(100), "20", "20", today)

    assert F.CONSIDER_MVD_EVALUATION not in flag_codes(patient)


def test_no_mvd_suggestion_once_the_course_is_stopped(make_patient, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=120)
    course = course_with_logs(diagnosis, today - days(100), "20", "20", today)
    assert F.CONSIDER_MVD_EVALUATION in flag_codes(patient)

    record.treatment_update(treatment=course, status=codes.TreatmentStatus.STOPPED, ended_on=today)

    assert F.CONSIDER_MVD_EVALUATION not in flag_codes(patient)


def test_toxin_sessions_without_benefit_for_90_days_suggest_an_mvd_evaluation(make_patient, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=300)
    record_toxin(diagnosis, today - days(200))
    record_log(patient, today - days(30), spasms_per_day=Decimal("12"))
    latest = record_toxin(diagnosis, today - days(30))
    record_log(patient, today, spasms_per_day=Decimal("12"))

    # Judged by the latest session's outcome, counted from the first session.
    assert details(patient, F.CONSIDER_MVD_EVALUATION) == [
        (
            str(latest.uuid),
            f"Botulinum toxin since {today - days(200)}, outcome unchanged: "
            "consider evaluation for microvascular decompression.",
        )
    ]


# --- imaging_missing and secondary_cause_unconfirmed (section 8) ---------------------------------------


def test_a_confirmed_diagnosis_without_a_ciss_mri_is_flagged_until_one_is_recorded(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    assert details(patient, F.IMAGING_MISSING) == [
        (
            str(recent_diagnosis.uuid),
            "Confirmed diagnosis without an MRI that includes a CISS or FIESTA sequence.",
        )
    ]

    mri(patient, today, codes.ImagingSequence.ROUTINE_T2, codes.ImagingSequence.TOF_MRA)
    mri(patient, today, codes.ImagingSequence.TOF_MRA, modality=codes.ImagingModality.MRA)
    assert F.IMAGING_MISSING in flag_codes(patient)

    study = mri(patient, today, codes.ImagingSequence.CISS)
    assert F.IMAGING_MISSING not in flag_codes(patient)

    record.imaging_study_retract(study=study)
    assert F.IMAGING_MISSING in flag_codes(patient)


def test_a_fiesta_mri_counts_as_well(recent_diagnosis, today):
    mri(recent_diagnosis.patient, today, codes.ImagingSequence.FIESTA)

    assert F.IMAGING_MISSING not in flag_codes(recent_diagnosis.patient)


def test_a_provisional_diagnosis_is_not_flagged_for_imaging(patient, today):
    diagnosis_for(patient, diagnosed_on=today, status=codes.DiagnosisStatus.PROVISIONAL)

    assert flag_codes(patient) == set()


def test_confirming_a_diagnosis_raises_the_imaging_flag(patient, today):
    diagnosis = diagnosis_for(patient, diagnosed_on=today, status=codes.DiagnosisStatus.PROVISIONAL)

    record.diagnosis_update(diagnosis=diagnosis, status=codes.DiagnosisStatus.CONFIRMED)

    assert flag_codes(patient) == {F.IMAGING_MISSING}


def secondary(patient, today, cause):
    return diagnosis_for(
        patient, diagnosed_on=today - days(5), kind=codes.HfsKind.SECONDARY, secondary_cause=cause
    )


def test_a_secondary_diagnosis_without_imaging_is_unconfirmed_until_imaging_is_recorded(patient, today):
    diagnosis = secondary(patient, today, codes.SecondaryCause.CPA_TUMOR)
    assert details(patient, F.SECONDARY_CAUSE_UNCONFIRMED) == [
        (str(diagnosis.uuid), "Secondary diagnosis with no imaging.")
    ]

    record.imaging_study_record(
        patient=patient, diagnosis=diagnosis, performed_on=today, modality=codes.ImagingModality.CT
    )

    assert flags_of(patient, F.SECONDARY_CAUSE_UNCONFIRMED) == []


def test_a_secondary_cause_recorded_as_other_stays_unconfirmed_with_imaging(patient, today):
    diagnosis = secondary(patient, today, codes.SecondaryCause.OTHER)
    mri(patient, today, codes.ImagingSequence.CISS)

    assert details(patient, F.SECONDARY_CAUSE_UNCONFIRMED) == [
        (str(diagnosis.uuid), "Secondary diagnosis with cause recorded as 'other'.")
    ]


def test_a_primary_diagnosis_is_never_secondary_unconfirmed(recent_diagnosis):
    assert F.SECONDARY_CAUSE_UNCONFIRMED not in flag_codes(recent_diagnosis.patient)


def test_a_refuted_diagnosis_raises_no_flag(patient, today):
    diagnosis = secondary(patient, today, codes.SecondaryCause.CPA_TUMOR)
    assert flag_codes(patient) == {F.IMAGING_MISSING, F.SECONDARY_CAUSE_UNCONFIRMED}

    record.diagnosis_update(diagnosis=diagnosis, status=codes.DiagnosisStatus.REFUTED)

    assert flag_codes(patient) == set()


# --- recurrence_after_mvd and facial_palsy_after_mvd (section 8) ------------------------------------


def test_a_recurrence_after_mvd_is_flagged(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    surgery_on = today - days(20)
    record_log(patient, surgery_on - days(1), spasms_per_day=Decimal("20"))
    surgery = record_mvd(recent_diagnosis, surgery_on)
    record_log(patient, today - days(10), spasms_per_day=Decimal("0"))
    assert F.RECURRENCE_AFTER_MVD not in flag_codes(patient)

    record_log(patient, today, spasms_per_day=Decimal("4"))

    assert details(patient, F.RECURRENCE_AFTER_MVD) == [
        (str(surgery.uuid), f"Recurrence after the MVD of {surgery_on}.")
    ]


def test_a_facial_palsy_after_mvd_is_flagged_until_grade_one(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    record_log(patient, today - days(25), house_brackmann_grade=5)  # before surgery: not after MVD
    surgery = record_mvd(recent_diagnosis, today - days(20))
    assert F.FACIAL_PALSY_AFTER_MVD not in flag_codes(patient)

    record_log(patient, today - days(5), house_brackmann_grade=2)
    assert details(patient, F.FACIAL_PALSY_AFTER_MVD) == [
        (
            str(surgery.uuid),
            f"House-Brackmann grade 2 on {today - days(5)} after the MVD of {today - days(20)}.",
        )
    ]

    record_log(patient, today, house_brackmann_grade=1)
    assert F.FACIAL_PALSY_AFTER_MVD not in flag_codes(patient)


def test_a_palsy_after_a_redo_is_flagged_for_the_redo_only(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    first = record_mvd(recent_diagnosis, today - days(400))
    redo = record_mvd(
        recent_diagnosis,
        today - days(20),
        mvd={"technique": codes.MvdTechnique.TRANSPOSITION, "offending_vessels": ["aica"], "redo_of": first},
    )

    record_log(patient, today - days(5), house_brackmann_grade=3)

    assert details(patient, F.FACIAL_PALSY_AFTER_MVD) == [
        (str(redo.uuid), f"House-Brackmann grade 3 on {today - days(5)} after the MVD of {today - days(20)}.")
    ]


def test_a_palsy_before_a_redo_stays_with_the_first_surgery(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    first = record_mvd(recent_diagnosis, today - days(400))
    record_log(patient, today - days(300), house_brackmann_grade=2)
    record_mvd(recent_diagnosis, today + days(20), status=codes.TreatmentStatus.PLANNED)

    assert [subject for subject, _ in details(patient, F.FACIAL_PALSY_AFTER_MVD)] == [str(first.uuid)]


def test_retracting_the_grade_that_ended_a_palsy_flags_it_again(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    record_mvd(recent_diagnosis, today - days(20))
    record_log(patient, today - days(5), house_brackmann_grade=3)
    healed = record_log(patient, today, house_brackmann_grade=1)
    assert F.FACIAL_PALSY_AFTER_MVD not in flag_codes(patient)

    followups.assessment_retract(assessment=healed)

    assert F.FACIAL_PALSY_AFTER_MVD in flag_codes(patient)


# --- overdue_follow_up (section 8) ----------------------------------------------------------------


def test_a_planned_visit_past_its_window_and_a_missed_one_not_rebooked_are_overdue(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    session = record_toxin(recent_diagnosis, today - days(14))
    review, _ = live(session)
    assert review.window_end == today + days(14)

    followups.flags_sync(patient=patient, today=today + days(14))
    assert F.OVERDUE_FOLLOW_UP not in flag_codes(patient)
    followups.flags_sync(patient=patient, today=today + days(15))
    assert details(patient, F.OVERDUE_FOLLOW_UP) == [
        (str(review.uuid), f"{review.purpose}: planned, window closed on {today + days(14)}.")
    ]

    followups.visit_mark_missed(visit=review)
    assert details(patient, F.OVERDUE_FOLLOW_UP) == [
        (str(review.uuid), f"{review.purpose}: missed, window closed on {today + days(14)}.")
    ]

    followups.visit_rebook(visit=review, scheduled_for=at_clinic(today + days(2)))
    assert F.OVERDUE_FOLLOW_UP not in flag_codes(patient)


def test_a_booked_or_completed_visit_is_not_overdue(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    session = record_toxin(recent_diagnosis, today - days(14))
    review, reinjection = live(session)
    followups.visit_book(visit=review, scheduled_for=at_clinic(today + days(20)))
    followups.visit_complete(visit=reinjection)

    followups.flags_sync(patient=patient, today=today + days(200))

    assert F.OVERDUE_FOLLOW_UP not in flag_codes(patient)


# --- since, and archived patients -------------------------------------------------------------------


def test_a_flag_keeps_its_since_while_it_holds_and_gets_a_new_one_when_raised_again(make_patient, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=120)
    course = course_with_logs(diagnosis, today - days(90), "20", "20", today)
    (first,) = flags_of(patient, F.CONSIDER_MVD_EVALUATION)
    assert "outcome unchanged" in first.detail

    followups.patient_follow_up_refresh(patient=patient)
    followups.flags_sync(patient=patient, today=today + days(30))
    # A new log changes the outcome (unchanged -> worse) and so the detail, not the since.
    record_log(patient, today, spasms_per_day=Decimal("30"))

    (held,) = flags_of(patient, F.CONSIDER_MVD_EVALUATION)
    assert (held.pk, held.since) == (first.pk, first.since)
    assert "outcome worse" in held.detail

    record.treatment_update(treatment=course, status=codes.TreatmentStatus.STOPPED, ended_on=today)
    assert flags_of(patient, F.CONSIDER_MVD_EVALUATION) == []
    record.treatment_update(treatment=course, status=codes.TreatmentStatus.ACTIVE, ended_on=None)

    (again,) = flags_of(patient, F.CONSIDER_MVD_EVALUATION)
    assert again.since > first.since


def test_every_flag_of_a_patient_keeps_its_since_across_a_refresh(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    record_course(recent_diagnosis, today - days(10))
    before = {(f.code, f.subject): (f.pk, f.since) for f in flags_of(patient)}
    assert {code for code, _ in before} == {F.IMAGING_MISSING, F.LAB_MONITORING_DUE}

    followups.patient_follow_up_refresh(patient=patient)
    mri(patient, today, codes.ImagingSequence.ROUTINE_T2)

    assert {(f.code, f.subject): (f.pk, f.since) for f in flags_of(patient)} == before


def test_an_archived_patient_has_no_flags_and_gets_them_back_when_restored(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    record_course(recent_diagnosis, today - days(10))
    assert flag_codes(patient) == {F.IMAGING_MISSING, F.LAB_MONITORING_DUE}

    record.patient_archive(patient=patient)
    assert PatientFlag.objects.filter(patient=patient).count() == 0

    record.patient_restore(patient=patient)
    assert flag_codes(patient) == {F.IMAGING_MISSING, F.LAB_MONITORING_DUE}
