"""The flags a clinician should see (DOMAIN.md sections 4 and 8, rule version 2): pure rules.

``flags_for`` answers the flags that hold on a day from a patient's ``FlagInputs``, which
``followups.selectors.flag_inputs_for`` reads in a fixed number of queries; ``followups.flags_store``
stores them. Nothing here reads the database, so every rule is tested on plain values.

Each flag carries ``since``: the date of the fact that raised it (the session, the window's end,
the current log, the day a course reached 90 days, the diagnosis), not the day it was computed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from followups.codes import FlagCode, LabTest, OutcomeCategory
from followups.predicates import latest_palsy_after_surgery, next_start_after
from patients.codes import (
    HIGH_RESOLUTION_SEQUENCES,
    DiagnosisStatus,
    Drug,
    HfsKind,
    HlaB1502Result,
    ImagingModality,
    SecondaryCause,
    TreatmentKind,
    TreatmentStatus,
)

TOXIN_MIN_INTERVAL_DAYS = 84
LAB_MONITORING_DAYS = 90
CONSIDER_MVD_AFTER_DAYS = 90
LOST_AFTER_DAYS = 365  # DOMAIN.md section 9's default; the clinic's own is settings.LOST_TO_FOLLOW_UP_DAYS
LAB_FOR_DRUG = {Drug.CARBAMAZEPINE: LabTest.BLOOD_COUNT, Drug.OXCARBAZEPINE: LabTest.SODIUM}
# An MVD in these states means the surgical evaluation has happened (a stopped one was not done).
MVD_EVALUATED = (TreatmentStatus.PLANNED, TreatmentStatus.ACTIVE, TreatmentStatus.COMPLETED)


def codes_label(choices, value) -> str:
    return str(choices(value).label)


@dataclass(frozen=True)
class Flag:
    code: str
    subject: str
    detail: str
    since: date
    visit_id: int | None = None  # an overdue flag's visit


@dataclass(frozen=True)
class TreatmentFacts:
    """A live treatment (never a retracted one) with what the flags read of it."""

    id: int
    uuid: str
    kind: str
    status: str
    started_on: date
    diagnosis_kind: str
    label: str
    drug: str = ""
    outcome: str | None = None
    outcome_current_on: date | None = None


@dataclass(frozen=True)
class DiagnosisFacts:
    """A diagnosis neither refuted nor retracted."""

    uuid: str
    kind: str
    status: str
    secondary_cause: str
    diagnosed_on: date


@dataclass(frozen=True)
class StudyFacts:
    modality: str
    sequences: frozenset[str]


@dataclass(frozen=True)
class LabFacts:
    test: str
    taken_on: date


@dataclass(frozen=True)
class GradeFacts:
    pk: int
    assessed_on: date
    house_brackmann_grade: int


@dataclass(frozen=True)
class OverdueVisitFacts:
    """A visit that makes the patient overdue (``followups.predicates.overdue_visits_filter``)."""

    uuid: str
    purpose: str
    status_label: str
    window_end: date
    id: int | None = None


@dataclass(frozen=True)
class FlagInputs:
    archived: bool = False
    at_risk_hla_b1502: bool = False
    hla_b1502_result: str = HlaB1502Result.NOT_TESTED
    treatments: tuple[TreatmentFacts, ...] = ()  # oldest first
    diagnoses: tuple[DiagnosisFacts, ...] = ()
    studies: tuple[StudyFacts, ...] = ()  # available studies only
    labs: tuple[LabFacts, ...] = ()  # final results only
    graded: tuple[GradeFacts, ...] = ()  # final House-Brackmann grades
    overdue: tuple[OverdueVisitFacts, ...] = ()
    # Section 9: the day a call reached a wrong number (contact data not updated since), the day of
    # the last attended visit, the first day any live visit of the patient was due.
    contact_details_invalid_since: date | None = None
    last_attended_on: date | None = None
    first_due_on: date | None = None
    resumed_on: date | None = None  # the day follow-up was last resumed


def _of_kind(inputs: FlagInputs, kind: str) -> list[TreatmentFacts]:
    return [t for t in inputs.treatments if t.kind == kind]


def toxin_interval_flags(inputs: FlagInputs) -> list[Flag]:
    """v2: the latest session and the one before it only; older pairs are history. A stopped
    session was never given; a planned one is warned about before it is (the point of the flag)."""
    sessions = [
        t for t in _of_kind(inputs, TreatmentKind.BOTULINUM_TOXIN) if t.status != TreatmentStatus.STOPPED
    ]
    if len(sessions) < 2:
        return []
    previous, latest = sessions[-2], sessions[-1]
    gap = (latest.started_on - previous.started_on).days
    if gap >= TOXIN_MIN_INTERVAL_DAYS:
        return []
    return [
        Flag(
            FlagCode.BOTOX_INTERVAL_SHORT,
            latest.uuid,
            f"Toxin session of {latest.started_on} came {gap} days after the previous one "
            f"(at least {TOXIN_MIN_INTERVAL_DAYS} expected).",
            latest.started_on,
        )
    ]


def _lab_due_since(course: TreatmentFacts, labs: list[LabFacts], today: date) -> date | None:
    """The day monitoring fell due (none in the last 90 days), or None while a result is recent."""
    taken = [lab.taken_on for lab in labs if lab.taken_on <= today]
    last = max(taken, default=None)
    if last is not None and last >= today - timedelta(days=LAB_MONITORING_DAYS):
        return None
    if last is None:
        return course.started_on
    return max(course.started_on, last + timedelta(days=LAB_MONITORING_DAYS + 1))


def medication_flags(inputs: FlagInputs, today: date) -> list[Flag]:
    flags = []
    courses = [
        t
        for t in _of_kind(inputs, TreatmentKind.MEDICATION)
        if t.status in (TreatmentStatus.PLANNED, TreatmentStatus.ACTIVE)
    ]
    for course in courses:
        if (
            course.drug == Drug.CARBAMAZEPINE
            and inputs.at_risk_hla_b1502
            and inputs.hla_b1502_result == HlaB1502Result.NOT_TESTED
        ):
            flags.append(
                Flag(
                    FlagCode.HLA_B1502_MISSING,
                    course.uuid,
                    f"Carbamazepine from {course.started_on} without an HLA-B*1502 result "
                    "for a patient of at-risk ancestry.",
                    course.started_on,
                )
            )
        test = LAB_FOR_DRUG.get(course.drug)
        if not test or course.status != TreatmentStatus.ACTIVE or course.started_on > today:
            continue
        since = _lab_due_since(course, [lab for lab in inputs.labs if lab.test == test], today)
        if since is not None:
            flags.append(
                Flag(
                    FlagCode.LAB_MONITORING_DUE,
                    course.uuid,
                    f"{codes_label(LabTest, test)} due: none in the last {LAB_MONITORING_DAYS} days "
                    f"of the {codes_label(Drug, course.drug).lower()} course.",
                    since,
                )
            )
    return flags


def consider_mvd_flags(inputs: FlagInputs, today: date) -> list[Flag]:
    """Primary HFS, drugs or toxin for 90 days or more, the outcome unchanged or worse, and (v2) no
    MVD recorded: once one is planned, done or under way, the evaluation has happened.

    A toxin "treatment" is a series of sessions: it counts from its first session while its latest
    session is not stopped, and is judged by the latest session's outcome (read at its peak).
    """
    if any(t.kind == TreatmentKind.MVD and t.status in MVD_EVALUATED for t in inputs.treatments):
        return []
    candidates = [
        (course, course.started_on)
        for course in _of_kind(inputs, TreatmentKind.MEDICATION)
        if course.status == TreatmentStatus.ACTIVE
    ]
    sessions = _of_kind(inputs, TreatmentKind.BOTULINUM_TOXIN)
    if sessions and sessions[-1].status != TreatmentStatus.STOPPED:
        candidates.append((sessions[-1], sessions[0].started_on))
    flags = []
    for treatment, since in candidates:
        reached = since + timedelta(days=CONSIDER_MVD_AFTER_DAYS)
        if (
            treatment.diagnosis_kind == HfsKind.PRIMARY
            and reached <= today
            and treatment.outcome in (OutcomeCategory.UNCHANGED, OutcomeCategory.WORSE)
        ):
            flags.append(
                Flag(
                    FlagCode.CONSIDER_MVD_EVALUATION,
                    treatment.uuid,
                    f"{treatment.label} since {since}, outcome {treatment.outcome}: "
                    "consider evaluation for microvascular decompression.",
                    reached,
                )
            )
    return flags


def diagnosis_flags(inputs: FlagInputs) -> list[Flag]:
    flags = []
    has_hr_mri = any(
        study.modality == ImagingModality.MRI and HIGH_RESOLUTION_SEQUENCES & study.sequences
        for study in inputs.studies
    )
    for diagnosis in inputs.diagnoses:
        if diagnosis.status == DiagnosisStatus.CONFIRMED and not has_hr_mri:
            flags.append(
                Flag(
                    FlagCode.IMAGING_MISSING,
                    diagnosis.uuid,
                    "Confirmed diagnosis without an MRI that includes a CISS or FIESTA sequence.",
                    diagnosis.diagnosed_on,
                )
            )
        if diagnosis.kind == HfsKind.SECONDARY and (
            not inputs.studies or diagnosis.secondary_cause == SecondaryCause.OTHER
        ):
            reason = "no imaging" if not inputs.studies else "cause recorded as 'other'"
            flags.append(
                Flag(
                    FlagCode.SECONDARY_CAUSE_UNCONFIRMED,
                    diagnosis.uuid,
                    f"Secondary diagnosis with {reason}.",
                    diagnosis.diagnosed_on,
                )
            )
    return flags


def mvd_flags(inputs: FlagInputs) -> list[Flag]:
    # A stopped MVD was not done: it raises nothing and does not split the palsy of another.
    surgeries = [t for t in _of_kind(inputs, TreatmentKind.MVD) if t.status != TreatmentStatus.STOPPED]
    flags = []
    for surgery in surgeries:
        if surgery.outcome == OutcomeCategory.RECURRENCE:
            flags.append(
                Flag(
                    FlagCode.RECURRENCE_AFTER_MVD,
                    surgery.uuid,
                    f"Recurrence after the MVD of {surgery.started_on}.",
                    surgery.outcome_current_on or surgery.started_on,
                )
            )
        # A grade after a redo belongs to the redo, as the palsy reviews of planning say.
        redo_on = next_start_after((s.started_on for s in surgeries), surgery.started_on)
        palsy = latest_palsy_after_surgery(
            inputs.graded, surgery_on=surgery.started_on, next_surgery_on=redo_on
        )
        if palsy is not None:
            graded_on, grade = palsy
            flags.append(
                Flag(
                    FlagCode.FACIAL_PALSY_AFTER_MVD,
                    surgery.uuid,
                    f"House-Brackmann grade {grade} on {graded_on} after the MVD of {surgery.started_on}.",
                    graded_on,
                )
            )
    return flags


def overdue_flags(inputs: FlagInputs) -> list[Flag]:
    return [
        Flag(
            FlagCode.OVERDUE_FOLLOW_UP,
            visit.uuid,
            f"{visit.purpose}: {visit.status_label.lower()}, window closed on {visit.window_end}.",
            visit.window_end,
            visit.id,
        )
        for visit in inputs.overdue
    ]


def lost_since(inputs: FlagInputs, today: date, days: int) -> date | None:
    """The day the patient became lost to follow-up (DOMAIN.md section 9), None if they are not:
    follow-up is due (an overdue visit) and no visit attended for ``days`` days, counted from the
    last attended visit or, for a patient who never came, from the first day a visit was due, and
    never from before follow-up was last resumed.
    ``followups.predicates.lost_to_follow_up`` is the same rule as a query."""
    anchor = inputs.last_attended_on or inputs.first_due_on
    if anchor is not None and inputs.resumed_on is not None:
        anchor = max(anchor, inputs.resumed_on)  # the time follow-up was ended does not count
    if not inputs.overdue or anchor is None or anchor > today - timedelta(days=days):
        return None
    return max(anchor + timedelta(days=days), min(visit.window_end for visit in inputs.overdue))


def call_list_flags(inputs: FlagInputs, today: date, lost_after_days: int) -> list[Flag]:
    flags = []
    lost = lost_since(inputs, today, lost_after_days)
    if lost is not None:
        last = inputs.last_attended_on
        seen = f"last attended visit on {last}" if last else "no visit attended"
        flags.append(Flag(FlagCode.LOST_TO_FOLLOW_UP, "", f"Follow-up overdue, {seen}.", lost))
    if inputs.contact_details_invalid_since is not None:
        flags.append(
            Flag(
                FlagCode.CONTACT_DETAILS_INVALID,
                "",
                "A call reached a wrong number: update the phone or e-mail.",
                inputs.contact_details_invalid_since,
            )
        )
    return flags


def flags_for(inputs: FlagInputs, *, today: date, lost_after_days: int = LOST_AFTER_DAYS) -> list[Flag]:
    """Every flag that holds on ``today``; an archived patient has none."""
    if inputs.archived:
        return []
    return [
        *toxin_interval_flags(inputs),
        *medication_flags(inputs, today),
        *consider_mvd_flags(inputs, today),
        *diagnosis_flags(inputs),
        *mvd_flags(inputs),
        *overdue_flags(inputs),
        *call_list_flags(inputs, today, lost_after_days),
    ]
