"""Planning a patient's protocol visits (DOMAIN.md section 5).

The unit is the patient: a new toxin session re-anchors the earlier one's cycle, and a first
treatment ends the reviews of an untreated diagnosis, so a change to one record can change the
plan of another. Planning is a sync of what the protocols ask for against the visits that exist:
- it never touches completed, missed or manually created visits;
- a planned visit that no longer applies is cancelled, with the reason;
- a booked visit is the clinic's appointment with the patient: it is cancelled only when its
  treatment or diagnosis is retracted, the patient archived or their follow-up ended;
- a visit whose window has already closed is never created (a treatment recorded afterwards
  does not fill the overdue list with visits nobody could have attended);
- planning twice changes nothing.
Editing a protocol does not by itself re-plan anyone: the next time a patient's plan is synced (a
change to their record) it follows the new steps, and the daily roll of open series only adds
visits. A clinician re-plans everyone a protocol concerns at once with the protocol list's action
(or ``follow_up_refresh --protocol CODE``), as a follow-up run (followups/runs).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta

from django.conf import settings
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from followups import protocols
from followups.codes import AssessmentStatus, StepAnchor, VisitSource, VisitStatus
from followups.models import Assessment, Protocol, Visit
from followups.predicates import latest_palsy_after_surgery, next_start_after
from followups.visit_moves import visits_move_bulk
from patients.codes import DiagnosisStatus, TreatmentKind, TreatmentStatus
from patients.models import Diagnosis, Patient, Treatment

LIVE_DIAGNOSIS = (DiagnosisStatus.PROVISIONAL, DiagnosisStatus.CONFIRMED)


@dataclass
class Owner:
    """A treatment or an untreated diagnosis: what a set of protocol visits belongs to."""

    treatment: Treatment | None
    diagnosis: Diagnosis | None
    wanted: dict[tuple, protocols.Occurrence] = field(default_factory=dict)
    # Why its planned visits that are no longer wanted are cancelled.
    cancel_reason: str = "The plan changed (dates, dose or protocol)."
    # Retracted, archived or follow-up ended: its booked visits go too.
    cancel_booked: bool = False


@dataclass
class PlanResult:
    created: list[Visit] = field(default_factory=list)
    cancelled: list[Visit] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.cancelled)


def steps_by_kind() -> dict[str, list]:
    steps = defaultdict(list)
    for protocol in Protocol.objects.prefetch_related("steps"):
        steps[protocol.treatment_kind] = list(protocol.steps.all())
    return steps


def _as_step(step) -> protocols.Step:
    return protocols.Step(
        id=step.pk,
        purpose=step.purpose,
        offset_days=step.offset_days,
        window_before_days=step.window_before_days,
        window_after_days=step.window_after_days,
        repeat=step.repeat,
        repeat_every_days=step.repeat_every_days,
        repeat_until_day=step.repeat_until_day,
        visit_kind=step.visit_kind,
    )


def _palsy_anchor(surgery: Treatment, assessments: list[Assessment], next_surgery_on: date | None):
    """The date of the latest House-Brackmann grade after surgery, if it is II or worse."""
    palsy = latest_palsy_after_surgery(
        assessments, surgery_on=surgery.started_on, next_surgery_on=next_surgery_on
    )
    return palsy[0] if palsy else None


def follow_up_stopped(patient) -> str | None:
    """Why no visit is planned for the patient any more (the reason their open ones are cancelled
    with), or None while they are in follow-up."""
    if patient.archived:
        return "The patient was archived."
    if patient.follow_up_ended_on is not None:
        return "The patient's follow-up ended."
    return None


def treatment_owner(treatment, steps, *, today, next_same_kind_on, assessments, stopped) -> Owner:
    owner = Owner(treatment=treatment, diagnosis=treatment.diagnosis)
    if stopped:
        owner.cancel_reason, owner.cancel_booked = stopped, True
        return owner
    if treatment.status == TreatmentStatus.ENTERED_IN_ERROR:
        owner.cancel_reason, owner.cancel_booked = "The treatment was entered in error.", True
        return owner
    if treatment.status == TreatmentStatus.STOPPED:
        owner.cancel_reason = "The treatment was stopped."
        return owner

    stop_before = None
    if treatment.kind == TreatmentKind.BOTULINUM_TOXIN and next_same_kind_on:
        stop_before = next_same_kind_on
        owner.cancel_reason = f"A toxin session on {next_same_kind_on} started a new cycle."
    medication = (
        getattr(treatment, "medication", None) if treatment.kind == TreatmentKind.MEDICATION else None
    )
    if medication is not None:
        course_end = treatment.ended_on
        if course_end is None and treatment.status == TreatmentStatus.COMPLETED:
            course_end = today
        if course_end is not None:
            stop_before = course_end + timedelta(days=1)
            owner.cancel_reason = "The course ended."

    for step in steps:
        if step.only_for_drug and (medication is None or medication.drug != step.only_for_drug):
            continue
        if step.anchor == StepAnchor.FACIAL_PALSY:
            anchor = _palsy_anchor(treatment, assessments, next_same_kind_on)
        elif step.anchor == StepAnchor.LAST_DOSE_CHANGE and medication is not None:
            anchor = medication.dose_changed_on or treatment.started_on
        else:
            anchor = treatment.started_on
        if anchor is None:
            continue
        for occurrence in protocols.occurrences(_as_step(step), anchor, today=today, stop_before=stop_before):
            owner.wanted[occurrence.key] = occurrence
    return owner


def untreated_owner(diagnosis, steps, *, today, treated, stopped) -> Owner:
    owner = Owner(treatment=None, diagnosis=diagnosis)
    if stopped:
        owner.cancel_reason, owner.cancel_booked = stopped, True
    elif diagnosis.status not in LIVE_DIAGNOSIS:
        owner.cancel_reason, owner.cancel_booked = "The diagnosis was refuted or entered in error.", True
    elif treated:
        owner.cancel_reason = "A treatment was recorded."
    else:
        for step in steps:
            for occurrence in protocols.occurrences(_as_step(step), diagnosis.diagnosed_on, today=today):
                owner.wanted[occurrence.key] = occurrence
    return owner


def _owners_for(patient: Patient, *, today: date) -> list[Owner]:
    treatments = list(
        patient.treatments.select_related("diagnosis", "medication").order_by("started_on", "pk")
    )
    assessments = list(
        patient.assessments.filter(status=AssessmentStatus.FINAL, house_brackmann_grade__isnull=False)
    )
    return owners_from(
        patient, treatments, list(patient.diagnoses.all()), assessments, steps_by_kind(), today=today
    )


def next_start_of_same_kind(treatments: list[Treatment]) -> dict[int, date | None]:
    """For each treatment, when the next treatment of its kind that took place started (None if
    none did): a toxin session's cycle, and an MVD's palsy reviews, end there. A retracted one never
    was; a stopped one was not given (the flags bound a palsy the same way)."""
    live = [
        t for t in treatments if t.status not in (TreatmentStatus.ENTERED_IN_ERROR, TreatmentStatus.STOPPED)
    ]
    return {
        treatment.pk: next_start_after(
            (t.started_on for t in live if t.kind == treatment.kind and t.pk != treatment.pk),
            treatment.started_on,
        )
        for treatment in treatments
    }


def owners_from(patient, treatments, diagnoses, assessments, steps, *, today: date) -> list[Owner]:
    """What the record asks for, from its rows in memory: one owner per treatment (in the order
    given, oldest first), then one per diagnosis. ``assessments``: the final House-Brackmann grades."""
    next_on = next_start_of_same_kind(treatments)
    owners = [
        treatment_owner(
            treatment,
            steps.get(treatment.kind, []),
            today=today,
            next_same_kind_on=next_on[treatment.pk],
            assessments=assessments,
            stopped=follow_up_stopped(patient),
        )
        for treatment in treatments
    ]
    treated = {t.diagnosis_id for t in treatments if t.status != TreatmentStatus.ENTERED_IN_ERROR}
    owners += [
        untreated_owner(
            diagnosis,
            steps.get("", []),
            today=today,
            treated=diagnosis.pk in treated,
            stopped=follow_up_stopped(patient),
        )
        for diagnosis in diagnoses
    ]
    return owners


def visits_plan_for(*, patient: Patient, today: date | None = None, extend_only: bool = False) -> PlanResult:
    """Sync the patient's protocol visits with what their record asks for now.

    ``extend_only`` (the daily roll of open series) adds the visits that have come within the
    horizon and cancels nothing. It only extends: an open series gains visits after its latest
    one, and nothing else is added, so a step edited since a plan was made does not put a second
    visit beside the first (the patient's next full sync follows the edit). Call inside the
    transaction of the write that changed the record.
    """
    today = today or timezone.localdate()
    owners = {}
    for owner in _owners_for(patient, today=today):
        key = ("treatment", owner.treatment.pk) if owner.treatment else ("diagnosis", owner.diagnosis.pk)
        owners[key] = owner

    result = PlanResult()
    cancelled: list[tuple[Visit, str]] = []
    existing = patient.visits.filter(source=VisitSource.PROTOCOL).exclude(status=VisitStatus.CANCELLED)
    # The protocol date of each owner's step's latest live visit: where the daily roll extends from.
    latest = {}
    for visit in existing:
        key = ("treatment", visit.treatment_id) if visit.treatment_id else ("diagnosis", visit.diagnosis_id)
        owner = owners.get(key)
        if owner is None:
            continue
        on = visit.anchor_on + timedelta(days=visit.protocol_day)
        latest[key, visit.protocol_step_id] = max(on, latest.get((key, visit.protocol_step_id), on))
        if owner.wanted.pop((visit.protocol_step_id, visit.anchor_on, visit.protocol_day), None):
            continue
        if extend_only:
            continue
        if visit.status == VisitStatus.PLANNED or (
            visit.status == VisitStatus.BOOKED and owner.cancel_booked
        ):
            cancelled.append((visit, owner.cancel_reason))

    for key, owner in owners.items():
        for occurrence in owner.wanted.values():
            if occurrence.window_end < today:
                continue
            if extend_only and not _extends_series(occurrence, latest.get((key, occurrence.step_id))):
                continue
            result.created.append(new_visit(patient, owner, occurrence))

    result.cancelled = visits_move_bulk(moves=cancelled, to=VisitStatus.CANCELLED, history_reason="planning")
    if result.created:
        bulk_create_with_history(result.created, Visit, default_change_reason="planning")
    return result


def _extends_series(occurrence: protocols.Occurrence, latest_on: date | None) -> bool:
    return occurrence.open_series and (latest_on is None or occurrence.scheduled_on > latest_on)


def new_visit(patient: Patient, owner: Owner, occurrence: protocols.Occurrence) -> Visit:
    return Visit(
        patient=patient,
        treatment=owner.treatment,
        diagnosis=owner.diagnosis,
        purpose=occurrence.purpose,
        visit_kind=occurrence.visit_kind,
        scheduled_for=protocols.visit_time(
            occurrence.scheduled_on, hour=settings.CLINIC_VISIT_HOUR, zone=settings.CLINIC_TIME_ZONE
        ),
        window_start=occurrence.window_start,
        window_end=occurrence.window_end,
        status=VisitStatus.PLANNED,
        source=VisitSource.PROTOCOL,
        protocol_step_id=occurrence.step_id,
        anchor_on=occurrence.anchor_on,
        protocol_day=occurrence.protocol_day,
    )
