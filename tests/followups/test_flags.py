"""The flags of DOMAIN.md sections 4 and 8 (rule version 2) over records made through the services:
raised when they hold, not otherwise, cleared when the record changes, each with ``since`` the date
of the fact that raised it. The rules alone, on plain values, are in test_flag_rules.py."""

import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from followups import services as followups
from followups.calls.services import contact_attempt_record
from followups.codes import ContactChannel, ContactOutcome, FlagCode, LabTest, VisitStatus
from followups.flags import flags_for
from followups.flags_store import flags_sync
from followups.models import PatientFlag
from followups.selectors import flag_inputs_for
from followups.visit_moves import visit_move
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
    """The stored flags of one code as (subject, detail, since)."""
    return [(f.subject, f.detail, f.since) for f in flags_of(patient, code)]


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
            second.started_on,
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


def test_an_old_short_pair_is_history_once_a_normal_session_follows(make_patient, today):
    """v2: the latest session and the one before it only (rule version 1 kept flagging old pairs)."""
    patient, diagnosis = make_patient(diagnosed_days_ago=400)
    record_toxin(diagnosis, today - days(300))
    short = record_toxin(diagnosis, today - days(270))
    assert [(subject, since) for subject, _, since in details(patient, F.BOTOX_INTERVAL_SHORT)] == [
        (str(short.uuid), today - days(270))
    ]

    record_toxin(diagnosis, today - days(170))

    assert details(patient, F.BOTOX_INTERVAL_SHORT) == []


def test_a_new_short_session_moves_the_flag_to_it(make_patient, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=400)
    record_toxin(diagnosis, today - days(300))
    record_toxin(diagnosis, today - days(200))
    assert details(patient, F.BOTOX_INTERVAL_SHORT) == []

    latest = record_toxin(diagnosis, today - days(150))

    assert [(subject, since) for subject, _, since in details(patient, F.BOTOX_INTERVAL_SHORT)] == [
        (str(latest.uuid), today - days(150))
    ]


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
            today,
        )
    ]

    record.patient_update(patient=patient, hla_b1502_result=codes.HlaB1502Result.NEGATIVE)

    assert flags_of(patient, F.HLA_B1502_MISSING) == []


def test_a_planned_carbamazepine_course_is_flagged_before_it_starts(db, today):
    patient = PatientFactory(at_risk_hla_b1502=True)
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(30))
    course = record_course(diagnosis, today + days(10), status=codes.TreatmentStatus.PLANNED)

    assert [(subject, since) for subject, _, since in details(patient, F.HLA_B1502_MISSING)] == [
        (str(course.uuid), today + days(10))
    ]


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
        (
            str(course.uuid),
            "Complete blood count due: none in the last 90 days of the carbamazepine course.",
            today - days(10),
        )
    ]

    lab = followups.lab_result_record(
        patient=patient, test=LabTest.BLOOD_COUNT, taken_on=today, abnormal=False
    )
    assert flags_of(patient, F.LAB_MONITORING_DUE) == []

    followups.lab_result_retract(result=lab)
    assert [since for _, _, since in details(patient, F.LAB_MONITORING_DUE)] == [today - days(10)]


@pytest.mark.parametrize(("taken_days_ago", "flagged"), [(0, False), (90, False), (91, True)])
def test_a_blood_count_counts_for_90_days(recent_diagnosis, today, taken_days_ago, flagged):
    patient = recent_diagnosis.patient
    record_course(recent_diagnosis, today - days(200))

    followups.lab_result_record(
        patient=patient, test=LabTest.BLOOD_COUNT, taken_on=today - days(taken_days_ago)
    )

    # Due from the day after the last result stopped covering the course: today, at 91 days.
    assert [since for _, _, since in details(patient, F.LAB_MONITORING_DUE)] == ([today] if flagged else [])


def test_the_lab_flag_turns_on_by_the_calendar(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    record_course(recent_diagnosis, today - days(200))
    followups.lab_result_record(patient=patient, test=LabTest.BLOOD_COUNT, taken_on=today - days(80))
    assert F.LAB_MONITORING_DUE not in flag_codes(patient)

    flags_sync(patient=patient, today=today + days(10))
    assert F.LAB_MONITORING_DUE not in flag_codes(patient)
    flags_sync(patient=patient, today=today + days(11))
    assert [since for _, _, since in details(patient, F.LAB_MONITORING_DUE)] == [today + days(11)]
    # Computed later, the fact is still the day the result lapsed.
    flags_sync(patient=patient, today=today + days(40))
    assert [since for _, _, since in details(patient, F.LAB_MONITORING_DUE)] == [today + days(11)]


def test_oxcarbazepine_needs_a_sodium_result_not_a_blood_count(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    course = record_course(recent_diagnosis, today - days(10), drug=codes.Drug.OXCARBAZEPINE, dose="600")

    followups.lab_result_record(patient=patient, test=LabTest.BLOOD_COUNT, taken_on=today)
    assert details(patient, F.LAB_MONITORING_DUE) == [
        (
            str(course.uuid),
            "Serum sodium due: none in the last 90 days of the oxcarbazepine course.",
            today - days(10),
        )
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
            today,  # the day the course reached 90 days
        )
    ]
    assert details(patient, F.CONSIDER_MVD_EVALUATION) == (expected if flagged else [])


def test_the_mvd_suggestion_waits_for_90_days_of_treatment(make_patient, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=120)
    course_with_logs(diagnosis, today - days(89), "20", "20", today)
    assert F.CONSIDER_MVD_EVALUATION not in flag_codes(patient)

    flags_sync(patient=patient, today=today + days(1))

    assert [since for _, _, since in details(patient, F.CONSIDER_MVD_EVALUATION)] == [today + days(1)]


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
    record_log(patient, today - days(10), spasms_per_day=Decimal("12"))  # at the session's peak

    # Judged by the latest session's outcome, counted from the first session.
    assert latest.outcome.category == "unchanged"
    assert details(patient, F.CONSIDER_MVD_EVALUATION) == [
        (
            str(latest.uuid),
            f"Botulinum toxin since {today - days(200)}, outcome unchanged: "
            "consider evaluation for microvascular decompression.",
            today - days(110),
        )
    ]


@pytest.mark.parametrize("status", [codes.TreatmentStatus.PLANNED, codes.TreatmentStatus.COMPLETED])
def test_no_mvd_suggestion_once_an_mvd_is_recorded_and_back_when_it_is_stopped(make_patient, today, status):
    """v2: an MVD planned, under way or done means the evaluation has happened (rule version 1 went
    on suggesting one); a stopped MVD was not done."""
    patient, diagnosis = make_patient(diagnosed_days_ago=120)
    # Logged five days ago: an MVD from today on ends the course's episode after that log.
    course_with_logs(diagnosis, today - days(100), "20", "20", today - days(5))
    (before,) = details(patient, F.CONSIDER_MVD_EVALUATION)

    on = today + days(30) if status == codes.TreatmentStatus.PLANNED else today
    surgery = record_mvd(diagnosis, on, status=status)
    assert F.CONSIDER_MVD_EVALUATION not in flag_codes(patient)

    record.treatment_update(treatment=surgery, status=codes.TreatmentStatus.STOPPED)

    assert details(patient, F.CONSIDER_MVD_EVALUATION) == [before]


def test_a_retracted_mvd_does_not_count_as_an_evaluation(make_patient, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=120)
    course_with_logs(diagnosis, today - days(100), "20", "20", today)
    surgery = record_mvd(diagnosis, today + days(30), status=codes.TreatmentStatus.PLANNED)
    assert F.CONSIDER_MVD_EVALUATION not in flag_codes(patient)

    record.treatment_retract(treatment=surgery)

    assert F.CONSIDER_MVD_EVALUATION in flag_codes(patient)


# --- imaging_missing and secondary_cause_unconfirmed (section 8) ---------------------------------------


def test_a_confirmed_diagnosis_without_a_ciss_mri_is_flagged_until_one_is_recorded(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    assert details(patient, F.IMAGING_MISSING) == [
        (
            str(recent_diagnosis.uuid),
            "Confirmed diagnosis without an MRI that includes a CISS or FIESTA sequence.",
            recent_diagnosis.diagnosed_on,
        )
    ]

    mri(patient, today, codes.ImagingSequence.ROUTINE_T2, codes.ImagingSequence.TOF_MRA)
    mri(patient, today, codes.ImagingSequence.TOF_MRA, modality=codes.ImagingModality.MRA)
    assert F.IMAGING_MISSING in flag_codes(patient)

    study = mri(patient, today, codes.ImagingSequence.CISS)
    assert F.IMAGING_MISSING not in flag_codes(patient)

    record.imaging_study_retract(study=study)
    assert [since for _, _, since in details(patient, F.IMAGING_MISSING)] == [today - days(30)]


def test_a_fiesta_mri_counts_as_well(recent_diagnosis, today):
    mri(recent_diagnosis.patient, today, codes.ImagingSequence.FIESTA)

    assert F.IMAGING_MISSING not in flag_codes(recent_diagnosis.patient)


def test_a_provisional_diagnosis_is_not_flagged_for_imaging(patient, today):
    diagnosis_for(patient, diagnosed_on=today, status=codes.DiagnosisStatus.PROVISIONAL)

    assert flag_codes(patient) == set()


def test_confirming_a_diagnosis_raises_the_imaging_flag(patient, today):
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(3), status=codes.DiagnosisStatus.PROVISIONAL)

    record.diagnosis_update(diagnosis=diagnosis, status=codes.DiagnosisStatus.CONFIRMED)

    assert flag_codes(patient) == {F.IMAGING_MISSING}
    assert [since for _, _, since in details(patient, F.IMAGING_MISSING)] == [today - days(3)]


def secondary(patient, today, cause):
    return diagnosis_for(
        patient, diagnosed_on=today - days(5), kind=codes.HfsKind.SECONDARY, secondary_cause=cause
    )


def test_a_secondary_diagnosis_without_imaging_is_unconfirmed_until_imaging_is_recorded(patient, today):
    diagnosis = secondary(patient, today, codes.SecondaryCause.CPA_TUMOR)
    assert details(patient, F.SECONDARY_CAUSE_UNCONFIRMED) == [
        (str(diagnosis.uuid), "Secondary diagnosis with no imaging.", today - days(5))
    ]

    record.imaging_study_record(
        patient=patient, diagnosis=diagnosis, performed_on=today, modality=codes.ImagingModality.CT
    )

    assert flags_of(patient, F.SECONDARY_CAUSE_UNCONFIRMED) == []


def test_a_secondary_cause_recorded_as_other_stays_unconfirmed_with_imaging(patient, today):
    diagnosis = secondary(patient, today, codes.SecondaryCause.OTHER)
    mri(patient, today, codes.ImagingSequence.CISS)

    assert details(patient, F.SECONDARY_CAUSE_UNCONFIRMED) == [
        (str(diagnosis.uuid), "Secondary diagnosis with cause recorded as 'other'.", today - days(5))
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

    record_log(patient, today - days(2), spasms_per_day=Decimal("4"))

    assert details(patient, F.RECURRENCE_AFTER_MVD) == [
        (str(surgery.uuid), f"Recurrence after the MVD of {surgery_on}.", today - days(2))
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
            today - days(5),
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
        (
            str(redo.uuid),
            f"House-Brackmann grade 3 on {today - days(5)} after the MVD of {today - days(20)}.",
            today - days(5),
        )
    ]


def test_a_palsy_before_a_redo_stays_with_the_first_surgery(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    first = record_mvd(recent_diagnosis, today - days(400))
    record_log(patient, today - days(300), house_brackmann_grade=2)
    record_mvd(recent_diagnosis, today + days(20), status=codes.TreatmentStatus.PLANNED)

    assert [(subject, since) for subject, _, since in details(patient, F.FACIAL_PALSY_AFTER_MVD)] == [
        (str(first.uuid), today - days(300))
    ]


def test_retracting_the_grade_that_ended_a_palsy_flags_it_again(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    record_mvd(recent_diagnosis, today - days(20))
    record_log(patient, today - days(5), house_brackmann_grade=3)
    healed = record_log(patient, today, house_brackmann_grade=1)
    assert F.FACIAL_PALSY_AFTER_MVD not in flag_codes(patient)

    followups.assessment_retract(assessment=healed)

    assert [since for _, _, since in details(patient, F.FACIAL_PALSY_AFTER_MVD)] == [today - days(5)]


# --- overdue_follow_up (section 8) ----------------------------------------------------------------


def overdue(patient):
    return details(patient, F.OVERDUE_FOLLOW_UP)


def test_a_planned_visit_past_its_window_and_a_missed_one_not_rebooked_are_overdue(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    session = record_toxin(recent_diagnosis, today - days(14))
    review, _ = live(session)
    assert review.window_end == today + days(14)

    flags_sync(patient=patient, today=today + days(14))
    assert overdue(patient) == []
    flags_sync(patient=patient, today=today + days(15))
    assert overdue(patient) == [
        (
            str(review.uuid),
            f"{review.purpose}: planned, window closed on {today + days(14)}.",
            today + days(14),
        )
    ]

    # v2: a planned visit is missed only once its window has closed: on the day after, not before.
    with pytest.raises(ValidationError):
        visit_move(visit=review, to=VisitStatus.MISSED, now=at_clinic(today + days(14), 23))
    visit_move(visit=review, to=VisitStatus.MISSED, now=at_clinic(today + days(15)))
    assert overdue(patient) == [
        (
            str(review.uuid),
            f"{review.purpose}: missed, window closed on {today + days(14)}.",
            today + days(14),
        )
    ]

    followups.visit_rebook(visit=review, scheduled_for=at_clinic(today + days(17)))
    assert F.OVERDUE_FOLLOW_UP not in flag_codes(patient)


def test_a_booked_or_completed_visit_is_not_overdue(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    session = record_toxin(recent_diagnosis, today - days(14))
    review, reinjection = live(session)
    visit_move(visit=review, to=VisitStatus.COMPLETED)  # its window opened today
    visit_move(visit=reinjection, to=VisitStatus.BOOKED, scheduled_for=at_clinic(today + days(75)))

    # Long after both: the booking is not ahead any more, and was attended or not, it is not overdue.
    flags_sync(patient=patient, today=today + days(200))

    assert F.OVERDUE_FOLLOW_UP not in flag_codes(patient)


def manual_visit(patient, on, status=VisitStatus.BOOKED):
    return followups.visit_create(
        patient=patient, purpose="Check", scheduled_for=at_clinic(on), status=status
    )


@pytest.fixture
def missed_visit(recent_diagnosis, today):
    """A visit of ten days ago the patient missed; the untreated review is planned months ahead."""
    patient = recent_diagnosis.patient
    missed = manual_visit(patient, today - days(10))
    visit_move(visit=missed, to=VisitStatus.MISSED)
    assert overdue(patient) == [
        (str(missed.uuid), f"Check: missed, window closed on {today - days(10)}.", today - days(10))
    ]
    return missed


def test_attending_a_later_visit_ends_the_overdue_flag(missed_visit, today):
    """v2: not once the patient has attended a later visit (rule version 1 kept it)."""
    patient = missed_visit.patient
    later = manual_visit(patient, today - days(3))
    assert len(overdue(patient)) == 1  # booked, not attended: it has passed, so it is not ahead either

    visit_move(visit=later, to=VisitStatus.COMPLETED)

    assert overdue(patient) == []


def test_a_visit_attended_before_the_missed_one_does_not_end_it(missed_visit, today):
    patient = missed_visit.patient
    earlier = manual_visit(patient, today - days(20))

    visit_move(visit=earlier, to=VisitStatus.COMPLETED)

    assert [subject for subject, _, _ in overdue(patient)] == [str(missed_visit.uuid)]


def test_a_booked_visit_ahead_ends_the_overdue_flag_while_it_stands(missed_visit, today):
    """v2: not while the patient holds a booked visit ahead."""
    patient = missed_visit.patient
    before = overdue(patient)

    ahead = manual_visit(patient, today + days(3))
    assert overdue(patient) == []

    # Once that appointment has passed, the missed visit is overdue again, with its own since.
    flags_sync(patient=patient, today=today + days(4))
    assert overdue(patient) == before

    # Giving the booking up brings it back as well.
    flags_sync(patient=patient)
    assert overdue(patient) == []
    visit_move(visit=ahead, to=VisitStatus.PLANNED)
    assert overdue(patient) == before


def test_a_planned_visit_ahead_does_not_end_the_overdue_flag(missed_visit, today):
    patient = missed_visit.patient

    manual_visit(patient, today + days(3), status=VisitStatus.PLANNED)

    assert [subject for subject, _, _ in overdue(patient)] == [str(missed_visit.uuid)]


# --- since, and archived patients -------------------------------------------------------------------


def test_a_flag_keeps_its_since_while_it_holds_and_gets_a_new_one_when_raised_again(make_patient, today):
    patient, diagnosis = make_patient(diagnosed_days_ago=120)
    course = course_with_logs(diagnosis, today - days(90), "20", "20", today)
    (first,) = flags_of(patient, F.CONSIDER_MVD_EVALUATION)
    assert "outcome unchanged" in first.detail

    followups.patient_follow_up_refresh(patient=patient)
    flags_sync(patient=patient, today=today + days(30))
    # A new log changes the outcome (unchanged -> worse) and so the detail, not the since.
    record_log(patient, today, spasms_per_day=Decimal("30"))

    (held,) = flags_of(patient, F.CONSIDER_MVD_EVALUATION)
    assert (held.pk, held.since) == (first.pk, first.since)
    assert "outcome worse" in held.detail

    record.treatment_update(treatment=course, status=codes.TreatmentStatus.STOPPED, ended_on=today)
    assert flags_of(patient, F.CONSIDER_MVD_EVALUATION) == []
    record.treatment_update(treatment=course, status=codes.TreatmentStatus.ACTIVE, ended_on=None)

    # Raised again, it is a new flag; v2: its since is still the fact's date (the day the course
    # reached 90 days), not the day it was computed again (rule version 1 moved it).
    (again,) = flags_of(patient, F.CONSIDER_MVD_EVALUATION)
    assert again.pk != first.pk
    assert again.since == first.since == course.started_on + days(90)


def test_a_flag_gets_a_new_since_when_its_fact_changes(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    record_mvd(recent_diagnosis, today - days(30))
    record_log(patient, today - days(20), house_brackmann_grade=3)
    (first,) = flags_of(patient, F.FACIAL_PALSY_AFTER_MVD)
    assert first.since == today - days(20)

    record_log(patient, today - days(2), house_brackmann_grade=2)

    (moved,) = flags_of(patient, F.FACIAL_PALSY_AFTER_MVD)
    assert (moved.pk, moved.since) == (first.pk, today - days(2))
    assert "grade 2" in moved.detail


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
    patient.refresh_from_db()
    assert flags_for(flag_inputs_for(patient=patient, today=today), today=today) == []

    record.patient_restore(patient=patient)
    assert flag_codes(patient) == {F.IMAGING_MISSING, F.LAB_MONITORING_DUE}


# --- one patient's record never raises or clears another's flags --------------------------------------


def computed(patient, today):
    patient.refresh_from_db()
    return {
        (f.code, f.subject, f.since)
        for f in flags_for(flag_inputs_for(patient=patient, today=today), today=today)
    }


def inputs_of(patient, today):
    """What flag_inputs_for reads of the patient, each input as a sorted list (order aside)."""
    patient.refresh_from_db()
    inputs = flag_inputs_for(patient=patient, today=today)
    return {
        name: sorted(map(repr, value)) if isinstance(value, tuple) else value
        for name, value in vars(inputs).items()
    }


def raise_every_flag(today):
    """Two patients whose records raise every flag between them (an MVD ends the MVD suggestion, so
    the MVD flags live on a second patient); each input kind is present: treatments and their outcomes,
    diagnoses, imaging, labs, House-Brackmann grades, and visits."""
    a = PatientFactory(at_risk_hla_b1502=True)
    primary = diagnosis_for(a, diagnosed_on=today - days(400))
    diagnosis_for(
        a,
        diagnosed_on=today - days(380),
        kind=codes.HfsKind.SECONDARY,
        secondary_cause=codes.SecondaryCause.OTHER,
    )
    mri(a, today - days(390), codes.ImagingSequence.ROUTINE_T2)
    record_log(a, today - days(200), spasms_per_day=Decimal("20"))
    record_course(primary, today - days(200))  # carbamazepine, no HLA result, lab lapsed
    followups.lab_result_record(patient=a, test=LabTest.BLOOD_COUNT, taken_on=today - days(150))
    record_toxin(primary, today - days(120))
    record_log(a, today - days(60), spasms_per_day=Decimal("20"))
    record_toxin(primary, today - days(60))  # 60 days after the previous session
    record_log(a, today - days(50), spasms_per_day=Decimal("20"))
    record_log(a, today - days(1), spasms_per_day=Decimal("25"))
    lapsed = followups.visit_create(
        patient=a, purpose="Check", scheduled_for=at_clinic(today - days(8)), status=VisitStatus.PLANNED
    )
    assert lapsed.window_end == today - days(8)

    a2 = PatientFactory()
    diagnosis = diagnosis_for(a2, diagnosed_on=today - days(100))
    mri(a2, today - days(95), codes.ImagingSequence.CISS)
    record_log(a2, today - days(61), spasms_per_day=Decimal("20"))
    record_mvd(diagnosis, today - days(60))
    record_log(a2, today - days(30), spasms_per_day=Decimal("0"), house_brackmann_grade=1)
    record_log(a2, today - days(3), spasms_per_day=Decimal("5"), house_brackmann_grade=3)
    missed = followups.visit_create(
        patient=a2, purpose="Check", scheduled_for=at_clinic(today - days(4)), status=VisitStatus.BOOKED
    )
    visit_move(visit=missed, to=VisitStatus.MISSED)

    # The call list's flags: a patient who missed a visit over a year ago and never came back, whose
    # phone number turned out wrong.
    a3 = PatientFactory()
    long_ago = followups.visit_create(
        patient=a3, purpose="Check", scheduled_for=at_clinic(today - days(400)), status=VisitStatus.BOOKED
    )
    visit_move(visit=long_ago, to=VisitStatus.MISSED)
    contact_attempt_record(patient=a3, channel=ContactChannel.PHONE, outcome=ContactOutcome.WRONG_NUMBER)

    assert flag_codes(a) | flag_codes(a2) | flag_codes(a3) == set(F.values)
    return a, a2


def test_another_patients_record_raises_none_of_their_flags_for_a_clean_patient(db, today):
    clean = PatientFactory()
    diagnosis = diagnosis_for(clean, diagnosed_on=today - days(100))
    mri(clean, today - days(95), codes.ImagingSequence.CISS)
    record_log(clean, today - days(61), spasms_per_day=Decimal("20"))
    record_mvd(diagnosis, today - days(200), status=codes.TreatmentStatus.STOPPED)
    record_course(diagnosis, today - days(30), drug=codes.Drug.CLONAZEPAM, dose="2")
    record_log(clean, today - days(1), spasms_per_day=Decimal("20"))
    inputs_before = inputs_of(clean, today)
    assert computed(clean, today) == set()

    raise_every_flag(today)

    assert inputs_of(clean, today) == inputs_before
    assert computed(clean, today) == set()
    assert flags_sync(patient=clean, today=today) == []


def test_another_patients_record_clears_none_of_their_flags(db, today):
    """The flagged patient has the facts that raise a flag; another patient has every fact that would
    clear it (a recent blood count, a CISS MRI, imaging for a secondary diagnosis, a healed House-
    Brackmann grade, a later attended visit and a booked visit ahead)."""
    flagged = PatientFactory(at_risk_hla_b1502=True)
    primary = diagnosis_for(flagged, diagnosed_on=today - days(300))
    second = diagnosis_for(
        flagged,
        diagnosed_on=today - days(290),
        kind=codes.HfsKind.SECONDARY,
        secondary_cause=codes.SecondaryCause.CPA_TUMOR,
    )
    course = record_course(primary, today - days(200))
    surgery = record_mvd(primary, today - days(100))
    record_log(flagged, today - days(90), house_brackmann_grade=3)
    record_toxin(primary, today - days(60))
    record_toxin(primary, today - days(20))
    missed = followups.visit_create(
        patient=flagged, purpose="Check", scheduled_for=at_clinic(today - days(10)), status=VisitStatus.BOOKED
    )
    visit_move(visit=missed, to=VisitStatus.MISSED)
    expected = {
        (F.HLA_B1502_MISSING, str(course.uuid), today - days(200)),
        (F.LAB_MONITORING_DUE, str(course.uuid), today - days(200)),
        (F.IMAGING_MISSING, str(primary.uuid), today - days(300)),
        (F.IMAGING_MISSING, str(second.uuid), today - days(290)),
        (F.SECONDARY_CAUSE_UNCONFIRMED, str(second.uuid), today - days(290)),
        (F.FACIAL_PALSY_AFTER_MVD, str(surgery.uuid), today - days(90)),
        (
            F.BOTOX_INTERVAL_SHORT,
            str(flagged.treatments.order_by("started_on").last().uuid),
            today - days(20),
        ),
        (F.OVERDUE_FOLLOW_UP, str(missed.uuid), missed.window_end),
    }
    assert {code for code, _, _ in expected} == flag_codes(flagged)
    inputs_before = inputs_of(flagged, today)

    other = PatientFactory(at_risk_hla_b1502=True, hla_b1502_result=codes.HlaB1502Result.NEGATIVE)
    theirs = diagnosis_for(other, diagnosed_on=today - days(300))
    diagnosis_for(
        other,
        diagnosed_on=today - days(290),
        kind=codes.HfsKind.SECONDARY,
        secondary_cause=codes.SecondaryCause.CPA_TUMOR,
    )
    mri(other, today - days(280), codes.ImagingSequence.CISS)
    followups.lab_result_record(patient=other, test=LabTest.BLOOD_COUNT, taken_on=today - days(1))
    record_mvd(theirs, today - days(100))
    record_log(other, today - days(1), house_brackmann_grade=1)
    later = followups.visit_create(
        patient=other, purpose="Check", scheduled_for=at_clinic(today - days(2)), status=VisitStatus.BOOKED
    )
    visit_move(visit=later, to=VisitStatus.COMPLETED)
    followups.visit_create(
        patient=other, purpose="Check", scheduled_for=at_clinic(today + days(5)), status=VisitStatus.BOOKED
    )

    assert inputs_of(flagged, today) == inputs_before
    assert computed(flagged, today) == expected
    assert {(f.code, f.subject, f.since) for f in flags_sync(patient=flagged, today=today)} == expected


def test_the_flag_inputs_cost_a_fixed_number_of_queries_whatever_the_record(
    db, today, django_assert_max_num_queries
):
    def flag_input_queries(patient) -> int:
        patient.refresh_from_db()
        with CaptureQueriesContext(connection) as queries:
            flag_inputs_for(patient=patient, today=today)
        return len(queries)

    small = PatientFactory()
    mri(small, today - days(10), codes.ImagingSequence.CISS)
    diagnosis_for(small, diagnosed_on=today - days(20))

    large = PatientFactory(at_risk_hla_b1502=True)
    diagnosis = diagnosis_for(large, diagnosed_on=today - days(700))
    diagnosis_for(
        large,
        diagnosed_on=today - days(650),
        kind=codes.HfsKind.SECONDARY,
        secondary_cause=codes.SecondaryCause.OTHER,
    )
    for n in range(4):
        mri(large, today - days(690 - n), codes.ImagingSequence.ROUTINE_T2, codes.ImagingSequence.TOF_MRA)
        followups.lab_result_record(
            patient=large, test=LabTest.BLOOD_COUNT, taken_on=today - days(600 - 100 * n)
        )
        record_log(
            large, today - days(600 - 100 * n), spasms_per_day=Decimal(10 + n), house_brackmann_grade=2
        )
        record_toxin(diagnosis, today - days(640 - 100 * n))
    record_course(diagnosis, today - days(500))
    record_course(diagnosis, today - days(400), drug=codes.Drug.OXCARBAZEPINE, dose="600")
    record_mvd(diagnosis, today - days(200))
    record_mvd(diagnosis, today - days(100), status=codes.TreatmentStatus.STOPPED)
    for n in range(3):
        visit = followups.visit_create(
            patient=large,
            purpose="Check",
            scheduled_for=at_clinic(today - days(20 + n)),
            status=VisitStatus.BOOKED,
        )
        visit_move(visit=visit, to=VisitStatus.MISSED)
    assert len(flag_codes(large)) >= 5

    assert flag_input_queries(large) == flag_input_queries(small)
    large.refresh_from_db()
    with django_assert_max_num_queries(9):
        flag_inputs_for(patient=large, today=today)


def test_every_query_of_the_flag_inputs_is_scoped_to_the_patient(db, today):
    """Beside the outcome of the two tests above: a lost patient filter on the outcomes query would
    change no flag (outcomes are matched to the patient's own treatments), only read every patient's."""
    for patient in (PatientFactory(), PatientFactory()):
        diagnosis = diagnosis_for(patient, diagnosed_on=today - days(100))
        mri(patient, today - days(90), codes.ImagingSequence.CISS)
        record_toxin(diagnosis, today - days(50))
    studies = {str(pk) for pk in patient.imaging_studies.values_list("pk", flat=True)}
    patient.refresh_from_db()

    with CaptureQueriesContext(connection) as queries:
        flag_inputs_for(patient=patient, today=today)

    for query in (q["sql"] for q in queries.captured_queries):
        prefetch = re.search(r'"study_id" IN \(([0-9, ]+)\)', query)
        if prefetch:  # the sequences of the studies just read
            assert set(prefetch.group(1).replace(" ", "").split(",")) == studies
            continue
        assert re.search(rf'"patient_id" = {patient.pk}\b', query), query
        # A subquery (the overdue visits' "attended later" and "booked ahead") is the same patient's.
        assert query.count('"patient_id" = ("followups_visit"."patient_id")') == query.count("EXISTS("), query
