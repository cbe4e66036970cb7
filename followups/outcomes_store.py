"""Stored outcomes (DOMAIN.md section 7): the pure rules of ``followups.outcomes`` run over one
patient's record and written to ``TreatmentOutcome``, inside the caller's transaction."""

from __future__ import annotations

from followups import codes, outcomes
from followups.models import TreatmentOutcome
from patients.codes import TreatmentKind, TreatmentStatus
from patients.models import Patient


def outcomes_recompute(*, patient: Patient) -> list[TreatmentOutcome]:
    """Store the outcome of each of the patient's treatments under the current rule version."""
    logs = [
        outcomes.SymptomLog(
            id=a.pk,
            on=a.assessed_on,
            spasms_per_day=a.spasms_per_day,
            episode_duration_seconds=a.episode_duration_seconds,
            cohen_albert_grade=a.cohen_albert_grade,
            hfs7_total=a.hfs7_total,
        )
        for a in patient.assessments.filter(status=codes.AssessmentStatus.FINAL)
    ]
    treatments = list(patient.treatments.all())
    stored = {o.treatment_id: o for o in TreatmentOutcome.objects.filter(treatment__in=treatments)}
    kept = []
    for treatment in treatments:
        if treatment.status == TreatmentStatus.ENTERED_IN_ERROR:
            continue
        result = outcomes.outcome_for_treatment(
            is_mvd=treatment.kind == TreatmentKind.MVD, started_on=treatment.started_on, logs=logs
        )
        row = stored.pop(treatment.pk, None) or TreatmentOutcome(treatment=treatment)
        row.category = result.category
        row.baseline_id = result.baseline.id if result.baseline else None
        row.current_id = result.current.id if result.current else None
        row.spasms_per_day_change_pct = _rounded(result.spasms_per_day_change_pct)
        row.duration_change_pct = _rounded(result.duration_change_pct)
        row.grade_change = result.grade_change
        row.soriano_baron = result.soriano_baron
        row.days_to_spasm_free = result.days_to_spasm_free
        row.qol_meaningful_improvement = result.qol_meaningful_improvement
        row.rule_version = result.rule_version
        row.save()
        kept.append(row)
    # Outcomes are derived: a retracted treatment simply has none any more.
    TreatmentOutcome.objects.filter(pk__in=[o.pk for o in stored.values()]).delete()
    return kept


def _rounded(value):
    return None if value is None else round(value, 1)
