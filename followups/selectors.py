"""Reads that staff pages and the API share: worklists and outcomes.

Each answers a queryset that fetches what a page shows in a fixed number of queries, whatever
the page size: the patient (and treatment) come joined, never one query per row.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db.models import Max, Min, Q, QuerySet
from django.utils import timezone

from followups.codes import AssessmentStatus, VisitStatus
from followups.flags import (
    DiagnosisFacts,
    FlagInputs,
    GradeFacts,
    LabFacts,
    OverdueVisitFacts,
    StudyFacts,
    TreatmentFacts,
)
from followups.models import Assessment, LabResult, PatientFlag, TreatmentOutcome, Visit
from followups.predicates import in_follow_up, overdue_as_stored, overdue_visits_filter, start_of_day
from patients.codes import DiagnosisStatus, ImagingStatus, TreatmentKind, TreatmentStatus
from patients.models import Patient


def worklist_due(*, days: int, today: date | None = None) -> QuerySet[Visit]:
    """Planned or booked visits from today through the next ``days`` days, soonest first."""
    today = today or timezone.localdate()
    return (
        Visit.objects.filter(
            status__in=(VisitStatus.PLANNED, VisitStatus.BOOKED),
            scheduled_for__gte=start_of_day(today),
            scheduled_for__lt=start_of_day(today + timedelta(days=days + 1)),
        )
        .filter(in_follow_up())
        .select_related("patient", "treatment")
        .order_by("scheduled_for", "id")
    )


def worklist_overdue() -> QuerySet[Visit]:
    """Missed visits nobody rebooked, and planned visits whose window has closed, oldest first:
    as stored by each patient's last refresh (``predicates.overdue_as_stored``)."""
    return (
        Visit.objects.filter(overdue_as_stored(), in_follow_up())
        .select_related("patient", "treatment")
        .order_by("window_end", "id")
    )


def flags_to_review() -> QuerySet[PatientFlag]:
    """The flags that ask for a clinician: of live patients, not acknowledged (DOMAIN.md 8 v2).
    The flagged worklist, the dashboard's counts and the patient list's flag filter agree on it."""
    return PatientFlag.objects.filter(in_follow_up(), acknowledged_at__isnull=True)


def worklist_flagged(*, code: str | None = None) -> QuerySet[PatientFlag]:
    """Flags a clinician should see and has not acknowledged, longest-standing first."""
    flags = flags_to_review().select_related("patient")
    if code:
        flags = flags.filter(code=code)
    return flags.order_by("since", "id")


def outcomes_for_patient(*, patient: Patient) -> QuerySet[TreatmentOutcome]:
    return (
        TreatmentOutcome.objects.filter(treatment__patient=patient)
        .select_related("treatment", "baseline", "current")
        .order_by("treatment__started_on", "treatment_id")
    )


def flag_inputs_for(*, patient: Patient, today: date) -> FlagInputs:
    """What the flag rules read of one patient, in nine queries whatever the record's size."""
    if patient.archived or patient.follow_up_ended_on is not None:
        # Archived or follow-up ended: no flag asks for a clinician (DOMAIN.md sections 8 and 9).
        return FlagInputs(archived=True)
    outcomes = {
        o.treatment_id: o
        for o in TreatmentOutcome.objects.filter(treatment__patient=patient).select_related("current")
    }
    treatments = []
    for t in (
        patient.treatments.exclude(status=TreatmentStatus.ENTERED_IN_ERROR)
        .select_related("diagnosis", "medication")
        .order_by("started_on", "pk")
    ):
        outcome = outcomes.get(t.pk)
        medication = getattr(t, "medication", None) if t.kind == TreatmentKind.MEDICATION else None
        treatments.append(
            TreatmentFacts(
                id=t.pk,
                uuid=str(t.uuid),
                kind=t.kind,
                status=t.status,
                started_on=t.started_on,
                diagnosis_kind=t.diagnosis.kind,
                label=str(t.get_kind_display()),
                drug=medication.drug if medication else "",
                outcome=outcome.category if outcome else None,
                outcome_current_on=outcome.current.assessed_on if outcome and outcome.current else None,
            )
        )
    diagnoses = [
        DiagnosisFacts(str(d.uuid), d.kind, d.status, d.secondary_cause, d.diagnosed_on)
        for d in patient.diagnoses.exclude(
            status__in=(DiagnosisStatus.ENTERED_IN_ERROR, DiagnosisStatus.REFUTED)
        )
    ]
    studies = [
        StudyFacts(study.modality, frozenset(row.sequence for row in study.sequence_rows.all()))
        for study in patient.imaging_studies.filter(status=ImagingStatus.AVAILABLE).prefetch_related(
            "sequence_rows"
        )
    ]
    labs = [
        LabFacts(test, taken_on)
        for test, taken_on in LabResult.objects.filter(
            patient=patient, status=AssessmentStatus.FINAL
        ).values_list("test", "taken_on")
    ]
    graded = [
        GradeFacts(pk, on, grade)
        for pk, on, grade in Assessment.objects.filter(
            patient=patient, status=AssessmentStatus.FINAL, house_brackmann_grade__isnull=False
        ).values_list("pk", "assessed_on", "house_brackmann_grade")
    ]
    overdue = [
        OverdueVisitFacts(str(v.uuid), v.purpose, str(v.get_status_display()), v.window_end, v.pk)
        for v in Visit.objects.filter(overdue_visits_filter(today), patient=patient).order_by(
            "window_end", "pk"
        )
    ]
    attended = Visit.objects.filter(patient=patient).aggregate(
        last_attended_at=Max("scheduled_for", filter=Q(status=VisitStatus.COMPLETED)),
        first_due_on=Min("window_start", filter=~Q(status=VisitStatus.CANCELLED)),
    )
    return FlagInputs(
        archived=False,
        at_risk_hla_b1502=patient.at_risk_hla_b1502,
        hla_b1502_result=patient.hla_b1502_result,
        treatments=tuple(treatments),
        diagnoses=tuple(diagnoses),
        studies=tuple(studies),
        labs=tuple(labs),
        graded=tuple(graded),
        overdue=tuple(overdue),
        contact_details_invalid_since=_local_day(patient.contact_details_invalid_since),
        last_attended_on=_local_day(attended["last_attended_at"]),
        first_due_on=attended["first_due_on"],
        resumed_on=patient.follow_up_resumed_on,
    )


def _local_day(moment: datetime | None) -> date | None:
    return timezone.localdate(moment) if moment is not None else None
