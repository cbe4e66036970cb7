"""Every write of follow-up: visits, assessments, lab results, and what they derive.

Each service runs in one transaction with the patient's row locked, validates everything first
(one ``ValidationError`` with a message per field), writes, and then brings the patient's derived
rows up to date: planned visits, stored outcomes and flags.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from clinic.errors import FieldErrors
from clinic.roles import Role, role_of
from clinic.validation import (
    apply_changes,
    check_clinical_date,
    check_code_list,
    check_fields,
    check_not_before,
    check_range,
    is_finite_number,
    replace_code_rows,
)
from followups import booking, codes
from followups.flags_store import flags_sync
from followups.models import (
    Assessment,
    LabResult,
    Slot,
    Visit,
)
from followups.outcomes_store import outcomes_recompute
from followups.planning import PlanResult, visits_plan_for
from followups.predicates import start_of_day
from followups.reminders import reminders_plan_for
from followups.visit_moves import (
    FOLLOW_UP_ENDED,
    LATEST_VISIT_AHEAD,
    TOO_FAR_AHEAD,
    after_visit_change,
    check_visit_time,
    session_lock_for,
    visit_move,
    visit_move_errors,
    visits_move_bulk,
)
from patients.models import Patient
from patients.services import patient_lock

# --- what a change derives --------------------------------------------------------------------


def patient_follow_up_refresh(
    *, patient: Patient, today: date | None = None, extend_only: bool = False
) -> PlanResult:
    """Re-plan the patient's visits and recompute their outcomes and flags, in that order.

    Outcomes come before flags because two flags (consider MVD, recurrence after MVD) read them.
    """
    plan = visits_plan_for(patient=patient, today=today, extend_only=extend_only)
    outcomes_recompute(patient=patient)
    flags_sync(patient=patient, today=today)
    reminders_plan_for(patient=patient)
    return plan


def patient_nightly_refresh(*, patient: Patient, today: date) -> None:
    """What the nightly run does for one patient, as of its clinic day ``today``, however late it
    runs: the windows that closed are marked missed, then, for a patient in follow-up, open series
    gain their next visits and outcomes and flags are brought up to date. Call inside a transaction
    holding the patient's lock; running it twice changes nothing."""
    followed = not patient.archived and patient.follow_up_ended_on is None
    # For a followed patient the refresh below derives the flags and reminders once, after both.
    patient_visits_close(patient=patient, today=today, derive=not followed)
    if followed:  # ``followups.runs.selection`` chooses with the same rule
        patient_follow_up_refresh(patient=patient, today=today, extend_only=True)


# --- visits -----------------------------------------------------------------------------------


VISIT_FIELDS = ("treatment", "purpose", "visit_kind", "scheduled_for", "window_start", "window_end", "status")


@transaction.atomic
def visit_create(*, patient: Patient, **fields) -> Visit:
    """A visit staff arrange by hand; planning never touches it. Booked unless said planned."""
    patient = patient_lock(patient)
    visit = Visit(patient=patient, source=codes.VisitSource.MANUAL, status=codes.VisitStatus.BOOKED)
    apply_changes(visit, fields, VISIT_FIELDS)
    errors = FieldErrors()
    if patient.archived:
        errors.add("patient", "This patient is archived.", codes.VisitMoveError.ARCHIVED)
    elif patient.follow_up_ended_on is not None:
        errors.add("patient", FOLLOW_UP_ENDED, codes.VisitMoveError.FOLLOW_UP_ENDED)
    check_visit_time("scheduled_for", visit.scheduled_for, errors)
    if visit.status not in (codes.VisitStatus.PLANNED, codes.VisitStatus.BOOKED):
        errors.add("status", "A new visit is planned or booked.", "invalid_choice")
    if visit.treatment_id is not None and visit.treatment.patient_id != patient.pk:
        errors.add("treatment", "This belongs to another patient.", "other_patient")
    if isinstance(visit.scheduled_for, datetime):
        visit.diagnosis_id = visit.treatment.diagnosis_id if visit.treatment_id else None
        on = timezone.localdate(visit.scheduled_for)
        visit.window_start = visit.window_start or on
        visit.window_end = visit.window_end or on
        check_clinical_date("scheduled_for", on, patient.date_of_birth, errors, future_ok=True)
    check_fields(
        visit, errors, exclude=["patient", "treatment", "diagnosis", "protocol_step", "rebooked_from"]
    )
    check_not_before(
        "window_end", visit.window_end, visit.window_start, "The window ends before it starts.", errors
    )
    for field in ("window_start", "window_end"):
        day = fields.get(field)
        if isinstance(day, date) and day > timezone.localdate() + LATEST_VISIT_AHEAD:
            errors.add(field, TOO_FAR_AHEAD, codes.VisitMoveError.TOO_FAR_AHEAD)
    errors.raise_if_any()
    visit.save()
    after_visit_change(patient)
    return visit


@transaction.atomic
def visit_rebook(*, visit: Visit, scheduled_for: datetime | None = None, slot: Slot | None = None) -> Visit:
    """Book a new visit for one the patient missed, at ``scheduled_for`` or into ``slot``; the
    missed one stays on the record."""
    if slot is not None:
        slot = session_lock_for(slot)  # the session first, then the patient, as every booking does
    patient_lock(visit.patient)
    missed = Visit.objects.select_related("patient").get(pk=visit.pk)
    errors = FieldErrors()
    if slot is not None:
        scheduled_for = slot.starts_at
        errors.add(
            "slot",
            booking.slot_unavailable_reason(slot, missed, timezone.now()),
            codes.VisitMoveError.SLOT_UNAVAILABLE,
        )
    if missed.status != codes.VisitStatus.MISSED:
        errors.add(
            "status",
            "Only a missed visit is rebooked; book or reschedule this one.",
            codes.VisitMoveError.INVALID_TRANSITION,
        )
    elif hasattr(missed, "rebooked_as"):
        errors.add("status", "This missed visit was rebooked already.", codes.VisitMoveError.ALREADY_REBOOKED)
    if missed.patient.archived:
        errors.add("patient", "This patient is archived.", codes.VisitMoveError.ARCHIVED)
    elif missed.patient.follow_up_ended_on is not None:
        errors.add("patient", FOLLOW_UP_ENDED, codes.VisitMoveError.FOLLOW_UP_ENDED)
    check_visit_time("scheduled_for", scheduled_for, errors, missed.patient)
    errors.raise_if_any()
    rebooked = rebooking_of(missed, scheduled_for=scheduled_for)
    if slot is not None:
        if not booking.slot_take(slot):
            errors.add(
                "slot", "This slot has just been taken: choose another.", codes.VisitMoveError.SLOT_FULL
            )
            errors.raise_if_any()
        rebooked.slot = slot
    rebooked.save(force_insert=True)
    after_visit_change(missed.patient)
    return rebooked


@transaction.atomic
def visit_rebook_as_attended(*, visit: Visit, took_place_at: datetime) -> Visit:
    """Record that the patient was seen elsewhere, at ``took_place_at``, for a visit they missed
    here: a completed rebooking of it (the missed one stays on the record, as with any rebooking)."""
    patient_lock(visit.patient)
    missed = Visit.objects.select_related("patient").get(pk=visit.pk)
    errors = FieldErrors()
    if missed.status != codes.VisitStatus.MISSED:
        errors.add("status", "Only a missed visit is rebooked.", codes.VisitMoveError.INVALID_TRANSITION)
    elif hasattr(missed, "rebooked_as"):
        errors.add("status", "This missed visit was rebooked already.", codes.VisitMoveError.ALREADY_REBOOKED)
    if took_place_at > timezone.now():
        errors.add(
            "status",
            "A visit reported as done elsewhere took place already.",
            codes.VisitMoveError.STILL_AHEAD,
        )
    errors.raise_if_any()
    attended = rebooking_of(missed, scheduled_for=took_place_at, status=codes.VisitStatus.COMPLETED)
    attended.save(force_insert=True)
    after_visit_change(missed.patient)
    return attended


def rebooking_of(missed: Visit, *, scheduled_for: datetime, status=codes.VisitStatus.BOOKED) -> Visit:
    """The visit booked for a missed one, unsaved: manual, on one day, linked to the missed one.
    (The demo seed builds its history's rebookings with it too.)"""
    on = timezone.localdate(scheduled_for)
    return Visit(
        patient=missed.patient,
        treatment=missed.treatment,
        diagnosis=missed.diagnosis,
        purpose=missed.purpose,
        visit_kind=missed.visit_kind,
        scheduled_for=scheduled_for,
        window_start=on,
        window_end=on,
        status=status,
        source=codes.VisitSource.MANUAL,
        rebooked_from=missed,
    )


def visits_due_to_close(today: date):
    """The visits whose window has closed unattended by ``today``: the nightly close marks them
    missed. A booked visit counts from its appointment when that lies after its window."""
    return Visit.objects.filter(
        window_end__lt=today,
        status__in=(codes.VisitStatus.PLANNED, codes.VisitStatus.BOOKED),
        scheduled_for__lt=start_of_day(today),
    )


def patient_visits_close(*, patient: Patient, today: date, derive: bool = True) -> int:
    """Mark the patient's visits whose window has closed missed, with the flags and reminders that
    follow (``derive``; the nightly refresh derives them itself); call inside a transaction holding
    the patient's lock. Its filter is the guard of the move to missed (the window closed, the
    appointment passed), so a second call marks nothing."""
    missed = visits_move_bulk(
        moves=[(visit, "") for visit in visits_due_to_close(today).filter(patient=patient)],
        to=codes.VisitStatus.MISSED,
        history_reason="window closed",
    )
    if missed and derive:
        after_visit_change(patient, today)
    return len(missed)


def visits_mark_missed_due(*, today: date | None = None) -> int:
    """The close of windows for every patient at once, each in their own transaction (the nightly
    run does the same patient by patient, in its chunks: ``followups.runs``)."""
    today = today or timezone.localdate()
    marked = 0
    # Without order_by() the default ordering's columns join the DISTINCT and a patient comes
    # back once per due visit.
    due = visits_due_to_close(today).order_by().values_list("patient_id", flat=True).distinct()
    for patient_id in due.iterator():
        with transaction.atomic():
            marked += patient_visits_close(patient=patient_lock(Patient(pk=patient_id)), today=today)
    return marked


# --- assessments ------------------------------------------------------------------------------

# What an assessment measures apart from its date, visit, HFS-7 items and notes.
ASSESSMENT_MEASURES = (
    "spasms_per_day",
    "episode_duration_seconds",
    "cohen_albert_grade",
    "contraction_pattern",
    "smc_grade",
    "jankovic_severity",
    "jankovic_frequency",
    "jankovic_anchors",
    "house_brackmann_grade",
)
ASSESSMENT_FIELDS = ("visit", "assessed_on", *ASSESSMENT_MEASURES, *Assessment.HFS7_ITEMS, "notes")
ASSESSMENT_RANGES = {
    "cohen_albert_grade": (0, 4),
    "smc_grade": (1, 4),
    "jankovic_severity": (0, 4),
    "jankovic_frequency": (0, 4),
    "house_brackmann_grade": (1, 6),
    **dict.fromkeys(Assessment.HFS7_ITEMS, (0, 4)),
}


def _validate_assessment(assessment: Assessment, triggers, adverse_effects, errors: FieldErrors):
    patient = assessment.patient
    check_fields(assessment, errors, exclude=["patient", "visit", "jankovic_total", "hfs7_total"])
    for field, (low, high) in ASSESSMENT_RANGES.items():
        check_range(assessment, field, low, high, errors)
    for field in ("spasms_per_day", "episode_duration_seconds"):
        value = getattr(assessment, field)
        if is_finite_number(value) and value < 0:
            errors.add(field, "This cannot be negative.", "range")
    answered = [getattr(assessment, item) is not None for item in Assessment.HFS7_ITEMS]
    if any(answered) and not all(answered):
        errors.add("hfs7_items", "Answer all seven HFS-7 items, or none.", "incomplete")
    check_clinical_date("assessed_on", assessment.assessed_on, patient.date_of_birth, errors)
    if assessment.visit is not None:
        # The caller's copy may predate a change of status (a cancellation): judge, and later
        # complete, the visit as it stands now, behind the patient's lock.
        visit = Visit.objects.filter(pk=assessment.visit.pk).first()
        if visit is None:
            errors.add("visit", "This visit does not exist.", "does_not_exist")
        elif visit.patient_id != patient.pk:
            errors.add("visit", "This visit belongs to another patient.", "other_patient")
        elif visit.status == codes.VisitStatus.CANCELLED:
            errors.add("visit", "This visit was cancelled.", "visit_cancelled")
        else:
            assessment.visit = visit
            if visit.status != codes.VisitStatus.COMPLETED:
                refused = visit_move_errors(visit, **_completing_move(visit, assessment.source))
                if refused:
                    errors.merge(refused.under("visit"))
    triggers = check_code_list(triggers, codes.Trigger, "triggers", errors)
    adverse_effects = check_code_list(adverse_effects, codes.AdverseEffect, "adverse_effects", errors)
    return triggers, adverse_effects


def _completing_move(visit: Visit, source: str) -> dict:
    """The first move that completes a visit measurements were recorded at: the completion itself,
    or for a visit marked missed by mistake its correction (the history keeps both moves)."""
    role = Role.NURSE if source == codes.AssessmentSource.NURSE else Role.CLINICIAN
    if visit.status == codes.VisitStatus.MISSED:
        return {"to": codes.VisitStatus.BOOKED, "role": role, "reason": "Measurements recorded at the visit."}
    return {"to": codes.VisitStatus.COMPLETED, "role": role}


def _complete_visit_of(assessment: Assessment) -> None:
    visit = assessment.visit
    if visit is None or visit.status == codes.VisitStatus.COMPLETED:
        return
    move = _completing_move(visit, assessment.source)
    visit = visit_move(visit=visit, **move)
    if move["to"] != codes.VisitStatus.COMPLETED:
        visit = visit_move(visit=visit, to=codes.VisitStatus.COMPLETED, role=move["role"])
    assessment.visit = visit


def _save_assessment(assessment: Assessment, triggers, adverse_effects) -> Assessment:
    _complete_visit_of(assessment)
    assessment.save()
    replace_code_rows(assessment, "trigger_rows", "trigger", triggers)
    replace_code_rows(assessment, "adverse_effect_rows", "adverse_effect", adverse_effects)
    assessment.refresh_from_db(fields=["jankovic_total", "hfs7_total"])
    patient_follow_up_refresh(patient=assessment.patient)
    return assessment


@transaction.atomic
def assessment_record(
    *,
    patient: Patient,
    source: str = codes.AssessmentSource.CLINICIAN,
    triggers: Iterable[str] = (),
    adverse_effects: Iterable[str] = (),
    **fields,
) -> Assessment:
    """Record what was measured; ``source`` says who recorded it (``source_of(user)`` for staff)."""
    patient = patient_lock(patient)
    assessment = Assessment(patient=patient, source=source)
    apply_changes(assessment, fields, ASSESSMENT_FIELDS)
    errors = FieldErrors()
    if patient.archived:
        errors.add("patient", "This patient is archived.", codes.VisitMoveError.ARCHIVED)
    triggers, adverse_effects = _validate_assessment(assessment, triggers, adverse_effects, errors)
    errors.raise_if_any()
    return _save_assessment(assessment, triggers, adverse_effects)


@transaction.atomic
def assessment_update(
    *,
    assessment: Assessment,
    triggers: Iterable[str] | None = None,
    adverse_effects: Iterable[str] | None = None,
    **changes,
) -> Assessment:
    patient_lock(assessment.patient)
    assessment = Assessment.objects.select_related("patient", "visit").get(pk=assessment.pk)
    if assessment.status == codes.AssessmentStatus.ENTERED_IN_ERROR:
        raise ValidationError({"status": ["A retracted assessment is not changed; record a new one."]})
    apply_changes(assessment, changes, ASSESSMENT_FIELDS)
    if triggers is None:
        triggers = assessment.trigger_rows.values_list("trigger", flat=True)
    if adverse_effects is None:
        adverse_effects = assessment.adverse_effect_rows.values_list("adverse_effect", flat=True)
    errors = FieldErrors()
    triggers, adverse_effects = _validate_assessment(assessment, triggers, adverse_effects, errors)
    errors.raise_if_any()
    return _save_assessment(assessment, triggers, adverse_effects)


@transaction.atomic
def assessment_retract(*, assessment: Assessment) -> Assessment:
    patient_lock(assessment.patient)
    assessment = Assessment.objects.select_related("patient").get(pk=assessment.pk)
    if assessment.status != codes.AssessmentStatus.ENTERED_IN_ERROR:
        assessment.status = codes.AssessmentStatus.ENTERED_IN_ERROR
        assessment.save(update_fields=["status", "updated_at"])
        patient_follow_up_refresh(patient=assessment.patient)
    return assessment


def source_of(user) -> str:
    """The source an assessment records for the staff user (or API client) who enters it."""
    return codes.AssessmentSource.NURSE if role_of(user) == Role.NURSE else codes.AssessmentSource.CLINICIAN


# --- laboratory results -----------------------------------------------------------------------


# Serum sodium (mmol/L) a laboratory can report: far outside it is a value in another unit or a typo
# (the reference range is 135-145; the oxcarbazepine label's hyponatraemia is below 125).
SODIUM_RANGE = (90, 200)
# What the table holds for any test (its check constraint): beyond it the database would refuse.
LAB_VALUE_RANGE = (0, 1000)


@transaction.atomic
def lab_result_record(*, patient: Patient, test: str, taken_on: date, value=None, abnormal=None) -> LabResult:
    """Record a result (the lab system through the API, or staff), and recompute the patient's
    flags in the same transaction: a sodium or blood count clears ``lab_monitoring_due``."""
    patient = patient_lock(patient)
    result = LabResult(patient=patient, test=test, taken_on=taken_on, value=value, abnormal=abnormal)
    errors = FieldErrors()
    if patient.archived:
        errors.add("patient", "This patient is archived.", codes.VisitMoveError.ARCHIVED)
    check_fields(result, errors, exclude=["patient"])
    check_clinical_date("taken_on", result.taken_on, patient.date_of_birth, errors)
    if "value" not in errors:
        _check_lab_value(result, errors)
    errors.raise_if_any()
    result.save()
    flags_sync(patient=patient)
    return result


def _check_lab_value(result: LabResult, errors: FieldErrors) -> None:
    if result.test == codes.LabTest.SODIUM:
        if result.value is None:
            errors.add("value", "Give the sodium value in mmol/L.", "required")
        else:
            low, high = SODIUM_RANGE
            if is_finite_number(result.value) and not low <= result.value <= high:
                errors.add(
                    "value",
                    f"Give serum sodium in mmol/L, from {low} to {high} (is it in another unit?).",
                    "range",
                )
    elif result.test == codes.LabTest.BLOOD_COUNT and result.value is not None:
        errors.add(
            "value",
            "A blood count is recorded as done, with its interpretation (abnormal), without a value.",
            "not_applicable",
        )
    else:
        check_range(result, "value", *LAB_VALUE_RANGE, errors)


@transaction.atomic
def lab_result_retract(*, result: LabResult) -> LabResult:
    patient_lock(result.patient)
    result = LabResult.objects.select_related("patient").get(pk=result.pk)
    if result.status != codes.AssessmentStatus.ENTERED_IN_ERROR:
        result.status = codes.AssessmentStatus.ENTERED_IN_ERROR
        result.save(update_fields=["status", "updated_at"])
        flags_sync(patient=result.patient)
    return result
