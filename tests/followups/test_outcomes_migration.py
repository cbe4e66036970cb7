"""Migration 0005 recomputes the outcomes stored under rule version 1 under version 2 (DOMAIN.md
section 7), and the history shows the change: what the outcome was, then what it is.

The record is written at migration 0004 through the models of that state (the services would
already apply version 2), then the migration runs for real. Migrating a database back and forth
commits schema changes, so these tests are transactional: the seeded rows come back first (an
earlier transactional test emptied every table) and the database is migrated back to the latest
state at the end.
"""

import importlib
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("seeded_defaults"),
]

BEFORE = ("followups", "0004_assessment_source_flag_acknowledgement_outcome_history")
AFTER = ("followups", "0005_outcomes_rule_version_2")
T0 = date(2024, 1, 15)
V1_REASON = "rule version 1 (before migration)"
V2_REASON = "recomputed under rule version 2"


def day(n):
    return T0 + timedelta(days=n)


def migrate(target):
    """Migrate the test database to ``target``; answer the models of the state it is now in."""
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    executor.loader.build_graph()
    applied = [key for key in executor.loader.applied_migrations if key in executor.loader.graph.nodes]
    return executor.loader.project_state(applied).apps


@pytest.fixture
def at_0004():
    """The models of migration 0004; the database goes back to the latest migrations afterwards."""
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    yield migrate(BEFORE)
    executor = MigrationExecutor(connection)
    executor.migrate(latest)


class Record:
    """A patient's record written through the models of one migration state."""

    def __init__(self, apps, mrn):
        self.apps = apps
        self.patient = apps.get_model("patients", "Patient").objects.create(
            mrn=mrn, given_name="Ada", family_name="Example", date_of_birth=date(1968, 5, 17), sex="female"
        )
        self.diagnosis = apps.get_model("patients", "Diagnosis").objects.create(
            patient=self.patient, kind="primary", side="left", diagnosed_on=date(2023, 3, 1)
        )

    def treatment(self, kind, started_on, **fields):
        return self.apps.get_model("patients", "Treatment").objects.create(
            patient=self.patient, diagnosis=self.diagnosis, kind=kind, started_on=started_on, **fields
        )

    def log(self, n, spasms, **fields):
        return self.apps.get_model("followups", "Assessment").objects.create(
            patient=self.patient, assessed_on=day(n), spasms_per_day=Decimal(spasms), **fields
        )

    def v1_outcome(self, treatment, category, baseline, current, **fields):
        return self.apps.get_model("followups", "TreatmentOutcome").objects.create(
            treatment=treatment,
            category=category,
            baseline=baseline,
            current=current,
            rule_version=1,
            **fields,
        )


def history(apps, outcome):
    """(type, category, rule version, reason) of an outcome's history rows, oldest first."""
    return list(
        apps.get_model("followups", "HistoricalTreatmentOutcome")
        .objects.filter(id=outcome.pk)
        .order_by("history_date", "history_id")
        .values_list("history_type", "category", "rule_version", "history_change_reason")
    )


def test_a_drug_course_credited_by_a_later_mvds_cure_is_recomputed_and_the_history_shows_it(at_0004):
    # The issue: "A drug course stopped as ineffective shows Cured 100 % because a later MVD cured
    # the patient." Rule version 1 stored exactly that.
    record = Record(at_0004, "MRN-MIG-1")
    course = record.treatment("medication", T0, status="stopped", ended_on=day(90))
    at_0004.get_model("patients", "MedicationDetail").objects.create(
        treatment=course, drug="carbamazepine", daily_dose_mg=400, stop_reason="ineffective"
    )
    surgery = record.treatment("mvd", day(120), status="completed")
    at_0004.get_model("patients", "MvdDetail").objects.create(treatment=surgery, technique="interposition")
    baseline = record.log(-10, 20)
    ineffective = record.log(90, 20)
    before_surgery = record.log(119, 22)
    record.log(130, 0)
    cure = record.log(300, 0)
    course_v1 = record.v1_outcome(
        course, "cured", baseline, cure, spasms_per_day_change_pct=100, days_to_spasm_free=130
    )
    surgery_v1 = record.v1_outcome(
        surgery,
        "delayed_cure",
        before_surgery,
        cure,
        spasms_per_day_change_pct=100,
        soriano_baron="excellent",
        days_to_spasm_free=10,
    )

    apps = migrate(AFTER)

    Outcome = apps.get_model("followups", "TreatmentOutcome")
    course_v2 = Outcome.objects.get(pk=course_v1.pk)
    assert (course_v2.rule_version, course_v2.category, course_v2.current_id) == (
        2,
        "unchanged",
        ineffective.pk,
    )
    assert (course_v2.spasms_per_day_change_pct, course_v2.days_to_spasm_free) == (0, None)
    assert course_v2.computed_at > course_v1.computed_at
    assert history(apps, course_v1) == [
        ("+", "cured", 1, V1_REASON),
        ("~", "unchanged", 2, V2_REASON),
    ]
    # The surgery's outcome reads the same under both versions; only the version it was read by changed.
    surgery_v2 = Outcome.objects.get(pk=surgery_v1.pk)
    assert (surgery_v2.rule_version, surgery_v2.category, surgery_v2.days_to_spasm_free) == (
        2,
        "delayed_cure",
        10,
    )
    assert history(apps, surgery_v1) == [
        ("+", "delayed_cure", 1, V1_REASON),
        ("~", "delayed_cure", 2, V2_REASON),
    ]
    first = (
        apps.get_model("followups", "HistoricalTreatmentOutcome").objects.filter(id=course_v1.pk).earliest()
    )
    assert (first.history_date, first.treatment_id, first.baseline_id, first.current_id) == (
        course_v1.computed_at,
        course.pk,
        baseline.pk,
        cure.pk,
    )


def test_every_patient_is_recomputed_chunk_by_chunk_and_running_it_again_changes_nothing(
    at_0004, monkeypatch
):
    migration = importlib.import_module("followups.migrations.0005_outcomes_rule_version_2")
    monkeypatch.setattr(migration, "PATIENTS_PER_CHUNK", 2)
    outcomes = {}
    # Toxin sessions read at their peak (a log of day 60 is the wearing off), with benefit days.
    for n in range(5):
        record = Record(at_0004, f"MRN-MIG-T{n}")
        session = record.treatment("botulinum_toxin", T0, status="completed")
        at_0004.get_model("patients", "BotulinumToxinDetail").objects.create(
            treatment=session, product="onabotulinumtoxinA", wore_off_on=day(80 + n)
        )
        baseline, peak, wearing_off = record.log(-5, 10), record.log(30, 2), record.log(60, 10)
        stored = record.v1_outcome(session, "unchanged", baseline, wearing_off, spasms_per_day_change_pct=0)
        outcomes[n] = (stored, peak)
    Record(at_0004, "MRN-MIG-EMPTY")
    # A stray outcome of a retracted treatment goes, as the store would have removed it.
    record = Record(at_0004, "MRN-MIG-R")
    retracted = record.v1_outcome(
        record.treatment("other", T0, status="entered_in_error"), "insufficient_data", None, None
    )

    apps = migrate(AFTER)

    Outcome = apps.get_model("followups", "TreatmentOutcome")
    for n, (before, peak) in outcomes.items():
        after = Outcome.objects.get(pk=before.pk)
        assert (after.rule_version, after.category, after.current_id) == (2, "improved", peak.pk)
        assert (after.spasms_per_day_change_pct, after.benefit_days) == (80, 80 + n)
        assert [row[:3] for row in history(apps, before)] == [("+", "unchanged", 1), ("~", "improved", 2)]
    assert not Outcome.objects.filter(pk=retracted.pk).exists()
    assert [row[0] for row in history(apps, retracted)] == ["+", "-"]

    Historical = apps.get_model("followups", "HistoricalTreatmentOutcome")
    rows = Historical.objects.count()
    migrate(BEFORE)
    apps = migrate(AFTER)
    assert apps.get_model("followups", "HistoricalTreatmentOutcome").objects.count() == rows
