"""Every write to the clinical record: validate, save, and tell follow-up, in one transaction.

Each service checks all of the rules of DOMAIN.md sections 2-4 first and raises one
``ValidationError`` with a message per field (dotted names for details), so a caller gets
everything wrong at once and nothing is half-written. The database constraints stand behind the
same rules for any path that goes around these functions.
"""

from __future__ import annotations

import unicodedata
import zoneinfo
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Min, Sum
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from clinic.errors import FieldErrors
from clinic.roles import Role, role_of
from clinic.validation import (
    apply_changes,
    check_clinical_date,
    check_code_list,
    check_fields,
    check_not_before,
    replace_code_rows,
)
from patients import codes, record_states, rules
from patients.models import (
    BotulinumToxinDetail,
    Diagnosis,
    ImagingStudy,
    MedicationDetail,
    MvdComplication,
    MvdDetail,
    Patient,
    ToxinInjection,
    Treatment,
)
from patients.signals import (
    diagnosis_changed,
    imaging_study_changed,
    patient_changed,
    treatment_changed,
)

_VALID_TIME_ZONES = frozenset(zoneinfo.available_timezones())

# --- shared steps -------------------------------------------------------------------------------


def _check_clinical_date(field: str, when, patient: Patient, errors: FieldErrors, *, future_ok=False):
    check_clinical_date(field, when, patient.date_of_birth, errors, future_ok=future_ok)


# How far ahead a treatment may be planned: a plan, not a fact (and day arithmetic on a date near
# year 9999, in planning and in the toxin window, would overflow: issue 20).
TREATMENT_PLANNED_AHEAD = timedelta(days=730)


def _check_treatment_date(field: str, when, patient: Patient, errors: FieldErrors):
    _check_clinical_date(field, when, patient, errors, future_ok=True)
    if isinstance(when, date) and when > timezone.localdate() + TREATMENT_PLANNED_AHEAD:
        errors.add(field, "Plan it within two years of today.", "too_far_ahead")


def patient_lock(patient: Patient) -> Patient:
    # Writes about one patient queue behind each other, so rules that look across the patient's
    # records (the toxin units per 30 days) see every committed session.
    return Patient.objects.select_for_update().get(pk=patient.pk)


def _refuse_archived(patient: Patient, errors: FieldErrors):
    if patient.archived:
        errors.add("patient", "This patient is archived; restore them before adding records.", "archived")


def _locked_unless_archived(patient: Patient) -> Patient:
    """Lock the patient for a change to their record, refused while they are archived: an archived
    patient's record is read-only until restored (issue 20), retractions included."""
    patient = patient_lock(patient)
    if patient.archived:
        errors = FieldErrors()
        errors.add(
            "patient", "This patient is archived; restore them before changing their record.", "archived"
        )
        errors.raise_if_any()
    return patient


# A record entered in error is retracted by its retract service and then never changes again, so
# what a clinician read and acted on stays as it was; each update and record service asks its
# record's state machine (record_states) before anything else is checked or written.


def _refuse_retracted(states: record_states.RecordStates, record) -> None:
    errors = FieldErrors()
    errors.add(
        "status", record_states.retracted_error(states, record.status), codes.RecordStateError.RETRACTED
    )
    errors.raise_if_any()


def _check_initial_status(states: record_states.RecordStates, record, errors: FieldErrors) -> None:
    # An unknown code is named by the field check; only a real status is judged here.
    if record.status in states.statuses.values:
        errors.add(
            "status",
            record_states.initial_error(states, record.status),
            codes.RecordStateError.INVALID_TRANSITION,
        )


def _check_status_move(
    states: record_states.RecordStates, previous: str, record, errors: FieldErrors
) -> None:
    if record.status in states.statuses.values:
        errors.add(
            "status",
            record_states.transition_error(states, previous, record.status),
            codes.RecordStateError.INVALID_TRANSITION,
        )


def _change_of_update(states: record_states.RecordStates, record) -> str:
    # An update that moves a live record to entered in error retracts it (an admin form or a PUT does).
    return "retracted" if record.status == states.retracted else "updated"


# --- patients -----------------------------------------------------------------------------------

PATIENT_FIELDS = (
    "mrn",
    "given_name",
    "family_name",
    "date_of_birth",
    "sex",
    "email",
    "phone",
    "preferred_language",
    "timezone",
    "email_reminders",
    "at_risk_hla_b1502",
    "hla_b1502_result",
)


def _earliest_clinical_date(patient: Patient) -> date | None:
    """The earliest date on the patient's records that still stand (not entered in error).

    Every other clinical date (an end, a dose change, a complication) is held after one of these.
    """
    dates = [
        *patient.diagnoses.exclude(status=codes.DiagnosisStatus.ENTERED_IN_ERROR)
        .aggregate(Min("onset_date"), Min("diagnosed_on"))
        .values(),
        *patient.imaging_studies.exclude(status=codes.ImagingStatus.ENTERED_IN_ERROR)
        .aggregate(Min("performed_on"))
        .values(),
        *patient.treatments.exclude(status=codes.TreatmentStatus.ENTERED_IN_ERROR)
        .aggregate(Min("started_on"))
        .values(),
    ]
    return min((d for d in dates if d is not None), default=None)


# Bidirectional controls reorder what a screen, a list or an e-mail shows around them (a name that
# displays as another); zero-width joiners stay allowed, as Persian and Indic names need them.
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


NAME_CONTROL = "A name holds no control characters (line breaks, tabs, direction marks)."


def _check_name(field: str, value, errors: FieldErrors) -> None:
    """A name is one line of visible text: no control characters (CR/LF, tab) and no bidi controls."""
    if isinstance(value, str) and any(
        unicodedata.category(ch) == "Cc" or ch in BIDI_CONTROLS for ch in value
    ):
        errors.add(
            field, "A name holds no control characters (line breaks, tabs, direction marks).", "control"
        )


def _validate_patient(patient: Patient, *, birth_date_changed: bool = False) -> None:
    errors = FieldErrors()
    check_fields(patient, errors, exclude=["email_reminders_consented_at"])
    for field in ("given_name", "family_name"):
        _check_name(field, getattr(patient, field), errors)
    if isinstance(patient.date_of_birth, date) and patient.date_of_birth > timezone.localdate():
        errors.add("date_of_birth", "The date of birth is in the future.", "in_future")
    if birth_date_changed and isinstance(patient.date_of_birth, date):
        # A corrected date of birth must not leave a recorded date before birth (DOMAIN.md 4).
        earliest = _earliest_clinical_date(patient)
        if earliest is not None and earliest < patient.date_of_birth:
            errors.add(
                "date_of_birth",
                f"The patient has records dated before this date of birth (the earliest on {earliest}).",
                "before_birth",
            )
    if patient.timezone and patient.timezone not in _VALID_TIME_ZONES:
        errors.add("timezone", f"'{patient.timezone}' is not a known time zone.", "invalid_choice")
    if patient.preferred_language not in dict(settings.LANGUAGES):
        errors.add(
            "preferred_language",
            f"Choose one of: {', '.join(code for code, _ in settings.LANGUAGES)}.",
            "invalid_choice",
        )
    if patient.email_reminders and not patient.email:
        errors.add("email", "E-mail reminders need an e-mail address.", "required")
    errors.raise_if_any()


def _save_patient(patient: Patient) -> None:
    try:
        with transaction.atomic():
            patient.save()
    except IntegrityError as error:
        # Two requests racing for one MRN: the unique constraint decides, the caller hears why.
        if "mrn" in str(error):
            raise ValidationError({"mrn": ["A patient with this MRN already exists."]}) from error
        raise


def _sync_consent_time(patient: Patient, was_consenting: bool) -> None:
    if patient.email_reminders and not was_consenting:
        patient.email_reminders_consented_at = timezone.now()
    elif not patient.email_reminders:
        patient.email_reminders_consented_at = None


@transaction.atomic
def patient_create(**fields) -> Patient:
    patient = Patient()
    apply_changes(patient, fields, PATIENT_FIELDS)
    _validate_patient(patient)
    _sync_consent_time(patient, was_consenting=False)
    _save_patient(patient)
    patient_changed.send(sender=Patient, patient=patient, change="created")
    return patient


@transaction.atomic
def patient_update(*, patient: Patient, **changes) -> Patient:
    patient = _locked_unless_archived(patient)
    was_consenting = patient.email_reminders
    contact_before = (patient.phone, patient.email)
    apply_changes(patient, changes, PATIENT_FIELDS)
    _validate_patient(patient, birth_date_changed="date_of_birth" in changes)
    _sync_consent_time(patient, was_consenting)
    if (patient.phone, patient.email) != contact_before:
        # New contact data answer a wrong number (DOMAIN.md section 9): the flag clears.
        patient.contact_details_invalid_since = None
    _save_patient(patient)
    patient_changed.send(sender=Patient, patient=patient, change="updated")
    return patient


@transaction.atomic
def patient_reminders_withdraw(*, patient: Patient) -> Patient:
    """The patient says no more e-mail reminders (the opt-out link). Consent is the patient's to
    withdraw whatever the state of their record, archived included, so this is not an update of the
    record (which an archived patient's refuses): it changes the consent and nothing else."""
    patient = patient_lock(patient)
    if patient.email_reminders:
        patient.email_reminders = False
        _sync_consent_time(patient, was_consenting=True)
        patient.save(update_fields=["email_reminders", "email_reminders_consented_at", "updated_at"])
        patient_changed.send(sender=Patient, patient=patient, change="updated")
    return patient


@transaction.atomic
def patient_archive(*, patient: Patient) -> Patient:
    """Archive instead of delete: the record stays, out of worklists and reminders."""
    patient = patient_lock(patient)
    if not patient.archived:
        patient.archived = True
        patient.archived_at = timezone.now()
        patient.save(update_fields=["archived", "archived_at", "updated_at"])
        patient_changed.send(sender=Patient, patient=patient, change="archived")
    return patient


@transaction.atomic
def patient_restore(*, patient: Patient) -> Patient:
    patient = patient_lock(patient)
    if patient.archived:
        patient.archived = False
        patient.archived_at = None
        patient.save(update_fields=["archived", "archived_at", "updated_at"])
        patient_changed.send(sender=Patient, patient=patient, change="updated")
    return patient


# --- diagnoses ----------------------------------------------------------------------------------

DIAGNOSIS_FIELDS = (
    "kind",
    "secondary_cause",
    "side",
    "presentation",
    "onset_date",
    "status",
    "diagnosed_on",
    "notes",
)


def _validate_diagnosis(diagnosis: Diagnosis, muscles, errors: FieldErrors) -> list[str]:
    patient = diagnosis.patient
    check_fields(diagnosis, errors, exclude=["patient"])
    errors.add(
        "secondary_cause",
        rules.secondary_cause_error(diagnosis.kind, diagnosis.secondary_cause),
        "secondary_cause",
    )
    _check_clinical_date("diagnosed_on", diagnosis.diagnosed_on, patient, errors)
    _check_clinical_date("onset_date", diagnosis.onset_date, patient, errors)
    check_not_before(
        "onset_date",
        diagnosis.diagnosed_on,
        diagnosis.onset_date,
        "The onset is after the diagnosis.",
        errors,
    )
    return check_code_list(muscles, codes.Muscle, "muscles", errors)


@transaction.atomic
def diagnosis_record(*, patient: Patient, muscles: Iterable[str] = (), **fields) -> Diagnosis:
    patient = patient_lock(patient)
    diagnosis = Diagnosis(patient=patient)
    apply_changes(diagnosis, fields, DIAGNOSIS_FIELDS)
    errors = FieldErrors()
    _refuse_archived(patient, errors)
    _check_initial_status(record_states.DIAGNOSIS, diagnosis, errors)
    muscles = _validate_diagnosis(diagnosis, muscles, errors)
    errors.raise_if_any()
    diagnosis.save()
    replace_code_rows(diagnosis, "muscle_rows", "muscle", muscles)
    diagnosis_changed.send(sender=Diagnosis, diagnosis=diagnosis, change="recorded")
    return diagnosis


@transaction.atomic
def diagnosis_update(*, diagnosis: Diagnosis, muscles: Iterable[str] | None = None, **changes) -> Diagnosis:
    _locked_unless_archived(diagnosis.patient)
    diagnosis = Diagnosis.objects.select_related("patient").get(pk=diagnosis.pk)
    _refuse_retracted(record_states.DIAGNOSIS, diagnosis)
    previous = diagnosis.status
    apply_changes(diagnosis, changes, DIAGNOSIS_FIELDS)
    errors = FieldErrors()
    _check_status_move(record_states.DIAGNOSIS, previous, diagnosis, errors)
    if muscles is None:
        muscles = diagnosis.muscle_rows.values_list("muscle", flat=True)
    muscles = _validate_diagnosis(diagnosis, muscles, errors)
    errors.raise_if_any()
    diagnosis.save()
    replace_code_rows(diagnosis, "muscle_rows", "muscle", muscles)
    change = _change_of_update(record_states.DIAGNOSIS, diagnosis)
    diagnosis_changed.send(sender=Diagnosis, diagnosis=diagnosis, change=change)
    return diagnosis


@transaction.atomic
def diagnosis_retract(*, diagnosis: Diagnosis) -> Diagnosis:
    """Mark a diagnosis recorded by mistake; it stays in the record and its history."""
    _locked_unless_archived(diagnosis.patient)
    diagnosis = Diagnosis.objects.get(pk=diagnosis.pk)
    if diagnosis.status != codes.DiagnosisStatus.ENTERED_IN_ERROR:
        diagnosis.status = codes.DiagnosisStatus.ENTERED_IN_ERROR
        diagnosis.save(update_fields=["status", "updated_at"])
        diagnosis_changed.send(sender=Diagnosis, diagnosis=diagnosis, change="retracted")
    return diagnosis


# --- imaging ------------------------------------------------------------------------------------

IMAGING_FIELDS = (
    "diagnosis",
    "performed_on",
    "modality",
    "field_strength_tesla",
    "compression_found",
    "lesion_found",
    "report",
    "status",
)


def _check_same_patient(field: str, record, patient: Patient, errors: FieldErrors):
    if record is not None and record.patient_id != patient.pk:
        errors.add(field, "This belongs to another patient.", "other_patient")


def _validate_imaging(study: ImagingStudy, sequences, vessels, errors: FieldErrors):
    check_fields(study, errors, exclude=["patient", "diagnosis"])
    _check_same_patient("diagnosis", study.diagnosis, study.patient, errors)
    _check_clinical_date("performed_on", study.performed_on, study.patient, errors)
    strength = study.field_strength_tesla
    # A value that is not a number already has its message from the field check.
    if isinstance(strength, Decimal) and strength not in codes.FIELD_STRENGTHS_TESLA:
        errors.add("field_strength_tesla", "The field strength is 1.5 or 3 T.", "invalid_choice")
    sequences = check_code_list(sequences, codes.ImagingSequence, "sequences", errors)
    vessels = check_code_list(vessels, codes.Vessel, "offending_vessels", errors)
    errors.add("offending_vessels", rules.vessels_error(vessels), "vessels")
    return sequences, vessels


def _save_imaging(study: ImagingStudy, sequences, vessels, change: str) -> ImagingStudy:
    study.save()
    replace_code_rows(study, "sequence_rows", "sequence", sequences)
    replace_code_rows(study, "vessel_rows", "vessel", vessels)
    imaging_study_changed.send(sender=ImagingStudy, study=study, change=change)
    return study


@transaction.atomic
def imaging_study_record(
    *, patient: Patient, sequences: Iterable[str] = (), offending_vessels: Iterable[str] = (), **fields
) -> ImagingStudy:
    patient = patient_lock(patient)
    study = ImagingStudy(patient=patient)
    apply_changes(study, fields, IMAGING_FIELDS)
    errors = FieldErrors()
    _refuse_archived(patient, errors)
    _check_initial_status(record_states.IMAGING_STUDY, study, errors)
    sequences, vessels = _validate_imaging(study, sequences, offending_vessels, errors)
    errors.raise_if_any()
    return _save_imaging(study, sequences, vessels, "recorded")


@transaction.atomic
def imaging_study_update(
    *,
    study: ImagingStudy,
    sequences: Iterable[str] | None = None,
    offending_vessels: Iterable[str] | None = None,
    **changes,
) -> ImagingStudy:
    _locked_unless_archived(study.patient)
    study = ImagingStudy.objects.select_related("patient").get(pk=study.pk)
    _refuse_retracted(record_states.IMAGING_STUDY, study)
    previous = study.status
    apply_changes(study, changes, IMAGING_FIELDS)
    if sequences is None:
        sequences = study.sequence_rows.values_list("sequence", flat=True)
    if offending_vessels is None:
        offending_vessels = study.vessel_rows.values_list("vessel", flat=True)
    errors = FieldErrors()
    _check_status_move(record_states.IMAGING_STUDY, previous, study, errors)
    sequences, vessels = _validate_imaging(study, sequences, offending_vessels, errors)
    errors.raise_if_any()
    return _save_imaging(study, sequences, vessels, _change_of_update(record_states.IMAGING_STUDY, study))


@transaction.atomic
def imaging_study_retract(*, study: ImagingStudy) -> ImagingStudy:
    _locked_unless_archived(study.patient)
    study = ImagingStudy.objects.get(pk=study.pk)
    if study.status != codes.ImagingStatus.ENTERED_IN_ERROR:
        study.status = codes.ImagingStatus.ENTERED_IN_ERROR
        study.save(update_fields=["status", "updated_at"])
        imaging_study_changed.send(sender=ImagingStudy, study=study, change="retracted")
    return study


# --- treatments ---------------------------------------------------------------------------------

TREATMENT_FIELDS = ("diagnosis", "status", "started_on", "ended_on", "notes")
DETAIL_FOR_KIND = {
    codes.TreatmentKind.MEDICATION: "medication",
    codes.TreatmentKind.BOTULINUM_TOXIN: "botulinum_toxin",
    codes.TreatmentKind.MVD: "mvd",
}
MEDICATION_FIELDS = ("drug", "daily_dose_mg", "stop_reason", "dose_changed_on")
TOXIN_FIELDS = ("product", "injections", "wore_off_on", "self_rated_improvement_pct")
MVD_FIELDS = ("technique", "offending_vessels", "redo", "redo_of", "surgeon", "complications")


def _unknown_keys(given: Mapping, allowed: Iterable[str], prefix: str, errors: FieldErrors):
    for key in sorted(set(given) - set(allowed)):
        errors.add(f"{prefix}.{key}", "Unknown field.", "unknown_field")


def _medication_detail(treatment: Treatment, given: Mapping, errors: FieldErrors) -> MedicationDetail:
    detail = getattr(treatment, "medication", None) if treatment.pk else None
    detail = detail or MedicationDetail(treatment=treatment)
    previous_dose = detail.daily_dose_mg
    _unknown_keys(given, MEDICATION_FIELDS, "medication", errors)
    for key in MEDICATION_FIELDS:
        if key in given:
            setattr(detail, key, given[key])
    check_fields(detail, errors, prefix="medication.", exclude=["treatment"])
    dose = detail.daily_dose_mg if isinstance(detail.daily_dose_mg, Decimal) else None
    if dose is not None and detail.drug in codes.Drug.values:
        errors.add("medication.daily_dose_mg", rules.dose_ceiling_error(detail.drug, dose), "dose_ceiling")
    if (
        previous_dose is not None
        and dose is not None
        and dose != previous_dose
        and "dose_changed_on" not in given
    ):
        detail.dose_changed_on = timezone.localdate()
    check_not_before(
        "medication.dose_changed_on",
        detail.dose_changed_on,
        treatment.started_on,
        "The dose change is before the course started.",
        errors,
    )
    _check_clinical_date("medication.dose_changed_on", detail.dose_changed_on, treatment.patient, errors)
    return detail


def _toxin_detail(treatment: Treatment, given: Mapping, errors: FieldErrors):
    detail = getattr(treatment, "botulinum_toxin", None) if treatment.pk else None
    detail = detail or BotulinumToxinDetail(treatment=treatment)
    _unknown_keys(given, TOXIN_FIELDS, "botulinum_toxin", errors)
    for key in ("product", "wore_off_on", "self_rated_improvement_pct"):
        if key in given:
            setattr(detail, key, given[key])
    check_fields(detail, errors, prefix="botulinum_toxin.", exclude=["treatment"])
    pct = detail.self_rated_improvement_pct
    if isinstance(pct, int) and not 0 <= pct <= 100:
        errors.add("botulinum_toxin.self_rated_improvement_pct", "Give a percentage from 0 to 100.", "range")
    check_not_before(
        "botulinum_toxin.wore_off_on",
        detail.wore_off_on,
        treatment.started_on,
        "The benefit wore off before the injection.",
        errors,
    )
    _check_clinical_date("botulinum_toxin.wore_off_on", detail.wore_off_on, treatment.patient, errors)

    if "injections" in given:
        injections = []
        for index, item in enumerate(given["injections"] or []):
            prefix = f"botulinum_toxin.injections.{index}."
            injection = ToxinInjection(muscle=item.get("muscle"), units=item.get("units"))
            check_fields(injection, errors, prefix=prefix, exclude=["session"])
            units = injection.units
            if isinstance(units, Decimal) and units <= 0:
                errors.add(prefix + "units", "Units must be more than 0.", "range")
            injections.append(injection)
        muscles = [injection.muscle for injection in injections]
        if len(set(muscles)) != len(muscles):
            errors.add("botulinum_toxin.injections", "Each muscle is listed once per session.", "duplicate")
    elif detail.pk:
        injections = list(detail.injections.all())
    else:
        injections = []
    if not injections:
        errors.add("botulinum_toxin.injections", "A session needs at least one injected muscle.", "required")
    return detail, injections


def _check_toxin_window(treatment: Treatment, detail, injections, errors: FieldErrors):
    """DOMAIN.md section 4: at most 200 units of one product in any 30 days for a patient.

    A session entered in error does not count for the others, so it is not held to the limit
    either: retracting a session with an update must not be refused because of its neighbours.
    """
    if treatment.status == codes.TreatmentStatus.ENTERED_IN_ERROR:
        return
    if not isinstance(treatment.started_on, date) or detail.product not in codes.ToxinProduct.values:
        return
    if "started_on" in errors:  # out of range: no window around it to look at
        return
    units = sum((i.units for i in injections if isinstance(i.units, Decimal)), Decimal(0))
    span = codes.TOXIN_WINDOW_DAYS - 1
    others = (
        Treatment.objects.filter(
            patient=treatment.patient,
            kind=codes.TreatmentKind.BOTULINUM_TOXIN,
            botulinum_toxin__product=detail.product,
            started_on__range=(
                treatment.started_on - timedelta(days=span),
                treatment.started_on + timedelta(days=span),
            ),
        )
        .exclude(status=codes.TreatmentStatus.ENTERED_IN_ERROR)
        .exclude(pk=treatment.pk)
        .annotate(units=Sum("botulinum_toxin__injections__units"))
        .values_list("started_on", "units")
    )
    sessions = [rules.ToxinSession(given_on, total or Decimal(0)) for given_on, total in others]
    sessions.append(rules.ToxinSession(treatment.started_on, units))
    excess = rules.toxin_units_excess(sessions)
    if excess:
        errors.add(
            "botulinum_toxin.injections",
            f"This makes {excess.units} units of {codes.ToxinProduct(detail.product).label} between "
            f"{excess.window_start} and {excess.window_end}; at most {codes.TOXIN_UNITS_LIMIT} units "
            f"of one product are allowed in any {codes.TOXIN_WINDOW_DAYS} days.",
            "toxin_units_limit",
        )


def _mvd_detail(treatment: Treatment, given: Mapping, errors: FieldErrors):
    detail = getattr(treatment, "mvd", None) if treatment.pk else None
    detail = detail or MvdDetail(treatment=treatment)
    _unknown_keys(given, MVD_FIELDS, "mvd", errors)
    previous_surgeon = detail.surgeon_id
    for key in ("technique", "redo", "redo_of", "surgeon"):
        if key in given:
            setattr(detail, key, given[key])
    if detail.redo_of is not None:
        detail.redo = True
    check_fields(detail, errors, prefix="mvd.", exclude=["treatment", "redo_of", "surgeon"])
    # Checked when named, not on every later change: a surgeon who has since left the clinic
    # (deactivated) or changed role still operated, and the MVD's other details stay editable.
    surgeon = detail.surgeon
    if (
        surgeon is not None
        and surgeon.pk != previous_surgeon
        and not (surgeon.is_staff and role_of(surgeon) == Role.CLINICIAN)
    ):
        errors.add("mvd.surgeon", "The surgeon is a clinician of the clinic with a staff login.", "invalid")
    earlier = detail.redo_of
    if earlier is not None:
        if earlier.patient_id != treatment.patient_id:
            errors.add("mvd.redo_of", "This belongs to another patient.", "other_patient")
        elif earlier.kind != codes.TreatmentKind.MVD or (treatment.pk and earlier.pk == treatment.pk):
            errors.add("mvd.redo_of", "A redo links to an earlier MVD.", "invalid")
        elif isinstance(treatment.started_on, date) and earlier.started_on >= treatment.started_on:
            errors.add("mvd.redo_of", "The earlier MVD must be before this one.", "date_order")

    if "offending_vessels" in given:
        vessels = check_code_list(given["offending_vessels"], codes.Vessel, "mvd.offending_vessels", errors)
    else:
        vessels = list(detail.vessel_rows.values_list("vessel", flat=True)) if detail.pk else []
    errors.add("mvd.offending_vessels", rules.vessels_error(vessels), "vessels")

    complications = None
    if "complications" in given:
        complications = []
        for index, item in enumerate(given["complications"] or []):
            prefix = f"mvd.complications.{index}."
            complication = MvdComplication(
                kind=item.get("kind"), onset_on=item.get("onset_on"), resolved_on=item.get("resolved_on")
            )
            check_fields(complication, errors, prefix=prefix, exclude=["mvd"])
            errors.add(
                prefix + "resolved_on",
                rules.end_before_start_error(complication.onset_on, complication.resolved_on),
                "date_order",
            )
            check_not_before(
                prefix + "onset_on",
                complication.onset_on,
                treatment.started_on,
                "A complication cannot start before surgery.",
                errors,
            )
            for name in ("onset_on", "resolved_on"):
                _check_clinical_date(prefix + name, getattr(complication, name), treatment.patient, errors)
            complications.append(complication)
    return detail, vessels, complications


def _validate_treatment(treatment: Treatment, details: Mapping[str, Mapping | None], errors: FieldErrors):
    """Check the treatment and the one detail its kind takes; answer the unsaved detail rows."""
    patient = treatment.patient
    check_fields(treatment, errors, exclude=["patient", "diagnosis"])
    if treatment.diagnosis_id is None:
        errors.add("diagnosis", "A treatment is for a diagnosis.", "required")
    else:
        _check_same_patient("diagnosis", treatment.diagnosis, patient, errors)
    _check_treatment_date("started_on", treatment.started_on, patient, errors)
    _check_treatment_date("ended_on", treatment.ended_on, patient, errors)
    errors.add(
        "ended_on", rules.end_before_start_error(treatment.started_on, treatment.ended_on), "date_order"
    )

    wanted = DETAIL_FOR_KIND.get(treatment.kind)
    for name, given in details.items():
        if given is not None and name != wanted:
            errors.add(
                name, f"{treatment.get_kind_display()} treatments have no {name} details.", "kind_mismatch"
            )
    if wanted is None:
        return {}
    given = details.get(wanted)
    if given is None and not treatment.pk:
        errors.add(
            wanted, f"A {treatment.get_kind_display().lower()} treatment needs its details.", "required"
        )
        return {}
    given = given or {}
    if wanted == "medication":
        return {"medication": _medication_detail(treatment, given, errors)}
    if wanted == "botulinum_toxin":
        detail, injections = _toxin_detail(treatment, given, errors)
        _check_toxin_window(treatment, detail, injections, errors)
        return {"botulinum_toxin": (detail, injections if "injections" in given else None)}
    return {"mvd": _mvd_detail(treatment, given, errors)}


def _save_details(treatment: Treatment, checked: Mapping[str, Any]) -> None:
    if "medication" in checked:
        detail = checked["medication"]
        detail.treatment = treatment
        detail.save()
    if "botulinum_toxin" in checked:
        detail, injections = checked["botulinum_toxin"]
        detail.treatment = treatment
        detail.save()
        if injections is not None:
            detail.injections.all().delete()
            for injection in injections:
                injection.session = detail
            bulk_create_with_history(injections, ToxinInjection)
    if "mvd" in checked:
        detail, vessels, complications = checked["mvd"]
        detail.treatment = treatment
        detail.save()
        replace_code_rows(detail, "vessel_rows", "vessel", vessels)
        if complications is not None:
            _replace_complications(detail, complications)


def _replace_complications(detail: MvdDetail, complications: list[MvdComplication]) -> None:
    """Keep a complication that comes back unchanged (same kind and onset), so its id stays."""
    kept = {(c.kind, c.onset_on): c for c in detail.complications.all()}
    for complication in complications:
        existing = kept.pop((complication.kind, complication.onset_on), None)
        if existing is None:
            complication.mvd = detail
            complication.save()
        elif existing.resolved_on != complication.resolved_on:
            existing.resolved_on = complication.resolved_on
            existing.save(update_fields=["resolved_on"])
    MvdComplication.objects.filter(pk__in=[c.pk for c in kept.values()]).delete()


@transaction.atomic
def treatment_record(
    *,
    patient: Patient,
    kind: str,
    medication: Mapping | None = None,
    botulinum_toxin: Mapping | None = None,
    mvd: Mapping | None = None,
    **fields,
) -> Treatment:
    """Record a treatment and its detail; follow-up plans its visits in the same transaction."""
    patient = patient_lock(patient)
    treatment = Treatment(patient=patient, kind=kind)
    apply_changes(treatment, fields, TREATMENT_FIELDS)
    _end_completed_course(treatment)
    errors = FieldErrors()
    _refuse_archived(patient, errors)
    _check_initial_status(record_states.TREATMENT, treatment, errors)
    checked = _validate_treatment(
        treatment, {"medication": medication, "botulinum_toxin": botulinum_toxin, "mvd": mvd}, errors
    )
    errors.raise_if_any()
    treatment.save()
    _save_details(treatment, checked)
    treatment_changed.send(sender=Treatment, treatment=treatment, change="recorded")
    return treatment


def _end_completed_course(treatment: Treatment) -> None:
    """A medication course marked completed without an end date ended on the day it was recorded
    so: the plan and the episode (DOMAIN.md 9) count to the course's end, and an end left open
    would move on with the calendar, the nightly run planning reviews of a finished course."""
    today = timezone.localdate()
    if (
        treatment.kind == codes.TreatmentKind.MEDICATION
        and treatment.status == codes.TreatmentStatus.COMPLETED
        and treatment.ended_on is None
        and isinstance(treatment.started_on, date)
        and treatment.started_on <= today
    ):
        treatment.ended_on = today


@transaction.atomic
def treatment_update(
    *,
    treatment: Treatment,
    medication: Mapping | None = None,
    botulinum_toxin: Mapping | None = None,
    mvd: Mapping | None = None,
    **changes,
) -> Treatment:
    """Change a treatment or its detail (a dose change, a stop, a complication); ``kind`` is fixed.

    Detail mappings are partial: only the keys given change. Lists given (injections, vessels,
    complications) replace the stored list.
    """
    _locked_unless_archived(treatment.patient)
    treatment = Treatment.objects.select_related("patient", "diagnosis").get(pk=treatment.pk)
    _refuse_retracted(record_states.TREATMENT, treatment)
    if changes.pop("kind", treatment.kind) != treatment.kind:
        raise ValidationError({"kind": ["A treatment's kind cannot change; record a new treatment."]})
    previous = treatment.status
    apply_changes(treatment, changes, TREATMENT_FIELDS)
    _end_completed_course(treatment)
    errors = FieldErrors()
    _check_status_move(record_states.TREATMENT, previous, treatment, errors)
    checked = _validate_treatment(
        treatment, {"medication": medication, "botulinum_toxin": botulinum_toxin, "mvd": mvd}, errors
    )
    errors.raise_if_any()
    treatment.save()
    _save_details(treatment, checked)
    change = _change_of_update(record_states.TREATMENT, treatment)
    treatment_changed.send(sender=Treatment, treatment=treatment, change=change)
    return treatment


@transaction.atomic
def treatment_retract(*, treatment: Treatment) -> Treatment:
    """Mark a treatment recorded by mistake; follow-up cancels the visits it planned."""
    _locked_unless_archived(treatment.patient)
    treatment = Treatment.objects.get(pk=treatment.pk)
    if treatment.status != codes.TreatmentStatus.ENTERED_IN_ERROR:
        treatment.status = codes.TreatmentStatus.ENTERED_IN_ERROR
        treatment.save(update_fields=["status", "updated_at"])
        treatment_changed.send(sender=Treatment, treatment=treatment, change="retracted")
    return treatment
