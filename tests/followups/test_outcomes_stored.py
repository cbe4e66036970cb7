"""Stored outcomes on PostgreSQL: every change to a patient's assessments or treatments brings the
outcome of each treatment up to date in the same transaction, under rule version 1; a retracted
treatment has none; reading them is one query whatever their number."""

from contextlib import contextmanager
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.db.models.signals import post_save

from followups import services
from followups.codes import OutcomeCategory as C
from followups.codes import SorianoBaron as SB
from followups.codes import VisitStatus
from followups.models import Assessment, AssessmentTrigger, TreatmentOutcome, Visit
from followups.selectors import outcomes_for_patient
from patients import codes
from patients import services as record_services
from tests.factories import PatientFactory, diagnosis_for, treatment_for

T0 = date(2024, 1, 15)
MVD = codes.TreatmentKind.MVD
MEDICATION = codes.TreatmentKind.MEDICATION
OTHER = codes.TreatmentKind.OTHER


def record(patient, day, **fields):
    """An assessment ``day`` days after T0, through the service."""
    return services.assessment_record(patient=patient, assessed_on=T0 + timedelta(days=day), **fields)


def stored(treatment):
    return TreatmentOutcome.objects.get(treatment=treatment)


def hfs7(total):
    """Seven HFS-7 answers adding up to ``total`` (0-28)."""
    answers = [4] * (total // 4) + ([total % 4] if total % 4 else [])
    answers += [0] * (7 - len(answers))
    return {f"hfs7_item_{n}": answer for n, answer in enumerate(answers, start=1)}


class OutcomeWriteFailed(Exception):
    pass


@contextmanager
def outcome_writes_fail():
    """Storing an outcome fails, as it would on a database error in the middle of the recompute."""

    def fail(**kwargs):
        raise OutcomeWriteFailed

    post_save.connect(fail, sender=TreatmentOutcome, weak=False, dispatch_uid="test-failing-outcome")
    try:
        yield
    finally:
        post_save.disconnect(sender=TreatmentOutcome, dispatch_uid="test-failing-outcome")


@pytest.fixture
def mvd(diagnosis):
    return treatment_for(diagnosis, MVD, started_on=T0)


# --- recomputed with every change ---------------------------------------------------------------


def test_a_treatment_without_logs_is_stored_as_insufficient_data_under_rule_version_1(mvd):
    outcome = stored(mvd)

    assert outcome.category == C.INSUFFICIENT_DATA
    assert outcome.rule_version == 1
    assert (outcome.baseline, outcome.current, outcome.soriano_baron) == (None, None, "")


def test_recording_an_assessment_stores_the_new_outcome(patient, mvd):
    baseline = record(
        patient, -10, spasms_per_day=Decimal(30), episode_duration_seconds=20, cohen_albert_grade=3
    )
    assert stored(mvd).category == C.INSUFFICIENT_DATA

    current = record(
        patient, 90, spasms_per_day=Decimal(10), episode_duration_seconds=15, cohen_albert_grade=3
    )

    outcome = stored(mvd)
    assert outcome.category == C.IMPROVED
    assert (outcome.baseline_id, outcome.current_id) == (baseline.pk, current.pk)
    # 66.666... and 25 % stored with one decimal
    assert (outcome.spasms_per_day_change_pct, outcome.duration_change_pct) == (Decimal("66.7"), Decimal(25))
    assert outcome.grade_change == 0
    assert outcome.soriano_baron == SB.BAD
    assert outcome.days_to_spasm_free is None
    assert outcome.qol_meaningful_improvement is None
    assert outcome.rule_version == 1


def test_updating_an_assessment_recomputes_the_outcome(patient, mvd):
    record(patient, -10, spasms_per_day=Decimal(30))
    current = record(patient, 30, spasms_per_day=Decimal(20))
    assert stored(mvd).category == C.UNCHANGED

    services.assessment_update(assessment=current, spasms_per_day=Decimal(0))

    outcome = stored(mvd)
    assert (outcome.category, outcome.soriano_baron, outcome.days_to_spasm_free) == (
        C.DELAYED_CURE,
        SB.EXCELLENT,
        30,
    )
    assert outcome.spasms_per_day_change_pct == 100
    assert outcome.rule_version == 1


def test_moving_an_assessment_before_t0_makes_it_the_baseline(patient, mvd):
    record(patient, -100, spasms_per_day=Decimal(10))
    moved = record(patient, 20, spasms_per_day=Decimal(40))
    current = record(patient, 60, spasms_per_day=Decimal(20))
    assert stored(mvd).category == C.WORSE

    services.assessment_update(assessment=moved, assessed_on=T0)

    outcome = stored(mvd)
    assert (outcome.baseline_id, outcome.current_id, outcome.category) == (moved.pk, current.pk, C.IMPROVED)


def test_retracting_an_assessment_recomputes_without_it(patient, mvd):
    record(patient, -10, spasms_per_day=Decimal(10))
    first = record(patient, 30, spasms_per_day=Decimal(0))
    relapse = record(patient, 90, spasms_per_day=Decimal(3))
    assert (stored(mvd).category, stored(mvd).soriano_baron) == (C.RECURRENCE, SB.RECURRENCE)

    services.assessment_retract(assessment=relapse)
    outcome = stored(mvd)
    assert (outcome.category, outcome.current_id, outcome.days_to_spasm_free) == (
        C.DELAYED_CURE,
        first.pk,
        30,
    )

    services.assessment_retract(assessment=first)
    outcome = stored(mvd)
    assert (outcome.category, outcome.current, outcome.days_to_spasm_free) == (
        C.INSUFFICIENT_DATA,
        None,
        None,
    )


def test_a_change_to_the_treatment_recomputes_its_outcome(patient, mvd):
    record(patient, -10, spasms_per_day=Decimal(10))
    record(patient, 5, spasms_per_day=Decimal(0))
    assert stored(mvd).category == C.CURED

    record_services.treatment_update(treatment=mvd, started_on=T0 - timedelta(days=3))

    outcome = stored(mvd)
    assert (outcome.category, outcome.days_to_spasm_free) == (C.DELAYED_CURE, 8)


def test_retracting_a_treatment_removes_its_outcome_and_leaves_the_others(patient, diagnosis, mvd):
    medication = treatment_for(diagnosis, MEDICATION, started_on=T0 - timedelta(days=200))
    record(patient, -10, spasms_per_day=Decimal(10))
    record(patient, 30, spasms_per_day=Decimal(5))

    record_services.treatment_retract(treatment=mvd)

    assert not TreatmentOutcome.objects.filter(treatment=mvd).exists()
    assert stored(medication).category == C.INSUFFICIENT_DATA  # no log within 180 days before it
    record(patient, 31, spasms_per_day=Decimal(6))
    assert not TreatmentOutcome.objects.filter(treatment=mvd).exists()


def test_each_treatment_is_judged_from_its_own_start(patient, diagnosis):
    medication = treatment_for(diagnosis, MEDICATION, started_on=T0 - timedelta(days=150))
    mvd = treatment_for(diagnosis, MVD, started_on=T0)
    record(patient, -160, spasms_per_day=Decimal(20), cohen_albert_grade=3)
    record(patient, -10, spasms_per_day=Decimal(25), cohen_albert_grade=3)
    record(patient, 400, spasms_per_day=Decimal(25), cohen_albert_grade=3)

    assert (stored(medication).category, stored(medication).spasms_per_day_change_pct) == (C.WORSE, -25)
    assert stored(medication).soriano_baron == ""
    assert (stored(mvd).category, stored(mvd).soriano_baron) == (C.FAILURE, SB.BAD)


def test_assessments_of_another_patient_do_not_count(patient, mvd):
    other = PatientFactory()
    record(other, -10, spasms_per_day=Decimal(10))
    record(other, 30, spasms_per_day=Decimal(0))
    record(patient, -10, spasms_per_day=Decimal(10))

    assert stored(mvd).category == C.INSUFFICIENT_DATA
    assert stored(mvd).baseline.patient == patient


def test_quality_of_life_uses_the_hfs7_total_the_database_derives(patient, mvd):
    record(patient, -10, spasms_per_day=Decimal(10), **hfs7(14))
    current = record(patient, 60, spasms_per_day=Decimal(10), **hfs7(12))
    assert stored(mvd).qol_meaningful_improvement is False

    services.assessment_update(assessment=current, **hfs7(11))

    assert stored(mvd).qol_meaningful_improvement is True


# --- in the transaction of the write ------------------------------------------------------------


def test_an_assessment_is_not_recorded_when_its_outcome_cannot_be_stored(patient, mvd):
    visit = services.visit_create(
        patient=patient, purpose="Review", scheduled_for=datetime(2024, 1, 5, 9, tzinfo=ZoneInfo("UTC"))
    )

    with outcome_writes_fail(), pytest.raises(OutcomeWriteFailed):
        record(patient, -10, visit=visit, spasms_per_day=Decimal(10), triggers=["stress"])

    assert not Assessment.objects.filter(patient=patient).exists()
    assert not AssessmentTrigger.objects.exists()
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.BOOKED
    assert stored(mvd).category == C.INSUFFICIENT_DATA


def test_an_assessment_is_not_changed_when_its_outcome_cannot_be_stored(patient, mvd):
    record(patient, -10, spasms_per_day=Decimal(10))
    current = record(patient, 30, spasms_per_day=Decimal(10))

    with outcome_writes_fail():
        with pytest.raises(OutcomeWriteFailed):
            services.assessment_update(assessment=current, spasms_per_day=Decimal(0))
        with pytest.raises(OutcomeWriteFailed):
            services.assessment_retract(assessment=current)

    current.refresh_from_db()
    assert (current.spasms_per_day, current.status) == (Decimal(10), "final")
    assert (stored(mvd).category, stored(mvd).current_id) == (C.UNCHANGED, current.pk)


def test_a_refused_assessment_leaves_the_outcome_alone(patient, mvd):
    record(patient, -10, spasms_per_day=Decimal(10))
    current = record(patient, 30, spasms_per_day=Decimal(10))
    before = TreatmentOutcome.objects.filter(pk=stored(mvd).pk).values().get()

    with pytest.raises(ValidationError):
        services.assessment_update(assessment=current, spasms_per_day=Decimal(0), cohen_albert_grade=9)

    assert TreatmentOutcome.objects.filter(pk=before["id"]).values().get() == before


# --- reading them -------------------------------------------------------------------------------


@pytest.mark.parametrize("treatments", [1, 10])
def test_outcomes_for_a_patient_are_one_query_whatever_their_number(
    patient, diagnosis, treatments, django_assert_num_queries
):
    record(patient, -30, spasms_per_day=Decimal(10))
    for n in range(treatments):
        treatment_for(diagnosis, OTHER, started_on=T0 - timedelta(days=n))
    record(patient, 30, spasms_per_day=Decimal(4))

    with django_assert_num_queries(1):
        rows = [
            (
                o.treatment.started_on,
                o.treatment.kind,
                o.baseline.assessed_on,
                o.current.assessed_on,
                o.category,
            )
            for o in outcomes_for_patient(patient=patient)
        ]

    assert rows == [
        (T0 - timedelta(days=n), OTHER, T0 - timedelta(days=30), T0 + timedelta(days=30), C.IMPROVED)
        for n in reversed(range(treatments))
    ]


def test_outcomes_for_a_patient_leave_out_other_patients_and_retracted_treatments(patient, diagnosis):
    kept = treatment_for(diagnosis, OTHER, started_on=T0)
    retracted = treatment_for(diagnosis, OTHER, started_on=T0)
    record_services.treatment_retract(treatment=retracted)
    treatment_for(diagnosis_for(PatientFactory()), OTHER, started_on=T0)

    assert [o.treatment for o in outcomes_for_patient(patient=patient)] == [kept]
