"""Every stored outcome recomputed under rule version 2 (DOMAIN.md section 7: each treatment read
within its episode, a toxin session at its peak, a session's benefit days).

The outcomes' history only began with 0004, so an outcome without history first gets a row for
what it was before (dated when it was computed), then one for the recomputed outcome: the history
shows the change from version 1. The rules are those of ``followups.outcomes``, a pure module;
the record is read through the historical models. Patients are taken a chunk at a time, so memory
and the number of queries per patient stay flat whatever the size of the clinic.
"""

from itertools import islice

from django.db import migrations
from django.utils import timezone

from followups.outcomes import RULE_VERSION, SymptomLog, outcome_for_treatment

PATIENTS_PER_CHUNK = 500
# The codes as they stand in this migration's state; a migration does not follow later code lists.
ASSESSMENT_FINAL = "final"
TREATMENT_RETRACTED = "entered_in_error"
BOTULINUM_TOXIN = "botulinum_toxin"
BEFORE_REASON = "rule version {} (before migration)"
# The rules are today's: a database that skipped a version is recomputed under the newest, which
# its stored rule_version and this reason then say (a later version adds its own recomputation).
RECOMPUTED_REASON = f"recomputed under rule version {RULE_VERSION}"
RETRACTED_REASON = "treatment retracted: no outcome under rule version 2"
OUTCOME_FIELDS = (
    "category",
    "baseline_id",
    "current_id",
    "spasms_per_day_change_pct",
    "duration_change_pct",
    "grade_change",
    "soriano_baron",
    "days_to_spasm_free",
    "qol_meaningful_improvement",
    "benefit_days",
    "rule_version",
)
LOG_FIELDS = (
    "pk",
    "patient_id",
    "assessed_on",
    "spasms_per_day",
    "episode_duration_seconds",
    "cohen_albert_grade",
    "hfs7_total",
)


def recompute_under_rule_version_2(apps, schema_editor):
    Patient = apps.get_model("patients", "Patient")
    # The patients table is never written here, so reading it through one cursor stays sound on
    # SQLite too (a cursor over a table being written may skip or repeat rows there).
    patient_ids = (
        Patient.objects.order_by("pk").values_list("pk", flat=True).iterator(chunk_size=PATIENTS_PER_CHUNK)
    )
    now = timezone.now()
    while chunk := list(islice(patient_ids, PATIENTS_PER_CHUNK)):
        _recompute_chunk(apps, chunk, now)


def _recompute_chunk(apps, patient_ids, now):
    Assessment = apps.get_model("followups", "Assessment")
    Treatment = apps.get_model("patients", "Treatment")
    TreatmentOutcome = apps.get_model("followups", "TreatmentOutcome")
    HistoricalTreatmentOutcome = apps.get_model("followups", "HistoricalTreatmentOutcome")

    outcomes = list(TreatmentOutcome.objects.filter(treatment__patient_id__in=patient_ids))
    if not outcomes:
        return
    treatments = {
        t.pk: t
        for t in Treatment.objects.filter(patient_id__in=patient_ids).select_related("botulinum_toxin")
    }
    starts, logs = {}, {}
    for treatment in treatments.values():
        if treatment.status != TREATMENT_RETRACTED:
            starts.setdefault(treatment.patient_id, []).append(treatment.started_on)
    final = Assessment.objects.filter(patient_id__in=patient_ids, status=ASSESSMENT_FINAL)
    for pk, patient_id, on, spasms, duration, grade, hfs7 in final.values_list(*LOG_FIELDS):
        logs.setdefault(patient_id, []).append(
            SymptomLog(
                id=pk,
                on=on,
                spasms_per_day=spasms,
                episode_duration_seconds=duration,
                cohen_albert_grade=grade,
                hfs7_total=hfs7,
            )
        )
    with_history = set(
        HistoricalTreatmentOutcome.objects.filter(id__in=[o.pk for o in outcomes]).values_list(
            "id", flat=True
        )
    )

    history, changed, retracted = [], [], []
    for outcome in outcomes:
        treatment = treatments[outcome.treatment_id]
        if outcome.pk not in with_history:
            reason = BEFORE_REASON.format(outcome.rule_version)
            history.append(
                _history_row(HistoricalTreatmentOutcome, outcome, "+", outcome.computed_at, reason)
            )
        if treatment.status == TREATMENT_RETRACTED:
            # As the store does: a retracted treatment has no outcome.
            history.append(_history_row(HistoricalTreatmentOutcome, outcome, "-", now, RETRACTED_REASON))
            retracted.append(outcome.pk)
            continue
        values = _stored_values(
            outcome_for_treatment(
                kind=treatment.kind,
                started_on=treatment.started_on,
                logs=logs.get(treatment.patient_id, []),
                other_starts=starts[treatment.patient_id],
                ended_on=treatment.ended_on,
                wore_off_on=treatment.botulinum_toxin.wore_off_on
                if treatment.kind == BOTULINUM_TOXIN
                else None,
            )
        )
        if all(getattr(outcome, field) == value for field, value in values.items()):
            continue
        for field, value in values.items():
            setattr(outcome, field, value)
        # bulk_update does not apply auto_now.
        outcome.computed_at = now
        changed.append(outcome)
        history.append(_history_row(HistoricalTreatmentOutcome, outcome, "~", now, RECOMPUTED_REASON))

    TreatmentOutcome.objects.bulk_update(
        changed, [*OUTCOME_FIELDS, "computed_at"], batch_size=PATIENTS_PER_CHUNK
    )
    TreatmentOutcome.objects.filter(pk__in=retracted).delete()
    HistoricalTreatmentOutcome.objects.bulk_create(history, batch_size=PATIENTS_PER_CHUNK)


def _stored_values(result):
    """As ``followups.outcomes_store`` stores a result (kept here: a migration is a snapshot)."""

    def rounded(value):
        return None if value is None else round(value, 1)

    return {
        "category": result.category,
        "baseline_id": result.baseline.id if result.baseline else None,
        "current_id": result.current.id if result.current else None,
        "spasms_per_day_change_pct": rounded(result.spasms_per_day_change_pct),
        "duration_change_pct": rounded(result.duration_change_pct),
        "grade_change": result.grade_change,
        "soriano_baron": result.soriano_baron,
        "days_to_spasm_free": result.days_to_spasm_free,
        "qol_meaningful_improvement": result.qol_meaningful_improvement,
        "benefit_days": result.benefit_days,
        "rule_version": result.rule_version,
    }


def _history_row(HistoricalTreatmentOutcome, outcome, history_type, when, reason):
    return HistoricalTreatmentOutcome(
        id=outcome.pk,
        treatment_id=outcome.treatment_id,
        **{field: getattr(outcome, field) for field in OUTCOME_FIELDS},
        history_date=when,
        history_type=history_type,
        history_change_reason=reason,
        history_user=None,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("followups", "0004_assessment_source_flag_acknowledgement_outcome_history"),
        ("patients", "0001_initial"),
    ]

    operations = [
        # Backwards the outcomes stay as version 2 computed them: version 1's rules are gone.
        migrations.RunPython(recompute_under_rule_version_2, migrations.RunPython.noop),
    ]
