"""Planning of protocol visits (DOMAIN.md section 5 as seeded in followups/protocol_defaults.py).

Treatments are recorded through the services, so every plan here is the one the clinic gets in
the transaction of the write. Dates count from the clinic's today.
"""

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from followups import services as followups
from followups.codes import VisitStatus
from followups.models import ProtocolStep, Visit
from followups.planning import visits_plan_for
from followups.tasks import followups_daily
from patients import codes
from patients import services as record
from patients.models import Treatment
from tests.factories import PatientFactory, diagnosis_for
from tests.followups.conftest import (
    at_clinic,
    book,
    complete,
    days,
    expected,
    live,
    local,
    plan,
    protocol_visits,
    record_course,
    record_log,
    record_mvd,
    record_toxin,
    snapshot,
    visit_history_count,
)

CARBAMAZEPINE, OXCARBAZEPINE = codes.Drug.CARBAMAZEPINE, codes.Drug.OXCARBAZEPINE

MVD_PLAN = [
    ("day-10", 10, 3, 4),
    ("day-30", 30, 7, 7),
    ("day-90", 90, 7, 7),
    ("day-180", 180, 30, 30),
    ("day-365", 365, 30, 30),
    ("day-730", 730, 30, 30),
    ("yearly", 1095, 30, 30),
    ("yearly", 1460, 30, 30),
    ("yearly", 1825, 30, 30),
]


def assert_plans_the_same_twice(patient):
    """Planning again (directly, and through a full refresh of the patient) changes no row."""
    before, history = snapshot(patient), visit_history_count(patient)

    assert not visits_plan_for(patient=patient).changed
    followups.patient_follow_up_refresh(patient=patient)

    assert snapshot(patient) == before
    assert visit_history_count(patient) == history


# --- each protocol, day by day -----------------------------------------------------------------


def test_an_mvd_plans_the_seeded_schedule_to_year_five(recent_diagnosis, today):
    surgery = record_mvd(recent_diagnosis, today)

    visits = live(surgery)
    assert plan(visits) == expected(today, *MVD_PLAN)
    assert {v.status for v in visits} == {VisitStatus.PLANNED}
    assert [v.purpose for v in visits][:2] == ["Facial nerve check (day 10)", "Review (day 30)"]
    assert all(v.patient_id == surgery.patient_id and v.anchor_on == today for v in visits)
    assert all(v.diagnosis_id == recent_diagnosis.pk for v in visits)
    assert_plans_the_same_twice(surgery.patient)


def test_a_toxin_session_plans_a_review_at_day_21_and_a_reinjection_at_day_84(recent_diagnosis, today):
    session = record_toxin(recent_diagnosis, today)

    assert plan(live(session)) == expected(today, ("day-21", 21, 7, 7), ("reinjection", 84, 0, 21))
    assert_plans_the_same_twice(session.patient)


def test_a_carbamazepine_course_plans_titration_reviews_and_blood_counts(recent_diagnosis, today):
    course = record_course(recent_diagnosis, today, drug=CARBAMAZEPINE)

    # Reviews at day 14 and 28, then day 28 + 90k; blood counts every 90 days; open series run
    # two intervals (180 days) past today.
    assert plan(live(course)) == expected(
        today,
        ("titration-14", 14, 3, 3),
        ("titration-28", 28, 7, 7),
        ("lab-blood-count", 90, 14, 14),
        ("review-90", 118, 14, 14),
        ("lab-blood-count", 180, 14, 14),
    )
    assert_plans_the_same_twice(course.patient)


def test_an_oxcarbazepine_course_plans_sodium_checks_instead_of_blood_counts(recent_diagnosis, today):
    course = record_course(recent_diagnosis, today, drug=OXCARBAZEPINE, dose="600")

    assert plan(live(course)) == expected(
        today,
        ("titration-14", 14, 3, 3),
        ("titration-28", 28, 7, 7),
        ("lab-sodium", 90, 14, 14),
        ("review-90", 118, 14, 14),
        ("lab-sodium", 180, 14, 14),
    )
    assert [v.purpose for v in live(course) if v.protocol_step.code == "lab-sodium"] == [
        "Sodium (every 90 days)"
    ] * 2


def test_a_drug_without_laboratory_monitoring_plans_reviews_only(recent_diagnosis, today):
    course = record_course(recent_diagnosis, today, drug=codes.Drug.CLONAZEPAM, dose="2")

    assert [code for code, *_ in plan(live(course))] == ["titration-14", "titration-28", "review-90"]


def test_a_course_under_way_gets_only_what_is_still_ahead_up_to_two_intervals(recent_diagnosis, today):
    course = record_course(recent_diagnosis, today - days(200))

    start = today - days(200)
    # Reviews at 118 (window closed), 208, 298; 388 is past today + 180. Blood counts at 90 and
    # 180 (windows closed), 270 and 360; 450 is past the horizon.
    assert plan(live(course)) == expected(
        start,
        ("review-90", 208, 14, 14),
        ("lab-blood-count", 270, 14, 14),
        ("review-90", 298, 14, 14),
        ("lab-blood-count", 360, 14, 14),
    )


def test_the_daily_roll_adds_the_next_visits_of_an_open_series_as_the_horizon_moves(recent_diagnosis, today):
    course = record_course(recent_diagnosis, today)
    before = {v.pk for v in live(course)}

    rolled = visits_plan_for(patient=course.patient, today=today + days(30), extend_only=True)

    # today + 30 + 180 = day 210: the review of day 208 comes in; the blood count of day 270 not yet.
    assert [(v.protocol_step.code, v.protocol_day) for v in rolled.created] == [("review-90", 208)]
    assert rolled.cancelled == []
    assert {v.pk for v in live(course)} >= before
    assert not visits_plan_for(patient=course.patient, today=today + days(30), extend_only=True).changed


@pytest.mark.parametrize(
    ("diagnosed_days_ago", "planned_days"),
    [
        (0, [180, 360]),
        (100, [180, 360]),
        # Day 180's window closes at day 210: still open 209 days on, closed 211 days on.
        (209, [180, 360, 540]),
        (211, [360, 540]),
    ],
)
def test_a_diagnosed_untreated_patient_is_reviewed_every_180_days(
    patient, today, diagnosed_days_ago, planned_days
):
    diagnosed_on = today - days(diagnosed_days_ago)
    diagnosis = diagnosis_for(patient, diagnosed_on=diagnosed_on)

    visits = live(patient=patient)
    assert plan(visits) == expected(diagnosed_on, *(("review-180", day, 30, 30) for day in planned_days))
    assert all(v.diagnosis_id == diagnosis.pk and v.treatment_id is None for v in visits)
    assert_plans_the_same_twice(patient)


def test_a_refuted_diagnosis_has_no_reviews(patient, today):
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(10))
    assert len(live(patient=patient)) == 2

    record.diagnosis_update(diagnosis=diagnosis, status=codes.DiagnosisStatus.REFUTED)

    assert live(patient=patient) == []
    assert {v.cancel_reason for v in protocol_visits(patient=patient)} == {
        "The diagnosis was refuted or entered in error."
    }


# --- what is not created -----------------------------------------------------------------------


@pytest.mark.parametrize(("days_ago", "has_day_90"), [(97, True), (98, False)])
def test_a_visit_whose_window_already_closed_is_not_created(recent_diagnosis, today, days_ago, has_day_90):
    surgery = record_mvd(recent_diagnosis, today - days(days_ago))

    planned = [day for _, day, *_ in plan(live(surgery))]
    # Day 90's window closes on day 97; days 10 and 30 closed long ago.
    assert planned == ([90] if has_day_90 else []) + [180, 365, 730, 1095, 1460, 1825]


def test_an_old_treatment_recorded_today_plans_nothing_that_is_over(recent_diagnosis, today):
    surgery = record_mvd(recent_diagnosis, date(2015, 6, 1))

    assert live(surgery) == []
    assert Visit.objects.filter(treatment=surgery).count() == 0


# --- changes to the record ---------------------------------------------------------------------


def test_stopping_a_course_cancels_its_planned_visits_and_keeps_completed_and_booked_ones(
    recent_diagnosis, today
):
    course = record_course(recent_diagnosis, today - days(20))
    titration, lab_90, review, lab_180 = live(course)
    assert [v.protocol_day for v in (titration, lab_90, review, lab_180)] == [28, 90, 118, 180]
    complete(titration)
    book(lab_90, at_clinic(today + days(72)))

    record.treatment_update(
        treatment=course,
        status=codes.TreatmentStatus.STOPPED,
        ended_on=today,
        medication={"stop_reason": codes.StopReason.INEFFECTIVE},
    )

    by_day = {v.protocol_day: v for v in protocol_visits(course)}
    assert {day: v.status for day, v in by_day.items()} == {
        28: VisitStatus.COMPLETED,
        90: VisitStatus.BOOKED,
        118: VisitStatus.CANCELLED,
        180: VisitStatus.CANCELLED,
    }
    assert by_day[118].cancel_reason == by_day[180].cancel_reason == "The treatment was stopped."
    assert by_day[90].cancel_reason == ""
    assert_plans_the_same_twice(course.patient)


def test_a_course_with_an_end_date_keeps_visits_up_to_that_day_only(recent_diagnosis, today):
    course = record_course(recent_diagnosis, today)

    record.treatment_update(treatment=course, ended_on=today + days(118))

    statuses = {(v.protocol_step.code, v.protocol_day): v.status for v in protocol_visits(course)}
    assert statuses == {
        ("titration-14", 14): VisitStatus.PLANNED,
        ("titration-28", 28): VisitStatus.PLANNED,
        ("lab-blood-count", 90): VisitStatus.PLANNED,
        ("review-90", 118): VisitStatus.PLANNED,
        ("lab-blood-count", 180): VisitStatus.CANCELLED,
    }
    assert protocol_visits(course, statuses=[VisitStatus.CANCELLED])[0].cancel_reason == "The course ended."


def test_retracting_a_treatment_cancels_its_planned_and_booked_visits_but_not_completed_ones(
    recent_diagnosis, today
):
    surgery = record_mvd(recent_diagnosis, today - days(20))
    day_30, day_90, *later = live(surgery)
    complete(day_30)
    book(day_90, at_clinic(today + days(71)))

    record.treatment_retract(treatment=surgery)

    visits = protocol_visits(surgery)
    assert [(v.protocol_day, v.status) for v in visits[:2]] == [
        (30, VisitStatus.COMPLETED),
        (90, VisitStatus.CANCELLED),
    ]
    assert len(later) == 6
    assert {v.status for v in visits[1:]} == {VisitStatus.CANCELLED}
    assert {v.cancel_reason for v in visits[1:]} == {"The treatment was entered in error."}
    assert_plans_the_same_twice(surgery.patient)


def test_a_new_toxin_session_cancels_the_earlier_cycle_from_its_date(recent_diagnosis, today):
    first = record_toxin(recent_diagnosis, today - days(20))
    review, reinjection = live(first)
    assert (review.protocol_day, reinjection.protocol_day) == (21, 84)

    second = record_toxin(recent_diagnosis, today + days(5))

    # The review of day 21 (today + 1) comes before the new session and stays; the
    # re-injection visit of the first cycle (today + 64) is replaced by the new cycle.
    review.refresh_from_db()
    reinjection.refresh_from_db()
    assert review.status == VisitStatus.PLANNED
    assert reinjection.status == VisitStatus.CANCELLED
    assert reinjection.cancel_reason == f"A toxin session on {today + days(5)} started a new cycle."
    assert plan(live(second)) == expected(today + days(5), ("day-21", 21, 7, 7), ("reinjection", 84, 0, 21))
    assert_plans_the_same_twice(first.patient)


@pytest.mark.parametrize(("next_session_in", "review_kept"), [(1, False), (2, True)])
def test_a_visit_on_the_day_of_the_new_session_is_part_of_the_old_cycle_no_more(
    recent_diagnosis, today, next_session_in, review_kept
):
    first = record_toxin(recent_diagnosis, today - days(20))  # its review falls on today + 1

    record_toxin(recent_diagnosis, today + days(next_session_in))

    assert [v.protocol_day for v in live(first)] == ([21] if review_kept else [])


def test_a_new_toxin_session_leaves_a_booked_visit_of_the_earlier_cycle_booked(recent_diagnosis, today):
    first = record_toxin(recent_diagnosis, today - days(20))
    _, reinjection = live(first)
    book(reinjection, at_clinic(today + days(64)))

    record_toxin(recent_diagnosis, today + days(5))

    reinjection.refresh_from_db()
    assert reinjection.status == VisitStatus.BOOKED


def test_retracting_the_later_toxin_session_brings_the_earlier_cycle_back(recent_diagnosis, today):
    first = record_toxin(recent_diagnosis, today - days(20))
    second = record_toxin(recent_diagnosis, today + days(5))
    assert [v.protocol_day for v in live(first)] == [21]

    record.treatment_retract(treatment=second)

    assert plan(live(first)) == expected(today - days(20), ("day-21", 21, 7, 7), ("reinjection", 84, 0, 21))
    assert live(second) == []
    # The cancelled visit stays on the record beside the one planned again.
    assert len(protocol_visits(first, statuses=[VisitStatus.CANCELLED])) == 1


def test_recording_a_treatment_cancels_the_untreated_reviews_but_not_a_booked_one(patient, today):
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(100))
    first_review, second_review = live(patient=patient)
    book(first_review, at_clinic(today + days(80)))

    treatment = record_toxin(diagnosis, today)

    first_review.refresh_from_db()
    second_review.refresh_from_db()
    assert first_review.status == VisitStatus.BOOKED
    assert (second_review.status, second_review.cancel_reason) == (
        VisitStatus.CANCELLED,
        "A treatment was recorded.",
    )

    record.treatment_retract(treatment=treatment)

    # Untreated again: the review series is planned again beside the booked visit.
    reviews = [v for v in live(patient=patient) if v.treatment_id is None]
    assert [(v.protocol_day, v.status) for v in reviews] == [
        (180, VisitStatus.BOOKED),
        (360, VisitStatus.PLANNED),
    ]


def test_a_treatment_of_one_diagnosis_leaves_the_reviews_of_another_untreated_one(patient, today):
    left = diagnosis_for(patient, diagnosed_on=today - days(100))
    right = diagnosis_for(patient, diagnosed_on=today - days(50), side=codes.Side.RIGHT)

    record_toxin(left, today)

    assert {v.diagnosis_id for v in live(patient=patient) if v.treatment_id is None} == {right.pk}


def test_a_dose_change_re_anchors_the_titration_reviews_but_not_the_laboratory_checks(
    recent_diagnosis, today
):
    start = today - days(60)
    course = record_course(recent_diagnosis, start)
    old = live(course)
    assert plan(old) == expected(
        start,
        ("lab-blood-count", 90, 14, 14),
        ("review-90", 118, 14, 14),
        ("lab-blood-count", 180, 14, 14),
        ("review-90", 208, 14, 14),
    )

    record.treatment_update(treatment=course, medication={"daily_dose_mg": Decimal("600")})

    assert Treatment.objects.get(pk=course.pk).medication.dose_changed_on == today
    reviews = [v for v in live(course) if not v.protocol_step.code.startswith("lab-")]
    assert plan(reviews) == expected(
        today, ("titration-14", 14, 3, 3), ("titration-28", 28, 7, 7), ("review-90", 118, 14, 14)
    )
    labs = [v for v in live(course) if v.protocol_step.code.startswith("lab-")]
    assert {v.pk for v in labs} == {old[0].pk, old[2].pk}
    cancelled = protocol_visits(course, statuses=[VisitStatus.CANCELLED])
    assert {v.pk for v in cancelled} == {old[1].pk, old[3].pk}
    assert {v.cancel_reason for v in cancelled} == {"The plan changed (dates, dose or protocol)."}
    assert_plans_the_same_twice(course.patient)


def test_a_facial_palsy_after_mvd_adds_21_day_reviews_until_grade_one(recent_diagnosis, today):
    patient = recent_diagnosis.patient
    surgery = record_mvd(recent_diagnosis, today - days(20))
    assert [v for v in live(surgery) if v.protocol_step.code == "palsy-review"] == []

    record_log(patient, today - days(5), house_brackmann_grade=3)

    def palsy_reviews():
        return [v for v in live(surgery) if v.protocol_step.code == "palsy-review"]

    # Every 21 days from the assessment that found the palsy, two intervals past today.
    assert plan(palsy_reviews()) == expected(
        today - days(5), ("palsy-review", 21, 7, 7), ("palsy-review", 42, 7, 7)
    )
    assert palsy_reviews()[0].purpose == "Facial nerve review"

    record_log(patient, today, house_brackmann_grade=2)
    assert plan(palsy_reviews()) == expected(today, ("palsy-review", 21, 7, 7), ("palsy-review", 42, 7, 7))

    record_log(patient, today, house_brackmann_grade=1)
    assert palsy_reviews() == []
    assert len(protocol_visits(surgery, statuses=[VisitStatus.CANCELLED])) == 4
    # The main schedule is not disturbed by the palsy.
    assert [v.protocol_day for v in live(surgery)] == [30, 90, 180, 365, 730, 1095, 1460, 1825]


def test_a_palsy_graded_before_surgery_plans_no_palsy_review(patient, today):
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(60))
    record_log(patient, today - days(30), house_brackmann_grade=4)

    surgery = record_mvd(diagnosis, today - days(20))

    assert not any(v.protocol_step.code == "palsy-review" for v in live(surgery))


def test_a_palsy_graded_after_a_toxin_session_plans_no_palsy_review(recent_diagnosis, today):
    session = record_toxin(recent_diagnosis, today - days(10))

    record_log(recent_diagnosis.patient, today - days(1), house_brackmann_grade=3)

    assert [v.protocol_step.code for v in live(patient=recent_diagnosis.patient)] == ["day-21", "reinjection"]
    assert [v.treatment_id for v in live(patient=recent_diagnosis.patient)] == [session.pk] * 2


def test_planning_never_touches_a_manual_visit(recent_diagnosis, today):
    course = record_course(recent_diagnosis, today)
    manual = followups.visit_create(
        patient=course.patient,
        treatment=course,
        purpose="Extra check by phone",
        scheduled_for=at_clinic(today + days(3)),
        status=VisitStatus.PLANNED,
    )
    before = snapshot(course.patient)

    assert not visits_plan_for(patient=course.patient).changed
    record.treatment_retract(treatment=course)

    manual.refresh_from_db()
    assert (manual.status, manual.cancel_reason) == (VisitStatus.PLANNED, "")
    assert [row for row in snapshot(course.patient) if row[0] == manual.pk] == [
        row for row in before if row[0] == manual.pk
    ]
    assert live(course) == []


def test_archiving_a_patient_cancels_planned_and_booked_visits_and_restoring_plans_again(
    recent_diagnosis, today
):
    patient = recent_diagnosis.patient
    surgery = record_mvd(recent_diagnosis, today - days(20))
    day_30, day_90, *_ = live(surgery)
    complete(day_30)
    book(day_90, at_clinic(today + days(70)))

    record.patient_archive(patient=patient)

    assert live(patient=patient) == [Visit.objects.get(pk=day_30.pk)]
    cancelled = protocol_visits(patient=patient, statuses=[VisitStatus.CANCELLED])
    assert day_90.pk in {v.pk for v in cancelled}
    assert {v.cancel_reason for v in cancelled if v.treatment_id} == {"The patient was archived."}

    record.patient_restore(patient=patient)

    assert [v.protocol_day for v in live(surgery)] == [30, 90, 180, 365, 730, 1095, 1460, 1825]
    assert [v.status for v in live(surgery)][:2] == [VisitStatus.COMPLETED, VisitStatus.PLANNED]


# --- time zones --------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/Berlin"])
def test_a_daylight_saving_change_does_not_move_the_local_time_of_a_visit(settings, patient, today, zone):
    settings.CLINIC_TIME_ZONE = zone
    settings.CLINIC_VISIT_HOUR = 8
    diagnosis = diagnosis_for(patient, diagnosed_on=today - days(10))
    next_year = today.year + 1
    # Visits from February to May cross the March change; from October to December the
    # October/November one.
    spring = record_mvd(diagnosis, date(next_year, 2, 20))
    autumn = record_toxin(diagnosis, date(next_year, 10, 1))

    for treatment in (spring, autumn):
        visits = live(treatment)
        assert len({v.scheduled_for.utcoffset() for v in visits}) == 1  # stored in UTC
        assert all((local(v.scheduled_for).hour, local(v.scheduled_for).minute) == (8, 0) for v in visits)
        assert all(local(v.scheduled_for).date() == v.anchor_on + days(v.protocol_day) for v in visits)
        offsets = {local(v.scheduled_for).utcoffset() for v in visits}
        assert len(offsets) == 2, f"{zone}: the visits of {treatment} do not straddle a change"


def test_the_clinic_visit_hour_and_zone_come_from_settings(settings, recent_diagnosis, today):
    settings.CLINIC_TIME_ZONE = "Asia/Tokyo"
    settings.CLINIC_VISIT_HOUR = 14

    session = record_toxin(recent_diagnosis, today)

    for visit in live(session):
        tokyo = visit.scheduled_for.astimezone(ZoneInfo("Asia/Tokyo"))
        assert (tokyo.date(), tokyo.hour, tokyo.utcoffset()) == (
            visit.anchor_on + days(visit.protocol_day),
            14,
            days(0) + timedelta(hours=9),
        )


# --- protocols are data --------------------------------------------------------------------------


def test_editing_a_step_changes_future_planning_only(make_patient, today):
    earlier, earlier_diagnosis = make_patient()
    surgery = record_mvd(earlier_diagnosis, today - days(5))
    before = snapshot(earlier)
    step = ProtocolStep.objects.get(protocol__code="mvd", code="day-30")
    step.offset_days = 40
    step.save()
    window = ProtocolStep.objects.get(protocol__code="mvd", code="day-90")
    window.window_before_days = window.window_after_days = 10
    window.save()

    # The daily roll neither cancels nor adds to the plan already made.
    followups_daily()
    assert not visits_plan_for(patient=earlier, extend_only=True).changed
    assert snapshot(earlier) == before
    assert [v.protocol_day for v in live(surgery)][:3] == [10, 30, 90]

    later, later_diagnosis = make_patient()
    new_surgery = record_mvd(later_diagnosis, today)
    assert plan(live(new_surgery))[:3] == expected(
        today, ("day-10", 10, 3, 4), ("day-30", 40, 7, 7), ("day-90", 90, 10, 10)
    )

    # A change to the earlier patient's record re-plans them under the steps as they are now.
    record.treatment_update(treatment=surgery, notes="seen by the anaesthetist")
    replanned = live(surgery)
    assert [v.protocol_day for v in replanned][:3] == [10, 40, 90]
    assert replanned[2].window_start == today - days(5) + days(90 - 7)  # an unchanged key keeps its visit


def test_after_an_interval_is_edited_the_roll_extends_a_series_only_past_its_latest_visit(
    recent_diagnosis, today
):
    course = record_course(recent_diagnosis, today)
    visits_plan_for(patient=course.patient, today=today + days(30), extend_only=True)
    assert [v.protocol_day for v in live(course) if v.protocol_step.code == "review-90"] == [118, 208]
    step = ProtocolStep.objects.get(protocol__code="medication", code="review-90")
    step.repeat_every_days = 60
    step.save()

    # Every 60 days now asks for day 178, which would fall between the two planned reviews; the
    # blood counts, not edited, roll on as before.
    rolled = visits_plan_for(patient=course.patient, today=today + days(90), extend_only=True)
    assert [(v.protocol_step.code, v.protocol_day) for v in rolled.created] == [("lab-blood-count", 270)]

    rolled = visits_plan_for(patient=course.patient, today=today + days(120), extend_only=True)
    assert [(v.protocol_step.code, v.protocol_day) for v in rolled.created] == [("review-90", 238)]


def test_the_daily_task_closes_windows_and_refreshes_every_patient_in_follow_up(make_patient, today):
    patient, diagnosis = make_patient()
    course = record_course(diagnosis, today - days(30))
    past = followups.visit_create(
        patient=patient, purpose="Phone check", scheduled_for=at_clinic(today - days(2))
    )
    PatientFactory()  # no diagnosis: refreshed too (nothing to plan; flags turn by date)
    archived, _ = make_patient()
    record.patient_archive(patient=archived)

    result = followups_daily()

    assert result == {"patients": 2, "refreshed": 2}
    assert Visit.objects.get(pk=past.pk).status == VisitStatus.MISSED
    assert [(v.protocol_step.code, v.protocol_day) for v in live(course)] == [
        ("titration-28", 28),
        ("lab-blood-count", 90),
        ("review-90", 118),
        ("lab-blood-count", 180),
        ("review-90", 208),
    ]


def test_a_toxin_session_that_was_stopped_does_not_end_the_earlier_cycle(recent_diagnosis, today):
    first = record_toxin(recent_diagnosis, today - days(20))
    second = record_toxin(recent_diagnosis, today + days(5))
    assert [v.protocol_day for v in live(first)] == [21]

    # The injection was called off: the patient still needs the first cycle's re-injection visit.
    record.treatment_update(treatment=second, status=codes.TreatmentStatus.STOPPED)

    assert plan(live(first)) == expected(today - days(20), ("day-21", 21, 7, 7), ("reinjection", 84, 0, 21))
    assert live(second) == []
