"""Stored outcomes on PostgreSQL: every change to a patient's assessments or treatments brings the
outcome of each treatment up to date in the same transaction, under rule version 2 (each treatment
read within its episode); a retracted treatment has none and ends no other's episode; the history
shows real changes only; reading them is one query whatever their number."""

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
from followups.outcomes_store import outcomes_recompute
from followups.selectors import outcomes_for_patient
from patients import codes
from patients import services as record_services
from tests.factories import PatientFactory, diagnosis_for, treatment_for

T0 = date(2024, 1, 15)
MVD = codes.TreatmentKind.MVD
MEDICATION = codes.TreatmentKind.MEDICATION
OTHER = codes.TreatmentKind.OTHER
TOXIN = codes.TreatmentKind.BOTULINUM_TOXIN


def record(patient, day, **fields):
    """An assessment ``day`` days after T0, through the service."""
    return services.assessment_record(patient=patient, assessed_on=T0 + timedelta(days=day), **fields)


def stored(treatment):
    return TreatmentOutcome.objects.get(treatment=treatment)


def day(n):
    return T0 + timedelta(days=n)


def history(treatment):
    """The outcome's history, oldest first: (type, category, baseline log's id, current log's id)."""
    return list(
        TreatmentOutcome.history.filter(treatment_id=treatment.pk)
        .order_by("history_date", "history_id")
        .values_list("history_type", "category", "baseline_id", "current_id")
    )


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


def test_a_treatment_without_logs_is_stored_as_insufficient_data_under_rule_version_2(mvd):
    outcome = stored(mvd)

    assert outcome.category == C.INSUFFICIENT_DATA
    assert outcome.rule_version == 2
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
    assert outcome.rule_version == 2


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
    assert outcome.rule_version == 2


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


# --- episodes (rule version 2) ------------------------------------------------------------------


def test_a_later_mvds_cure_is_not_credited_to_a_drug_course_stopped_as_ineffective(patient, diagnosis):
    # The issue: "A drug course stopped as ineffective shows Cured 100 % because a later MVD cured
    # the patient."
    course = treatment_for(diagnosis, MEDICATION, started_on=T0)
    record(patient, -10, spasms_per_day=Decimal(20))
    ineffective = record(patient, 90, spasms_per_day=Decimal(20))
    record_services.treatment_update(
        treatment=course,
        status=codes.TreatmentStatus.STOPPED,
        ended_on=day(90),
        medication={"stop_reason": codes.StopReason.INEFFECTIVE},
    )
    surgery = treatment_for(diagnosis, MVD, started_on=day(120))
    before_surgery = record(patient, 119, spasms_per_day=Decimal(22))
    record(patient, 130, spasms_per_day=Decimal(0))
    cure = record(patient, 300, spasms_per_day=Decimal(0))

    outcome = stored(course)
    assert (outcome.category, outcome.current_id, outcome.spasms_per_day_change_pct) == (
        C.UNCHANGED,
        ineffective.pk,
        0,
    )
    assert outcome.days_to_spasm_free is None
    outcome = stored(surgery)
    assert (outcome.category, outcome.baseline_id, outcome.current_id) == (
        C.DELAYED_CURE,
        before_surgery.pk,
        cure.pk,
    )
    assert (outcome.days_to_spasm_free, outcome.soriano_baron, outcome.rule_version) == (10, SB.EXCELLENT, 2)


def test_the_end_date_of_a_course_ends_its_episode(patient, diagnosis):
    course = treatment_for(diagnosis, MEDICATION, started_on=T0)
    record(patient, -10, spasms_per_day=Decimal(10))
    last = record(patient, 60, spasms_per_day=Decimal(4))
    record(patient, 61, spasms_per_day=Decimal(0))
    assert stored(course).category == C.CURED

    record_services.treatment_update(
        treatment=course, status=codes.TreatmentStatus.COMPLETED, ended_on=day(60)
    )

    assert (stored(course).category, stored(course).current_id) == (C.IMPROVED, last.pk)


def test_a_retracted_later_treatment_ends_no_episode(patient, diagnosis):
    course = treatment_for(diagnosis, MEDICATION, started_on=T0)
    surgery = treatment_for(diagnosis, MVD, started_on=day(100))
    record(patient, -10, spasms_per_day=Decimal(10))
    before_surgery = record(patient, 99, spasms_per_day=Decimal(10))
    later = record(patient, 150, spasms_per_day=Decimal(0))
    assert (stored(course).category, stored(course).current_id) == (C.UNCHANGED, before_surgery.pk)

    record_services.treatment_retract(treatment=surgery)

    outcome = stored(course)
    assert (outcome.category, outcome.current_id, outcome.days_to_spasm_free) == (C.CURED, later.pk, 150)


def test_a_later_toxin_session_ends_the_previous_sessions_episode(patient, diagnosis):
    first = treatment_for(diagnosis, TOXIN, started_on=T0)
    second = treatment_for(diagnosis, TOXIN, started_on=day(30))
    baseline = record(patient, -5, spasms_per_day=Decimal(10))
    first_peak = record(patient, 20, spasms_per_day=Decimal(3))
    second_peak = record(patient, 40, spasms_per_day=Decimal(0))

    assert (stored(first).category, stored(first).baseline_id, stored(first).current_id) == (
        C.IMPROVED,
        baseline.pk,
        first_peak.pk,
    )
    assert (stored(second).category, stored(second).baseline_id, stored(second).current_id) == (
        C.CURED,
        first_peak.pk,
        second_peak.pk,
    )


def test_a_toxin_session_is_read_at_its_peak_and_stores_its_benefit_days(patient, diagnosis):
    session = treatment_for(diagnosis, TOXIN, started_on=T0)
    record(patient, -5, spasms_per_day=Decimal(10))
    peak = record(patient, 42, spasms_per_day=Decimal(2))
    record(patient, 43, spasms_per_day=Decimal(9))
    record(patient, 90, spasms_per_day=Decimal(10))
    outcome = stored(session)
    assert (outcome.category, outcome.current_id, outcome.benefit_days) == (C.IMPROVED, peak.pk, None)

    record_services.treatment_update(treatment=session, botulinum_toxin={"wore_off_on": day(84)})

    assert stored(session).benefit_days == 84


def test_benefit_days_only_for_a_toxin_session(patient, diagnosis, mvd):
    treatment_for(
        diagnosis,
        TOXIN,
        started_on=day(-100),
        botulinum_toxin={
            "product": codes.ToxinProduct.ONABOTULINUMTOXINA,
            "injections": [{"muscle": codes.Muscle.ORBICULARIS_OCULI, "units": "15"}],
            "wore_off_on": day(-10),
        },
    )
    assert stored(mvd).benefit_days is None
    assert TreatmentOutcome.objects.get(treatment__kind=TOXIN, treatment__patient=patient).benefit_days == 90


# --- the history shows real changes only ---------------------------------------------------------


def test_the_history_of_an_outcome_holds_each_change_once(patient, diagnosis, mvd):
    baseline = record(patient, -10, spasms_per_day=Decimal(10))
    current = record(patient, 30, spasms_per_day=Decimal(4))
    computed_at = stored(mvd).computed_at
    record(patient, 31, notes="a note, no measure")
    services.patient_follow_up_refresh(patient=patient)
    outcomes_recompute(patient=patient)

    # Created without logs, changed by the baseline, then by the log of day 30; the note and the
    # refreshes changed nothing, so they left neither a row nor a new computation time.
    assert history(mvd) == [
        ("+", C.INSUFFICIENT_DATA, None, None),
        ("~", C.INSUFFICIENT_DATA, baseline.pk, None),
        ("~", C.IMPROVED, baseline.pk, current.pk),
    ]
    assert stored(mvd).computed_at == computed_at

    record_services.treatment_retract(treatment=mvd)
    assert [row[0] for row in history(mvd)] == ["+", "~", "~", "-"]


@pytest.mark.parametrize("sessions", [1, 10])
def test_a_recompute_reads_in_three_queries_whatever_the_number_of_treatments(
    patient, diagnosis, sessions, django_assert_num_queries
):
    treatment_for(diagnosis, MEDICATION, started_on=day(-400), ended_on=day(-300))
    for n in range(sessions):
        treatment_for(
            diagnosis,
            TOXIN,
            started_on=day(90 * n),
            botulinum_toxin={
                "product": codes.ToxinProduct.ONABOTULINUMTOXINA,
                "injections": [{"muscle": codes.Muscle.ORBICULARIS_OCULI, "units": "15"}],
                "wore_off_on": day(90 * n + 80),
            },
        )
    record(patient, -10, spasms_per_day=Decimal(10))
    record(patient, 20, spasms_per_day=Decimal(3))

    # Assessments, treatments with their toxin details, stored outcomes; nothing changed, nothing written.
    with django_assert_num_queries(3):
        kept = outcomes_recompute(patient=patient)

    assert len(kept) == sessions + 1
    assert [o.benefit_days for o in kept if o.treatment.kind == TOXIN] == [80] * sessions


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
                o.current.assessed_on if o.current else None,
                o.category,
            )
            for o in outcomes_for_patient(patient=patient)
        ]

    # Each treatment's episode ends the day before the next one starts: only the latest reaches day 30.
    assert rows == [
        *(
            (T0 - timedelta(days=n), OTHER, T0 - timedelta(days=30), None, C.INSUFFICIENT_DATA)
            for n in reversed(range(1, treatments))
        ),
        (T0, OTHER, T0 - timedelta(days=30), T0 + timedelta(days=30), C.IMPROVED),
    ]


def test_outcomes_for_a_patient_leave_out_other_patients_and_retracted_treatments(patient, diagnosis):
    kept = treatment_for(diagnosis, OTHER, started_on=T0)
    retracted = treatment_for(diagnosis, OTHER, started_on=T0)
    record_services.treatment_retract(treatment=retracted)
    treatment_for(diagnosis_for(PatientFactory()), OTHER, started_on=T0)

    assert [o.treatment for o in outcomes_for_patient(patient=patient)] == [kept]
