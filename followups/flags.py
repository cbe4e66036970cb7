"""The flags a clinician should see (DOMAIN.md sections 4 and 8), computed for one patient.

``flags_compute`` reads the patient's record in a fixed number of queries and answers the flags
that hold today; ``followups.services.patient_follow_up_refresh`` stores them, keeping the
``since`` of a flag that still holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Q

from followups.codes import AssessmentStatus, FlagCode, LabTest, OutcomeCategory, VisitStatus
from followups.models import Assessment, LabResult, TreatmentOutcome, Visit
from patients.codes import (
    HIGH_RESOLUTION_SEQUENCES,
    DiagnosisStatus,
    Drug,
    HfsKind,
    HlaB1502Result,
    ImagingModality,
    ImagingStatus,
    SecondaryCause,
    TreatmentKind,
    TreatmentStatus,
)
from patients.models import Patient

TOXIN_MIN_INTERVAL_DAYS = 84
LAB_MONITORING_DAYS = 90
CONSIDER_MVD_AFTER_DAYS = 90
LAB_FOR_DRUG = {Drug.CARBAMAZEPINE: LabTest.BLOOD_COUNT, Drug.OXCARBAZEPINE: LabTest.SODIUM}


def codes_label(choices, value) -> str:
    return str(choices(value).label)


@dataclass(frozen=True)
class Flag:
    code: str
    subject: str
    detail: str


def _toxin_interval_flags(toxin_sessions) -> list[Flag]:
    flags = []
    for previous, session in zip(toxin_sessions, toxin_sessions[1:], strict=False):
        gap = (session.started_on - previous.started_on).days
        if gap < TOXIN_MIN_INTERVAL_DAYS:
            flags.append(
                Flag(
                    FlagCode.BOTOX_INTERVAL_SHORT,
                    str(session.uuid),
                    f"Toxin session of {session.started_on} came {gap} days after the previous one "
                    f"(at least {TOXIN_MIN_INTERVAL_DAYS} expected).",
                )
            )
    return flags


def _medication_flags(patient, courses, labs, today) -> list[Flag]:
    flags = []
    for course in courses:
        drug = course.medication.drug
        if (
            drug == Drug.CARBAMAZEPINE
            and patient.at_risk_hla_b1502
            and patient.hla_b1502_result == HlaB1502Result.NOT_TESTED
        ):
            flags.append(
                Flag(
                    FlagCode.HLA_B1502_MISSING,
                    str(course.uuid),
                    f"Carbamazepine from {course.started_on} without an HLA-B*1502 result "
                    "for a patient of at-risk ancestry.",
                )
            )
        test = LAB_FOR_DRUG.get(drug)
        if test and course.status == TreatmentStatus.ACTIVE and course.started_on <= today:
            recent = [
                lab
                for lab in labs
                if lab.test == test and lab.taken_on >= today - timedelta(days=LAB_MONITORING_DAYS)
            ]
            if not recent:
                flags.append(
                    Flag(
                        FlagCode.LAB_MONITORING_DUE,
                        str(course.uuid),
                        f"{codes_label(LabTest, test)} due: none in the last {LAB_MONITORING_DAYS} days "
                        f"of the {codes_label(Drug, drug).lower()} course.",
                    )
                )
    return flags


def _consider_mvd_flags(treatments, outcomes, today) -> list[Flag]:
    """Primary HFS, drugs or toxin for 90 days or more, and the outcome unchanged or worse.

    A toxin "treatment" is a series of sessions: it counts as active from its first session
    while its latest session is not stopped, and is judged by the latest session's outcome.
    """
    flags = []
    courses = [
        t for t in treatments if t.kind == TreatmentKind.MEDICATION and t.status == TreatmentStatus.ACTIVE
    ]
    sessions = [t for t in treatments if t.kind == TreatmentKind.BOTULINUM_TOXIN]
    candidates = [(course, course.started_on) for course in courses]
    if sessions and sessions[-1].status != TreatmentStatus.STOPPED:
        candidates.append((sessions[-1], sessions[0].started_on))
    for treatment, since in candidates:
        outcome = outcomes.get(treatment.pk)
        if (
            treatment.diagnosis.kind == HfsKind.PRIMARY
            and (today - since).days >= CONSIDER_MVD_AFTER_DAYS
            and outcome in (OutcomeCategory.UNCHANGED, OutcomeCategory.WORSE)
        ):
            flags.append(
                Flag(
                    FlagCode.CONSIDER_MVD_EVALUATION,
                    str(treatment.uuid),
                    f"{treatment.get_kind_display()} since {since}, outcome {outcome}: "
                    "consider evaluation for microvascular decompression.",
                )
            )
    return flags


def _diagnosis_flags(diagnoses, studies) -> list[Flag]:
    flags = []
    has_hr_mri = any(
        study.modality == ImagingModality.MRI
        and HIGH_RESOLUTION_SEQUENCES & {row.sequence for row in study.sequence_rows.all()}
        for study in studies
    )
    for diagnosis in diagnoses:
        if diagnosis.status == DiagnosisStatus.CONFIRMED and not has_hr_mri:
            flags.append(
                Flag(
                    FlagCode.IMAGING_MISSING,
                    str(diagnosis.uuid),
                    "Confirmed diagnosis without an MRI that includes a CISS or FIESTA sequence.",
                )
            )
        if diagnosis.kind == HfsKind.SECONDARY and (
            not studies or diagnosis.secondary_cause == SecondaryCause.OTHER
        ):
            reason = "no imaging" if not studies else "cause recorded as 'other'"
            flags.append(
                Flag(
                    FlagCode.SECONDARY_CAUSE_UNCONFIRMED,
                    str(diagnosis.uuid),
                    f"Secondary diagnosis with {reason}.",
                )
            )
    return flags


def _mvd_flags(surgeries, outcomes, graded) -> list[Flag]:
    flags = []
    for surgery, redo in zip(surgeries, [*surgeries[1:], None], strict=False):
        if outcomes.get(surgery.pk) == OutcomeCategory.RECURRENCE:
            flags.append(
                Flag(
                    FlagCode.RECURRENCE_AFTER_MVD,
                    str(surgery.uuid),
                    f"Recurrence after the MVD of {surgery.started_on}.",
                )
            )
        # A grade after a redo belongs to the redo (as the palsy reviews of planning do).
        after = [
            a
            for a in graded
            if a.assessed_on > surgery.started_on and (redo is None or a.assessed_on < redo.started_on)
        ]
        if after and after[-1].house_brackmann_grade >= 2:
            flags.append(
                Flag(
                    FlagCode.FACIAL_PALSY_AFTER_MVD,
                    str(surgery.uuid),
                    f"House-Brackmann grade {after[-1].house_brackmann_grade} on {after[-1].assessed_on} "
                    f"after the MVD of {surgery.started_on}.",
                )
            )
    return flags


def _overdue_flags(overdue_visits) -> list[Flag]:
    return [
        Flag(
            FlagCode.OVERDUE_FOLLOW_UP,
            str(visit.uuid),
            f"{visit.purpose}: {visit.get_status_display().lower()}, window closed on {visit.window_end}.",
        )
        for visit in overdue_visits
    ]


def overdue_visits_filter(today: date):
    """The visits that make a patient overdue: missed and not rebooked, or planned past the window."""
    return Q(status=VisitStatus.MISSED, rebooked_as__isnull=True) | Q(
        status=VisitStatus.PLANNED, window_end__lt=today
    )


def flags_compute(*, patient: Patient, today: date) -> list[Flag]:
    if patient.archived:
        return []
    treatments = [
        t
        for t in patient.treatments.select_related("diagnosis", "medication").order_by("started_on", "pk")
        if t.status != TreatmentStatus.ENTERED_IN_ERROR
    ]
    diagnoses = [
        d
        for d in patient.diagnoses.all()
        if d.status not in (DiagnosisStatus.ENTERED_IN_ERROR, DiagnosisStatus.REFUTED)
    ]
    studies = list(
        patient.imaging_studies.filter(status=ImagingStatus.AVAILABLE).prefetch_related("sequence_rows")
    )
    labs = list(LabResult.objects.filter(patient=patient, status=AssessmentStatus.FINAL))
    graded = list(
        Assessment.objects.filter(
            patient=patient, status=AssessmentStatus.FINAL, house_brackmann_grade__isnull=False
        ).order_by("assessed_on", "pk")
    )
    outcomes = dict(
        TreatmentOutcome.objects.filter(treatment__patient=patient).values_list("treatment_id", "category")
    )
    overdue = Visit.objects.filter(overdue_visits_filter(today), patient=patient)

    toxin = [t for t in treatments if t.kind == TreatmentKind.BOTULINUM_TOXIN]
    courses = [
        t
        for t in treatments
        if t.kind == TreatmentKind.MEDICATION
        and t.status in (TreatmentStatus.PLANNED, TreatmentStatus.ACTIVE)
    ]
    surgeries = [t for t in treatments if t.kind == TreatmentKind.MVD and t.status != TreatmentStatus.STOPPED]
    return [
        *_toxin_interval_flags(toxin),
        *_medication_flags(patient, courses, labs, today),
        *_consider_mvd_flags(treatments, outcomes, today),
        *_diagnosis_flags(diagnoses, studies),
        *_mvd_flags(surgeries, outcomes, graded),
        *_overdue_flags(overdue),
    ]
