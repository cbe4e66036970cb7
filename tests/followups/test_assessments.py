"""Assessments (DOMAIN.md section 3) through their services, and the database's own refusals.

Every range comes back from the service as a field message, and the database refuses the same row
written around the service. The HFS-7 and Jankovic totals are the database's to derive. Recording at
a visit completes it; a refused write leaves nothing behind.
"""

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from followups import services
from followups.codes import (
    AdverseEffect,
    AssessmentSource,
    AssessmentStatus,
    Trigger,
    VisitMoveError,
    VisitStatus,
)
from followups.models import Assessment, AssessmentAdverseEffect, AssessmentTrigger, Visit
from patients import codes as record_codes
from patients import services as record_services
from tests.factories import PatientFactory, treatment_for
from tests.followups.conftest import cancel, mark_missed

BIRTH = date(1968, 5, 17)
ON = date(2024, 3, 1)
HFS7 = tuple(f"hfs7_item_{n}" for n in range(1, 8))
ALL_HFS7 = dict.fromkeys(HFS7, 2)


def follow_up_counts():
    """Rows of every table of follow-up and of the clinical record, history tables included."""
    models = [
        *apps.get_app_config("followups").get_models(),
        *apps.get_app_config("patients").get_models(),
    ]
    return {m._meta.label: m._default_manager.count() for m in models}


def refused(call, expected):
    """Call a service that must refuse: exactly the ``expected`` fields get these messages (None: any
    message), and nothing at all is written."""
    before = follow_up_counts()
    with pytest.raises(ValidationError) as error:
        call()
    assert follow_up_counts() == before
    messages = error.value.message_dict
    assert set(messages) == set(expected), messages
    for field, message in expected.items():
        assert message is None or message in messages[field], messages[field]
    return messages


def refused_by_database(make, *constraints):
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        make()
    assert any(constraint in str(error.value) for constraint in constraints), str(error.value)


def record(patient, **fields):
    return services.assessment_record(patient=patient, **({"assessed_on": ON} | fields))


def at(day, hour=9):
    return datetime(day.year, day.month, day.day, hour, tzinfo=ZoneInfo("Europe/Paris"))


def manual_visit(patient, status=VisitStatus.BOOKED, day=ON):
    return services.visit_create(patient=patient, purpose="Review", scheduled_for=at(day), status=status)


def codes_of(assessment):
    return (
        sorted(assessment.trigger_rows.values_list("trigger", flat=True)),
        sorted(assessment.adverse_effect_rows.values_list("adverse_effect", flat=True)),
    )


# --- recording ----------------------------------------------------------------------------------


def test_an_assessment_with_every_measure_is_stored_with_its_derived_totals(patient):
    assessment = record(
        patient,
        spasms_per_day=Decimal("12.5"),
        episode_duration_seconds=Decimal("4.5"),
        cohen_albert_grade=3,
        contraction_pattern="mixed",
        smc_grade=2,
        jankovic_severity=3,
        jankovic_frequency=4,
        jankovic_anchors="hfs_adapted",
        house_brackmann_grade=1,
        **{item: n % 5 for n, item in enumerate(HFS7, start=1)},
        notes="Worse when tired.",
        triggers=[Trigger.STRESS, Trigger.FATIGUE],
        adverse_effects=[AdverseEffect.PTOSIS],
    )

    # the returned object already carries what the database derived
    assert (assessment.jankovic_total, assessment.hfs7_total) == (7, 1 + 2 + 3 + 4 + 0 + 1 + 2)
    stored = Assessment.objects.get(pk=assessment.pk)
    assert (stored.patient, stored.assessed_on, stored.status) == (patient, ON, AssessmentStatus.FINAL)
    assert (stored.spasms_per_day, stored.episode_duration_seconds) == (Decimal("12.50"), Decimal("4.5"))
    assert (stored.cohen_albert_grade, stored.smc_grade, stored.house_brackmann_grade) == (3, 2, 1)
    assert (stored.jankovic_total, stored.hfs7_total) == (7, 13)
    assert codes_of(stored) == (["fatigue", "stress"], ["ptosis"])
    assert [row.history_type for row in stored.history.all()] == ["+"]


def test_every_measure_is_optional_and_the_totals_then_empty(patient):
    assessment = record(patient)

    stored = Assessment.objects.get(pk=assessment.pk)
    assert stored.spasms_per_day is None and stored.cohen_albert_grade is None
    assert (stored.jankovic_total, stored.hfs7_total) == (None, None)
    assert codes_of(stored) == ([], [])


def test_the_jankovic_total_needs_both_parts(patient):
    assert record(patient, jankovic_severity=2).jankovic_total is None
    assert record(patient, jankovic_frequency=2).jankovic_total is None
    assert record(patient, jankovic_severity=0, jankovic_frequency=0).jankovic_total == 0
    assert record(patient, jankovic_severity=4, jankovic_frequency=4).jankovic_total == 8


@pytest.mark.parametrize(
    ("field", "low", "high"),
    [
        ("cohen_albert_grade", 0, 4),
        ("smc_grade", 1, 4),
        ("jankovic_severity", 0, 4),
        ("jankovic_frequency", 0, 4),
        ("house_brackmann_grade", 1, 6),
    ],
)
def test_each_grade_is_taken_at_both_ends_of_its_range(patient, field, low, high):
    assert getattr(record(patient, **{field: low}), field) == low
    assert getattr(record(patient, **{field: high}), field) == high


def test_hfs7_answers_are_taken_at_both_ends_of_their_range(patient):
    assert record(patient, **dict.fromkeys(HFS7, 0)).hfs7_total == 0
    assert record(patient, **dict.fromkeys(HFS7, 4)).hfs7_total == 28


def test_no_spasm_and_no_duration_are_measures(patient):
    assessment = record(patient, spasms_per_day=0, episode_duration_seconds=0)
    assert (assessment.spasms_per_day, assessment.episode_duration_seconds) == (0, 0)


# --- ranges: refused by the service with a field message ----------------------------------------

OUT_OF_RANGE = [
    ("cohen_albert_grade", 5, "Give a value from 0 to 4."),
    ("cohen_albert_grade", -1, "Give a value from 0 to 4."),
    ("smc_grade", 0, "Give a value from 1 to 4."),
    ("smc_grade", 5, "Give a value from 1 to 4."),
    ("jankovic_severity", 5, "Give a value from 0 to 4."),
    ("jankovic_frequency", 5, "Give a value from 0 to 4."),
    ("house_brackmann_grade", 0, "Give a value from 1 to 6."),
    ("house_brackmann_grade", 7, "Give a value from 1 to 6."),
    ("spasms_per_day", Decimal("-0.01"), "This cannot be negative."),
    ("episode_duration_seconds", Decimal("-0.5"), "This cannot be negative."),
]


@pytest.mark.parametrize(("field", "value", "message"), OUT_OF_RANGE)
def test_a_measure_out_of_range_is_refused_with_a_field_message(patient, field, value, message):
    refused(lambda: record(patient, **{field: value}), {field: message})


@pytest.mark.parametrize("item", HFS7)
@pytest.mark.parametrize("value", [5, -1])
def test_an_hfs7_answer_out_of_range_is_refused_on_its_item(patient, item, value):
    refused(lambda: record(patient, **(ALL_HFS7 | {item: value})), {item: "Give a value from 0 to 4."})


def test_a_grade_given_as_text_is_checked_after_conversion(patient):
    refused(
        lambda: record(patient, cohen_albert_grade="5"), {"cohen_albert_grade": "Give a value from 0 to 4."}
    )
    assert record(patient, cohen_albert_grade="4").cohen_albert_grade == 4


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("spasms_per_day", "many"),
        ("spasms_per_day", Decimal("1.234")),
        ("cohen_albert_grade", "severe"),
        ("contraction_pattern", "jerky"),
        ("jankovic_anchors", "modern"),
    ],
)
def test_a_malformed_measure_is_a_field_message_not_a_crash(patient, field, value):
    refused(lambda: record(patient, **{field: value}), {field: None})


@pytest.mark.parametrize(
    ("field", "value"),
    [
        *(
            (field, value)
            for field in ("spasms_per_day", "episode_duration_seconds", "cohen_albert_grade", "smc_grade")
            for value in (Decimal("NaN"), Decimal("sNaN"), float("nan"))
        ),
        ("spasms_per_day", Decimal("-Infinity")),
        ("episode_duration_seconds", float("-inf")),
    ],
)
def test_a_measure_that_is_not_a_finite_number_is_a_field_message(patient, field, value):
    refused(lambda: record(patient, **{field: value}), {field: None})


def test_every_error_is_reported_at_once(patient):
    refused(
        lambda: record(
            patient,
            assessed_on=BIRTH - timedelta(days=1),
            cohen_albert_grade=7,
            smc_grade=0,
            spasms_per_day=-1,
            hfs7_item_1=2,
            triggers=["boredom"],
        ),
        {
            "assessed_on": "This date is before the patient's date of birth.",
            "cohen_albert_grade": "Give a value from 0 to 4.",
            "smc_grade": "Give a value from 1 to 4.",
            "spasms_per_day": "This cannot be negative.",
            "hfs7_items": "Answer all seven HFS-7 items, or none.",
            "triggers": "Unknown code(s): boredom.",
        },
    )


# --- HFS-7 and the derived totals ---------------------------------------------------------------


@pytest.mark.parametrize("answered", [1, 6])
def test_hfs7_is_answered_whole_or_not_at_all(patient, answered):
    partial = dict.fromkeys(HFS7[:answered], 1)
    refused(lambda: record(patient, **partial), {"hfs7_items": "Answer all seven HFS-7 items, or none."})


def test_an_update_cannot_leave_hfs7_half_answered(patient):
    assessment = record(patient, **ALL_HFS7)
    refused(
        lambda: services.assessment_update(assessment=assessment, hfs7_item_4=None),
        {"hfs7_items": "Answer all seven HFS-7 items, or none."},
    )
    updated = services.assessment_update(assessment=assessment, **dict.fromkeys(HFS7))
    assert Assessment.objects.get(pk=updated.pk).hfs7_total is None


@pytest.mark.parametrize("total", ["hfs7_total", "jankovic_total"])
def test_a_total_is_never_entered_through_the_service(patient, total):
    with pytest.raises(TypeError, match=total):
        record(patient, **ALL_HFS7, jankovic_severity=1, jankovic_frequency=1, **{total: 3})
    assessment = record(patient)
    with pytest.raises(TypeError, match=total):
        services.assessment_update(assessment=assessment, **{total: 3})
    assert not Assessment.objects.exclude(pk=assessment.pk).exists()


def test_the_totals_follow_the_answers_when_they_change(patient):
    assessment = record(patient, **ALL_HFS7, jankovic_severity=1, jankovic_frequency=1)
    assert (assessment.hfs7_total, assessment.jankovic_total) == (14, 2)

    updated = services.assessment_update(assessment=assessment, hfs7_item_7=4, jankovic_severity=3)

    assert (updated.hfs7_total, updated.jankovic_total) == (16, 4)
    assert Assessment.objects.filter(hfs7_total=16, jankovic_total=4).get() == assessment


def test_the_database_derives_the_totals_whatever_is_written_for_them(patient):
    assessment = Assessment.objects.create(
        patient=patient, assessed_on=ON, **ALL_HFS7, jankovic_severity=1, jankovic_frequency=2, hfs7_total=27
    )
    assessment.refresh_from_db()
    assert (assessment.hfs7_total, assessment.jankovic_total) == (14, 3)

    for total in ("hfs7_total", "jankovic_total"):
        with (
            pytest.raises(DatabaseError, match="can only be updated to DEFAULT"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(f"UPDATE followups_assessment SET {total} = 1 WHERE id = %s", [assessment.pk])
    assessment.refresh_from_db()
    assert (assessment.hfs7_total, assessment.jankovic_total) == (14, 3)


# --- dates --------------------------------------------------------------------------------------


def test_assessed_on_the_day_of_birth_or_today_is_taken(patient):
    assert record(patient, assessed_on=BIRTH).assessed_on == BIRTH
    assert record(patient, assessed_on=timezone.localdate()).assessed_on == timezone.localdate()


def test_assessed_before_birth_is_refused(patient):
    refused(
        lambda: record(patient, assessed_on=BIRTH - timedelta(days=1)),
        {"assessed_on": "This date is before the patient's date of birth."},
    )


def test_assessed_in_the_future_is_refused(patient):
    refused(
        lambda: record(patient, assessed_on=timezone.localdate() + timedelta(days=1)),
        {"assessed_on": "This date is in the future."},
    )


def test_an_assessment_needs_its_date(patient):
    refused(
        lambda: services.assessment_record(patient=patient), {"assessed_on": "This field cannot be null."}
    )


def test_an_update_cannot_move_an_assessment_before_birth_or_into_the_future(patient):
    assessment = record(patient)
    refused(
        lambda: services.assessment_update(assessment=assessment, assessed_on=BIRTH - timedelta(days=1)),
        {"assessed_on": "This date is before the patient's date of birth."},
    )
    refused(
        lambda: services.assessment_update(
            assessment=assessment, assessed_on=timezone.localdate() + timedelta(1)
        ),
        {"assessed_on": "This date is in the future."},
    )
    assert Assessment.objects.get(pk=assessment.pk).assessed_on == ON


# --- visits -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [VisitStatus.PLANNED, VisitStatus.BOOKED])
def test_recording_at_a_planned_or_booked_visit_completes_it(patient, status):
    visit = manual_visit(patient, status=status)

    assessment = record(patient, visit=visit, spasms_per_day=3)

    assert Assessment.objects.get(pk=assessment.pk).visit == visit
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.COMPLETED


@pytest.mark.parametrize("source", [AssessmentSource.CLINICIAN, AssessmentSource.NURSE])
def test_recording_at_a_missed_visit_corrects_it_to_booked_then_completes_it(patient, source):
    # The patient came after all (the nightly task had closed the window): v2 corrects the missed
    # visit back to booked (clinicians and nurses may), then completes it; the history keeps all three.
    visit = mark_missed(manual_visit(patient, status=VisitStatus.PLANNED))
    assert visit.status == VisitStatus.MISSED

    record(patient, visit=visit, source=source)

    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.COMPLETED
    changes = [
        (row.status, row.history_change_reason)
        for row in visit.history.order_by("history_date", "history_id")
    ]
    assert changes[-3:] == [
        (VisitStatus.MISSED, None),
        (VisitStatus.BOOKED, "Measurements recorded at the visit."),
        (VisitStatus.COMPLETED, None),
    ]


def test_recording_at_a_missed_visit_that_was_rebooked_is_refused_on_the_visit(patient):
    visit = mark_missed(manual_visit(patient, status=VisitStatus.PLANNED))
    rebooked_on = timezone.localdate() + timedelta(days=3)
    services.visit_rebook(visit=visit, scheduled_for=at(rebooked_on))

    on = f"{rebooked_on.day} {rebooked_on:%B} {rebooked_on.year}"

    messages = refused(
        lambda: record(patient, visit=visit),
        {"visit": f"This missed visit was rebooked for {on}: change that visit instead."},
    )
    assert len(messages["visit"]) == 1
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.MISSED


def still_ahead(on) -> str:
    return f"This visit is still ahead: it can be completed from {on.day} {on:%B} {on.year} on."


def test_recording_at_a_visit_still_ahead_is_refused_on_the_visit(patient):
    ahead = timezone.localdate() + timedelta(days=5)
    visit = manual_visit(patient, day=ahead)

    with pytest.raises(ValidationError) as error:
        record(patient, visit=visit, assessed_on=timezone.localdate())

    assert error.value.message_dict == {"visit": [still_ahead(ahead)]}
    assert [e.code for e in error.value.error_dict["visit"]] == [VisitMoveError.STILL_AHEAD]
    assert not Assessment.objects.filter(patient=patient).exists()
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.BOOKED


def test_an_update_cannot_attach_a_visit_still_ahead(patient):
    assessment = record(patient)
    ahead = timezone.localdate() + timedelta(days=5)
    visit = manual_visit(patient, day=ahead)

    refused(
        lambda: services.assessment_update(assessment=assessment, visit=visit),
        {"visit": still_ahead(ahead)},
    )
    assert Assessment.objects.get(pk=assessment.pk).visit is None


def test_recording_a_second_assessment_at_a_completed_visit_keeps_it_completed(patient):
    visit = manual_visit(patient)
    record(patient, visit=visit)

    record(patient, visit=visit, cohen_albert_grade=1)

    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.COMPLETED
    assert Visit.objects.get(pk=visit.pk).assessments.count() == 2


def test_a_visit_planned_by_protocol_stays_completed_when_the_plan_is_refreshed(patient, diagnosis):
    today = timezone.localdate()
    treatment_for(diagnosis, record_codes.TreatmentKind.MVD, started_on=today - timedelta(days=8))
    day_10 = Visit.objects.get(patient=patient, protocol_day=10, status=VisitStatus.PLANNED)

    record(patient, visit=day_10, assessed_on=today, house_brackmann_grade=1)
    services.patient_follow_up_refresh(patient=patient)

    assert Visit.objects.get(pk=day_10.pk).status == VisitStatus.COMPLETED
    assert (
        Visit.objects.filter(patient=patient, protocol_day=10).exclude(status=VisitStatus.CANCELLED).count()
        == 1
    )


def test_recording_at_a_cancelled_visit_is_refused(patient):
    visit = cancel(manual_visit(patient), "Patient moved away")

    refused(lambda: record(patient, visit=visit), {"visit": "This visit was cancelled."})
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.CANCELLED


def test_a_visit_cancelled_since_the_caller_read_it_is_refused(patient):
    stale = manual_visit(patient)
    cancel(Visit.objects.get(pk=stale.pk), "Patient moved away")
    assert stale.status == VisitStatus.BOOKED  # the caller's copy

    refused(lambda: record(patient, visit=stale), {"visit": "This visit was cancelled."})
    assessment = record(patient)
    refused(
        lambda: services.assessment_update(assessment=assessment, visit=stale),
        {"visit": "This visit was cancelled."},
    )
    assert Visit.objects.get(pk=stale.pk).status == VisitStatus.CANCELLED


def test_a_visit_that_was_never_saved_is_refused(patient):
    unsaved = Visit(patient=patient, purpose="Review", scheduled_for=at(ON), status=VisitStatus.BOOKED)
    refused(lambda: record(patient, visit=unsaved), {"visit": "This visit does not exist."})


def test_recording_at_a_visit_of_another_patient_is_refused(patient):
    other_visit = manual_visit(PatientFactory())

    refused(lambda: record(patient, visit=other_visit), {"visit": "This visit belongs to another patient."})
    assert Visit.objects.get(pk=other_visit.pk).status == VisitStatus.BOOKED


def test_an_update_cannot_move_an_assessment_to_a_visit_of_another_patient(patient):
    assessment = record(patient)
    other_visit = manual_visit(PatientFactory())

    refused(
        lambda: services.assessment_update(assessment=assessment, visit=other_visit),
        {"visit": "This visit belongs to another patient."},
    )
    assert Assessment.objects.get(pk=assessment.pk).visit is None
    assert Visit.objects.get(pk=other_visit.pk).status == VisitStatus.BOOKED


def test_an_assessment_recorded_at_a_visit_is_updated_and_the_visit_stays_completed(patient):
    visit = manual_visit(patient)
    assessment = record(patient, visit=visit, spasms_per_day=3)

    services.assessment_update(assessment=assessment, spasms_per_day=2)

    assert Assessment.objects.get(pk=assessment.pk).spasms_per_day == Decimal("2.00")
    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.COMPLETED


def test_an_update_that_attaches_a_visit_completes_it(patient):
    assessment = record(patient)
    visit = manual_visit(patient)

    services.assessment_update(assessment=assessment, visit=visit)

    assert Visit.objects.get(pk=visit.pk).status == VisitStatus.COMPLETED


# --- triggers and adverse effects ---------------------------------------------------------------


def test_every_trigger_and_adverse_effect_code_is_taken(patient):
    assessment = record(patient, triggers=Trigger.values, adverse_effects=AdverseEffect.values)
    assert codes_of(assessment) == (sorted(Trigger.values), sorted(AdverseEffect.values))


@pytest.mark.parametrize(
    ("field", "values", "message"),
    [
        ("triggers", ["stress", "boredom"], "Unknown code(s): boredom."),
        ("triggers", ["stress", "stress"], "A code is listed twice."),
        ("adverse_effects", ["ptosis", "headache"], "Unknown code(s): headache."),
        ("adverse_effects", ["dry_eye", "dry_eye"], "A code is listed twice."),
    ],
)
def test_an_unknown_or_repeated_code_is_refused(patient, field, values, message):
    refused(lambda: record(patient, **{field: values}), {field: message})


def test_an_update_replaces_the_code_lists_given_and_keeps_the_others(patient):
    assessment = record(patient, triggers=["stress", "fatigue"], adverse_effects=["ptosis"])
    kept_row = assessment.trigger_rows.get(trigger="stress")

    services.assessment_update(assessment=assessment, triggers=["stress", "talking"])
    assert codes_of(assessment) == (["stress", "talking"], ["ptosis"])
    assert assessment.trigger_rows.get(trigger="stress").pk == kept_row.pk

    services.assessment_update(assessment=assessment, adverse_effects=[])
    assert codes_of(assessment) == (["stress", "talking"], [])

    services.assessment_update(assessment=assessment, cohen_albert_grade=2)
    assert codes_of(assessment) == (["stress", "talking"], [])


def test_an_update_with_a_bad_code_changes_nothing(patient):
    assessment = record(patient, cohen_albert_grade=2, triggers=["stress"])

    refused(
        lambda: services.assessment_update(assessment=assessment, cohen_albert_grade=3, triggers=["boredom"]),
        {"triggers": "Unknown code(s): boredom."},
    )
    assert Assessment.objects.get(pk=assessment.pk).cohen_albert_grade == 2
    assert codes_of(assessment) == (["stress"], [])


# --- who and what may be changed ----------------------------------------------------------------


def test_an_archived_patient_gets_no_new_assessment(patient):
    record_services.patient_archive(patient=patient)
    refused(lambda: record(patient), {"patient": "This patient is archived."})


def test_fields_outside_the_assessment_cannot_be_set(patient):
    other = PatientFactory()
    with pytest.raises(TypeError, match="patient"):
        services.assessment_update(assessment=record(patient), patient=other)
    with pytest.raises(TypeError, match="status"):
        record(patient, status=AssessmentStatus.ENTERED_IN_ERROR)


def test_a_retracted_assessment_is_kept_and_no_longer_changed(patient):
    assessment = record(patient, cohen_albert_grade=2, triggers=["stress"])

    retracted = services.assessment_retract(assessment=assessment)
    again = services.assessment_retract(assessment=assessment)

    assert retracted.status == again.status == AssessmentStatus.ENTERED_IN_ERROR
    stored = Assessment.objects.get(pk=assessment.pk)
    assert (stored.status, stored.cohen_albert_grade) == (AssessmentStatus.ENTERED_IN_ERROR, 2)
    assert [row.history_type for row in stored.history.order_by("history_id")] == ["+", "~"]
    refused(
        lambda: services.assessment_update(assessment=assessment, cohen_albert_grade=1),
        {"status": "A retracted assessment is not changed; record a new one."},
    )


# --- the database refuses the same rows on its own ----------------------------------------------


def make(patient, **fields):
    return lambda: Assessment.objects.create(patient=patient, assessed_on=ON, **fields)


DATABASE_RANGES = [
    ("cohen_albert_grade", 0, 4),
    ("smc_grade", 1, 4),
    ("jankovic_severity", 0, 4),
    ("jankovic_frequency", 0, 4),
    ("house_brackmann_grade", 1, 6),
]


@pytest.mark.parametrize(("field", "low", "high"), DATABASE_RANGES)
def test_the_database_refuses_a_grade_out_of_range(patient, field, low, high):
    constraint = f"followups_assessment_{field}_range"
    refused_by_database(make(patient, **{field: high + 1}), constraint)
    if low > 0:
        refused_by_database(make(patient, **{field: low - 1}), constraint)
    else:
        refused_by_database(make(patient, **{field: -1}), constraint, f"followups_assessment_{field}_check")
    make(patient, **{field: low})()
    make(patient, **{field: high})()


@pytest.mark.parametrize("item", HFS7)
def test_the_database_refuses_an_hfs7_answer_out_of_range(patient, item):
    refused_by_database(make(patient, **(ALL_HFS7 | {item: 5})), f"followups_assessment_{item}_range")
    make(patient, **(ALL_HFS7 | {item: 4}))()


def test_the_database_refuses_half_an_hfs7(patient):
    refused_by_database(
        make(patient, **(ALL_HFS7 | {"hfs7_item_7": None})), "followups_assessment_hfs7_all_or_none"
    )
    refused_by_database(make(patient, hfs7_item_1=0), "followups_assessment_hfs7_all_or_none")


def test_the_database_refuses_a_negative_count_or_duration(patient):
    refused_by_database(
        make(patient, spasms_per_day=Decimal("-0.01")), "followups_assessment_spasms_not_negative"
    )
    refused_by_database(
        make(patient, episode_duration_seconds=Decimal("-0.1")), "followups_assessment_duration_not_negative"
    )
    make(patient, spasms_per_day=0, episode_duration_seconds=0)()


@pytest.mark.parametrize(
    ("field", "value"),
    [("status", "draft"), ("contraction_pattern", "jerky"), ("jankovic_anchors", "modern")],
)
def test_the_database_refuses_an_unknown_code(patient, field, value):
    refused_by_database(make(patient, **{field: value}), f"followups_assessment_{field}_code")


def test_the_database_refuses_an_unknown_or_repeated_trigger_or_adverse_effect(patient):
    assessment = record(patient, triggers=["stress"], adverse_effects=["ptosis"])
    refused_by_database(
        lambda: AssessmentTrigger.objects.create(assessment=assessment, trigger="boredom"),
        "followups_assessmenttrigger_trigger_code",
    )
    refused_by_database(
        lambda: AssessmentTrigger.objects.create(assessment=assessment, trigger="stress"),
        "followups_trigger_once",
    )
    refused_by_database(
        lambda: AssessmentAdverseEffect.objects.create(assessment=assessment, adverse_effect="headache"),
        "followups_assessmentadverseeffect_adverse_effect_code",
    )
    refused_by_database(
        lambda: AssessmentAdverseEffect.objects.create(assessment=assessment, adverse_effect="ptosis"),
        "followups_adverse_effect_once",
    )
