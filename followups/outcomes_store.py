"""Stored outcomes (DOMAIN.md section 7): the pure rules of ``followups.outcomes`` run over one
patient's record and written to ``TreatmentOutcome``, inside the caller's transaction."""

from __future__ import annotations

from followups import codes, outcomes
from followups.models import TreatmentOutcome
from patients.codes import TreatmentKind, TreatmentStatus
from patients.models import Patient


def outcomes_recompute(*, patient: Patient) -> list[TreatmentOutcome]:
    """Store the outcome of each of the patient's treatments under the current rule version.

    Three reads whatever the number of treatments; a write only for an outcome that changed.
    """
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
    treatments = list(patient.treatments.select_related("botulinum_toxin"))
    live = [t for t in treatments if t.status != TreatmentStatus.ENTERED_IN_ERROR]
    stored = {o.treatment_id: o for o in TreatmentOutcome.objects.filter(treatment__in=treatments)}
    kept = []
    for treatment in live:
        result = outcomes.outcome_for_treatment(
            kind=treatment.kind,
            started_on=treatment.started_on,
            logs=logs,
            # The treatment's own start is among them: a start on its own t0 ends no episode.
            other_starts=[t.started_on for t in live],
            ended_on=treatment.ended_on,
            wore_off_on=(
                treatment.botulinum_toxin.wore_off_on
                if treatment.kind == TreatmentKind.BOTULINUM_TOXIN
                else None
            ),
        )
        values = _stored_values(result)
        row = stored.pop(treatment.pk, None)
        # An unchanged outcome is not written: its history would gain a row on every refresh.
        if row is None:
            row = TreatmentOutcome(treatment=treatment, **values)
            row.save()
        elif any(getattr(row, field) != value for field, value in values.items()):
            for field, value in values.items():
                setattr(row, field, value)
            row.save()
        kept.append(row)
    # Outcomes are derived: a retracted treatment simply has none any more.
    TreatmentOutcome.objects.filter(pk__in=[o.pk for o in stored.values()]).delete()
    return kept


def _stored_values(result: outcomes.Outcome) -> dict:
    """The columns of ``TreatmentOutcome`` for one result but ``computed_at``, percentages rounded to
    the column's one decimal so that comparing with a stored row compares like with like."""
    return {
        "category": result.category,
        "baseline_id": result.baseline.id if result.baseline else None,
        "current_id": result.current.id if result.current else None,
        "spasms_per_day_change_pct": _rounded(result.spasms_per_day_change_pct),
        "duration_change_pct": _rounded(result.duration_change_pct),
        "grade_change": result.grade_change,
        "soriano_baron": result.soriano_baron,
        "days_to_spasm_free": result.days_to_spasm_free,
        "qol_meaningful_improvement": result.qol_meaningful_improvement,
        "benefit_days": result.benefit_days,
        "rule_version": result.rule_version,
    }


def _rounded(value):
    return None if value is None else round(value, 1)
