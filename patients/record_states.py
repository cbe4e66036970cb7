"""The status moves of the clinical record: diagnoses, imaging studies and treatments.

"Entered in error" is how a record made by mistake is retracted (the retract services). It is
final: the record stays, unchanged, in the record and its history, so that what a clinician read
and acted on can always be found again; a correction is a new record. Staying in the same status
is not a move, and every live status may be retracted. Pure rules, no database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from django.db import models

from patients.codes import DiagnosisStatus, ImagingStatus, TreatmentKind, TreatmentStatus

# Evidence moves a diagnosis both ways: a work-up confirms or refutes a provisional one, a
# confirmed one is later refuted (the spasm proves to be blepharospasm, tics or myokymia) or put
# back in doubt, and a refuted one is reopened, or confirmed outright, when new evidence (an EMG
# lateral spread response, a new MRI) turns up. Each of these is a clinical judgement the history
# keeps; only a recording mistake ends a diagnosis.
DIAGNOSIS_ALLOWED: Mapping[str, frozenset[str]] = {
    DiagnosisStatus.PROVISIONAL: frozenset(
        {DiagnosisStatus.CONFIRMED, DiagnosisStatus.REFUTED, DiagnosisStatus.ENTERED_IN_ERROR}
    ),
    DiagnosisStatus.CONFIRMED: frozenset(
        {DiagnosisStatus.PROVISIONAL, DiagnosisStatus.REFUTED, DiagnosisStatus.ENTERED_IN_ERROR}
    ),
    DiagnosisStatus.REFUTED: frozenset(
        {DiagnosisStatus.PROVISIONAL, DiagnosisStatus.CONFIRMED, DiagnosisStatus.ENTERED_IN_ERROR}
    ),
    DiagnosisStatus.ENTERED_IN_ERROR: frozenset(),
}

# A study that was done is available until it is found to be entered in error (the wrong patient,
# a duplicate import); there is nothing in between.
IMAGING_ALLOWED: Mapping[str, frozenset[str]] = {
    ImagingStatus.AVAILABLE: frozenset({ImagingStatus.ENTERED_IN_ERROR}),
    ImagingStatus.ENTERED_IN_ERROR: frozenset(),
}

# planned -> active when the course starts; a one-off treatment (a toxin session, an MVD) goes
# from planned straight to completed on the day it is given, and a plan the patient declines or
# that is called off is stopped. An active course ends completed or stopped. A course ended by
# mistake (the wrong row, a stop the patient did not make) is put back to active, and how it ended
# can be corrected (completed <-> stopped, which matters when it was stopped for an adverse
# effect); a course resumed after a real stop is a new treatment, with its own start date and
# follow-up. A treatment that has begun is never planned again: its visits were planned from it.
TREATMENT_ALLOWED: Mapping[str, frozenset[str]] = {
    TreatmentStatus.PLANNED: frozenset(
        {
            TreatmentStatus.ACTIVE,
            TreatmentStatus.COMPLETED,
            TreatmentStatus.STOPPED,
            TreatmentStatus.ENTERED_IN_ERROR,
        }
    ),
    TreatmentStatus.ACTIVE: frozenset(
        {TreatmentStatus.COMPLETED, TreatmentStatus.STOPPED, TreatmentStatus.ENTERED_IN_ERROR}
    ),
    TreatmentStatus.COMPLETED: frozenset(
        {TreatmentStatus.ACTIVE, TreatmentStatus.STOPPED, TreatmentStatus.ENTERED_IN_ERROR}
    ),
    TreatmentStatus.STOPPED: frozenset(
        {TreatmentStatus.ACTIVE, TreatmentStatus.COMPLETED, TreatmentStatus.ENTERED_IN_ERROR}
    ),
    TreatmentStatus.ENTERED_IN_ERROR: frozenset(),
}


@dataclass(frozen=True)
class RecordStates:
    """One kind of record's statuses and moves, with the word the clinic uses for the record."""

    noun: str
    statuses: type[models.TextChoices]
    allowed: Mapping[str, frozenset[str]]
    retracted: str


DIAGNOSIS = RecordStates("diagnosis", DiagnosisStatus, DIAGNOSIS_ALLOWED, DiagnosisStatus.ENTERED_IN_ERROR)
IMAGING_STUDY = RecordStates("imaging study", ImagingStatus, IMAGING_ALLOWED, ImagingStatus.ENTERED_IN_ERROR)
TREATMENT = RecordStates("treatment", TreatmentStatus, TREATMENT_ALLOWED, TreatmentStatus.ENTERED_IN_ERROR)
BY_KIND = {"diagnosis": DIAGNOSIS, "imaging_study": IMAGING_STUDY, "treatment": TREATMENT}


def _states(kind_or_table: str | RecordStates) -> RecordStates:
    return kind_or_table if isinstance(kind_or_table, RecordStates) else BY_KIND[kind_or_table]


def _label(states: RecordStates, status: str) -> str:
    return str(states.statuses(status).label).lower()


def _a(word: str) -> str:
    return f"{'An' if word[:1] in 'aeiou' else 'A'} {word}"


def _unknown_error(states: RecordStates, *statuses) -> str | None:
    unknown = [status for status in statuses if status not in states.statuses.values]
    if unknown:
        return f"'{unknown[0]}' is not a status of a {states.noun}."
    return None


def transition_error(kind_or_table: str | RecordStates, current: str, new: str) -> str | None:
    """Why a record may not go from ``current`` to ``new``, or None when it may (or stays put)."""
    states = _states(kind_or_table)
    unknown = _unknown_error(states, current, new)
    if unknown or current == new or new in states.allowed[current]:
        return unknown
    if current == states.retracted:
        return (
            f"{_a(states.noun)} entered in error is final: it cannot become "
            f"{_label(states, new)}. Record a new {states.noun} instead."
        )
    allowed = ", ".join(sorted(_label(states, status) for status in states.allowed[current]))
    return f"{_a(_label(states, current))} {states.noun} can become: {allowed}; not {_label(states, new)}."


def retracted_error(kind_or_table: str | RecordStates, current: str) -> str | None:
    """Why a record may not be changed at all: once entered in error, none of its fields move."""
    states = _states(kind_or_table)
    if current != states.retracted:
        return None
    return (
        f"This {states.noun} was entered in error and is no longer changed; "
        f"record a new {states.noun} instead."
    )


def initial_error(kind_or_table: str | RecordStates, status: str) -> str | None:
    """Why a new record may not start in ``status``: retracting is for a record that exists."""
    states = _states(kind_or_table)
    unknown = _unknown_error(states, status)
    if unknown or status != states.retracted:
        return unknown
    return (
        f"A new {states.noun} cannot be entered in error; record it with its real status, "
        f"and retract it afterwards if it was a mistake."
    )


# Kinds of treatment that run over time and so can be stopped; a toxin session or an operation
# is over once given (it is retracted if it never took place).
COURSE_KINDS = frozenset({TreatmentKind.MEDICATION, TreatmentKind.OTHER})


def treatment_stoppable(kind: str, status: str) -> bool:
    """Whether a treatment is a course still under way (or about to be) that staff may stop."""
    return kind in COURSE_KINDS and status in (TreatmentStatus.PLANNED, TreatmentStatus.ACTIVE)
