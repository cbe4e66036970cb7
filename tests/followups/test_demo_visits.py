"""seed_demo's visits (followups/demo.py): the planner's own plan for what is ahead, history behind.

The seed builds visits from rows in memory instead of planning each patient; these tests hold it
to the real planner (``visits_plan_for`` on a seeded patient finds nothing to add or cancel), to
the calendar (statuses follow the windows), and to the seed's promises (same seed, same rows,
whichever writer).
"""

from collections import Counter
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from followups import demo as followups_demo
from followups.codes import FlagCode, ReminderKind, ReminderStatus, VisitSource, VisitStatus
from followups.models import Assessment, PatientFlag, ProtocolStep, Reminder, TreatmentOutcome, Visit
from followups.planning import visits_plan_for
from followups.predicates import overdue_visits_filter
from patients import demo
from patients.codes import DiagnosisStatus, TreatmentKind, TreatmentStatus
from patients.models import Patient, Treatment

SEED = 20240601
PATIENTS = 300
UPCOMING = (VisitStatus.PLANNED, VisitStatus.BOOKED)
CLOSED = (VisitStatus.COMPLETED, VisitStatus.MISSED)


@pytest.fixture
def today():
    return timezone.localdate()


@pytest.fixture
def seeded(db):
    return demo.seed_demo(patients=PATIENTS, seed=SEED)


def visit_on(visit) -> date:
    return visit.anchor_on + timedelta(days=visit.protocol_day)


def assert_planner_changes_nothing(patients, today):
    changed = {}
    for patient in patients:
        result = visits_plan_for(patient=patient, today=today)
        if result.changed:
            changed[patient.mrn] = (
                [(v.protocol_step_id, v.anchor_on, v.protocol_day) for v in result.created],
                [(v.protocol_step_id, v.anchor_on, v.protocol_day, v.status) for v in result.cancelled],
            )
    assert changed == {}


# --- the same plan as the planner ---------------------------------------------------------------


def test_the_planner_finds_nothing_to_add_or_cancel_in_any_seeded_patient(seeded, today):
    upcoming = Visit.objects.filter(status__in=UPCOMING)
    # Every path of the planner is in the sample: toxin cycles, courses (active, with a dose
    # change, laboratory checks), MVD series, untreated reviews, archived patients.
    assert upcoming.filter(treatment__kind=TreatmentKind.BOTULINUM_TOXIN).exists()
    assert upcoming.filter(treatment__kind=TreatmentKind.MVD).exists()
    assert upcoming.filter(treatment__medication__dose_changed_on__isnull=False).exists()
    assert upcoming.filter(protocol_step__only_for_drug__gt="").exists()
    assert upcoming.filter(treatment__isnull=True, diagnosis__isnull=False).exists()
    assert Patient.objects.filter(archived=True, visits__status__in=CLOSED).exists()

    assert_planner_changes_nothing(Patient.objects.order_by("mrn"), today)
    assert not Visit.objects.filter(status=VisitStatus.CANCELLED).exists()


def test_a_facial_palsy_series_is_the_planners_too(db, monkeypatch, today):
    # A palsy that never resolves: every MVD's latest graded log re-anchors an open series, so
    # the series has visits behind and ahead in every operated patient.
    def palsy_logs(batch):
        logs = demo_logs(batch)
        for log in logs:
            if log.house_brackmann_grade is not None:
                log.house_brackmann_grade = 3
        return logs

    demo_logs = followups_demo.demo_logs_for
    monkeypatch.setattr(followups_demo, "demo_logs_for", palsy_logs)
    demo.seed_demo(patients=120, seed=SEED)

    palsy = Visit.objects.filter(protocol_step__code="palsy-review")
    assert palsy.filter(status__in=UPCOMING).exists()
    assert palsy.filter(status__in=CLOSED).exists()
    operated = Patient.objects.filter(treatments__kind=TreatmentKind.MVD).distinct()
    assert_planner_changes_nothing(operated, today)


def test_seeded_visits_follow_the_protocol_steps_in_the_database(db):
    step = ProtocolStep.objects.get(protocol__code="botulinum-toxin", code="day-21")
    step.offset_days, step.purpose = 28, "Review (day 28)"
    step.save()

    demo.seed_demo(patients=60, seed=SEED)

    reviews = Visit.objects.filter(protocol_step=step)
    assert reviews.exists()
    assert set(reviews.values_list("protocol_day", "purpose")) == {(28, "Review (day 28)")}
    sessions = Treatment.objects.filter(kind=TreatmentKind.BOTULINUM_TOXIN)
    assert not reviews.exclude(anchor_on__in=sessions.values("started_on")).exists()


# --- statuses by date ---------------------------------------------------------------------------


def test_statuses_follow_the_windows(seeded, today):
    visits = list(Visit.objects.filter(source=VisitSource.PROTOCOL))
    closed = [v for v in visits if v.window_end < today]
    ahead = [v for v in visits if v.window_end >= today]

    assert {v.status for v in closed} == set(CLOSED)
    assert {v.status for v in ahead} == set(UPCOMING)
    completed = sum(v.status == VisitStatus.COMPLETED for v in closed)
    assert 0.8 <= completed / len(closed) <= 0.9
    # Booked: near appointments only, never one whose day has passed.
    booked_in = [(visit_on(v) - today).days for v in ahead if v.status == VisitStatus.BOOKED]
    assert booked_in
    assert min(booked_in) >= 0
    assert max(booked_in) <= followups_demo.BOOKING_AHEAD_DAYS
    assert 5 <= len(visits) / PATIENTS <= 20


def test_history_stops_where_the_protocol_stopped_applying(seeded, today):
    protocol = Visit.objects.filter(source=VisitSource.PROTOCOL)
    stopped = protocol.filter(treatment__status=TreatmentStatus.STOPPED)
    assert stopped.exists()
    assert not stopped.filter(status__in=UPCOMING).exists()
    assert all(visit_on(v) <= v.treatment.ended_on for v in stopped.select_related("treatment"))

    reviews = protocol.filter(treatment__isnull=True).select_related("diagnosis")
    first_treated = {}
    for diagnosis_id, started_on in Treatment.objects.order_by("started_on").values_list(
        "diagnosis_id", "started_on"
    ):
        first_treated.setdefault(diagnosis_id, started_on)
    assert reviews.exists()
    assert all(visit_on(v) < first_treated.get(v.diagnosis_id, date.max) for v in reviews)
    assert not reviews.filter(diagnosis__status=DiagnosisStatus.REFUTED).exists()

    archived = Visit.objects.filter(patient__archived=True).select_related("patient")
    assert not archived.exclude(source=VisitSource.PROTOCOL).exists()
    assert not archived.filter(status__in=UPCOMING).exists()
    assert all(visit_on(v) < timezone.localdate(v.patient.archived_at) for v in archived)


def test_missed_visits_were_rebooked_by_the_front_desk(seeded, today):
    missed = Visit.objects.filter(source=VisitSource.PROTOCOL, status=VisitStatus.MISSED)
    recent_since = today - timedelta(days=followups_demo.RECENT_MISS_DAYS)
    old = missed.filter(patient__archived=False, window_end__lt=recent_since)
    recent = missed.filter(patient__archived=False, window_end__gte=recent_since).exclude(
        treatment__status=TreatmentStatus.STOPPED
    )
    rebooked = list(Visit.objects.filter(rebooked_from__isnull=False).select_related("rebooked_from"))

    # Every old miss was rebooked and attended in the end; only recent ones may still wait.
    assert old.exists() and recent.exists()
    assert not old.filter(rebooked_as__isnull=True).exists()
    assert not old.exclude(rebooked_as__status=VisitStatus.COMPLETED).exists()
    assert 0 < recent.filter(rebooked_as__isnull=False).count() < recent.count()
    assert {v.rebooked_from_id for v in rebooked} <= {
        *old.values_list("id", flat=True),
        *recent.values_list("id", flat=True),
    }
    for visit in rebooked:
        first = visit.rebooked_from
        on = timezone.localdate(visit.scheduled_for)
        assert (visit.source, visit.window_start, visit.window_end) == (VisitSource.MANUAL, on, on)
        assert (visit.patient_id, visit.treatment_id, visit.diagnosis_id, visit.purpose) == (
            first.patient_id,
            first.treatment_id,
            first.diagnosis_id,
            first.purpose,
        )
        assert (
            timezone.localtime(visit.scheduled_for).time() == timezone.localtime(first.scheduled_for).time()
        )
        assert 3 <= (on - first.window_end).days <= 14
        assert visit.status in ((VisitStatus.BOOKED,) if on >= today else CLOSED)
    # Overdue (DOMAIN.md: a missed visit not rebooked) is then the minority of patients it is in a
    # clinic, those who missed a visit lately, instead of everyone who ever missed one.
    live = Patient.objects.filter(archived=False)
    overdue = live.filter(visits__in=Visit.objects.filter(overdue_visits_filter(today))).distinct()
    assert 0 < overdue.count() < 0.1 * live.count()


def test_a_rebooked_visit_still_ahead_is_booked_and_planned_like_any_other(db, monkeypatch, today):
    # Rebooked long after the miss: the new day is ahead of today for every one of them.
    monkeypatch.setattr(followups_demo, "REBOOKED_AFTER_DAYS", (20000, 20000))
    demo.seed_demo(patients=60, seed=SEED)
    rebooked = Visit.objects.filter(rebooked_from__isnull=False)

    assert rebooked.exists()
    assert set(rebooked.values_list("status", flat=True)) == {VisitStatus.BOOKED}
    # The planner leaves a manual visit alone; follow_up_refresh plans its reminders.
    call_command("follow_up_refresh", "--only-unplanned", stdout=StringIO())
    consenting = rebooked.filter(patient__email_reminders=True)
    assert consenting.exists()
    assert all(v.reminders.filter(status=ReminderStatus.PENDING).count() == 2 for v in consenting)


def test_completed_visits_take_the_symptom_log_of_their_day(seeded):
    linked = Assessment.objects.filter(visit__isnull=False).select_related("visit")
    assert linked.exists()
    assert all(
        log.visit.status == VisitStatus.COMPLETED
        and log.visit.patient_id == log.patient_id
        and visit_on(log.visit) == log.assessed_on
        for log in linked
    )
    # At most one log a visit.
    assert max(Counter(linked.values_list("visit_id", flat=True)).values()) == 1
    missed = Visit.objects.filter(status=VisitStatus.MISSED)
    assert not Assessment.objects.filter(visit__in=missed).exists()


# --- same seed, same rows -----------------------------------------------------------------------


def visit_facts(**run):
    """The visits ``run`` seeds into an empty database (left empty again), without ids or stamps."""
    with transaction.atomic():
        summary = demo.seed_demo(today=date(2026, 1, 15), **run)
        visits = Visit.objects.order_by("patient__mrn", "id").values_list(
            "patient__mrn",
            "treatment__kind",
            "treatment__started_on",
            "diagnosis__diagnosed_on",
            "protocol_step__code",
            "anchor_on",
            "protocol_day",
            "purpose",
            "scheduled_for",
            "window_start",
            "window_end",
            "status",
        )
        logs = Assessment.objects.filter(visit__isnull=False).order_by("patient__mrn", "assessed_on")
        linked = logs.values_list("patient__mrn", "assessed_on", "visit__protocol_step__code")
        facts = (list(visits), list(linked))
        assert summary.rows["visits"] == len(facts[0])
        transaction.set_rollback(True)
    return facts


def test_a_seed_gives_the_same_visits_whatever_the_writer_or_batches(db):
    visits, logs = visit_facts(patients=80, seed=7, batch_size=30, use_copy=True)
    assert len(visits) > 400 and logs

    assert visit_facts(patients=80, seed=7, use_copy=False) == (visits, logs)
    assert visit_facts(patients=80, seed=7, batch_size=25, use_copy=True) == (visits, logs)
    other, _logs = visit_facts(patients=80, seed=8)
    assert other != visits


# --- follow_up_refresh after the seed -----------------------------------------------------------


def test_follow_up_refresh_derives_reminders_and_outcomes_of_seeded_patients_once(db, today):
    demo.seed_demo(patients=60, seed=SEED)
    visits_before = sorted(Visit.objects.values_list("id", "status", "scheduled_for"))

    out = StringIO()
    call_command("follow_up_refresh", "--only-unplanned", stdout=out)

    assert sorted(Visit.objects.values_list("id", "status", "scheduled_for")) == visits_before
    live_treatments = Treatment.objects.filter(patient__archived=False).exclude(
        status=TreatmentStatus.ENTERED_IN_ERROR
    )
    assert TreatmentOutcome.objects.count() == live_treatments.count()
    soon = timezone.now() + timedelta(days=8)
    reminded = Visit.objects.filter(
        status__in=UPCOMING, scheduled_for__gt=soon, patient__email_reminders=True, patient__archived=False
    )
    assert reminded.exists()
    pending = Reminder.objects.filter(visit__in=reminded, status=ReminderStatus.PENDING)
    # An appointment is reminded of; a planned visit is an invitation to book (and a last call).
    kinds = {
        VisitStatus.BOOKED: (ReminderKind.VISIT_7D, ReminderKind.VISIT_1D),
        VisitStatus.PLANNED: (ReminderKind.BOOKING_INVITATION, ReminderKind.BOOKING_LAST_CALL),
    }
    assert set(pending.values_list("visit_id", "kind")) == {
        (visit_id, kind)
        for visit_id, status in reminded.values_list("id", "status")
        for kind in kinds[status]
    }

    in_follow_up = Patient.objects.filter(archived=False, diagnoses__isnull=False).distinct()
    assert f"Refreshed the follow-up of {in_follow_up.count()} patients" in out.getvalue()

    again = StringIO()
    call_command("follow_up_refresh", "--only-unplanned", stdout=again)
    # Only patients with nothing to derive (no visit, outcome or flag) come round again.
    nothing_to_derive = in_follow_up.exclude(
        Q(visits__isnull=False) | Q(treatments__outcome__isnull=False) | Q(flags__isnull=False)
    )
    assert f"Refreshed the follow-up of {nothing_to_derive.count()} patients" in again.getvalue()


def test_the_refreshed_demo_looks_like_a_clinic_under_rule_version_2(db, today):
    """Outcomes spread over the categories, a minority of patients flagged, a handful of new flags a
    day (rule version 1 flagged two thirds of the demo: every old short toxin gap, every toxin series
    judged on its wearing off)."""
    demo.seed_demo(patients=PATIENTS, seed=SEED)
    call_command("follow_up_refresh", "--only-unplanned", stdout=StringIO())

    categories = Counter(TreatmentOutcome.objects.values_list("treatment__kind", "category"))
    toxin = {cat: n for (kind, cat), n in categories.items() if kind == TreatmentKind.BOTULINUM_TOXIN}
    drugs = {cat: n for (kind, cat), n in categories.items() if kind == TreatmentKind.MEDICATION}
    mvd = {cat: n for (kind, cat), n in categories.items() if kind == TreatmentKind.MVD}
    # At its peak most sessions help, some free the patient of spasms, some barely help.
    assert toxin["improved"] > toxin["unchanged"] > 0.05 * sum(toxin.values())
    assert toxin["cured"] > 0.05 * sum(toxin.values())
    # Drugs help a minority; a later MVD's cure is no longer theirs.
    assert 0 < drugs["improved"] < drugs["unchanged"]
    assert "cured" not in drugs
    assert mvd["cured"] + mvd.get("delayed_cure", 0) > 0.7 * sum(mvd.values())
    assert set(TreatmentOutcome.objects.values_list("rule_version", flat=True)) == {2}

    live = Patient.objects.filter(archived=False).count()
    flagged = PatientFlag.objects.values("patient").distinct().count()
    assert 0.1 * live < flagged < live / 3
    toxin_patients = Patient.objects.filter(treatments__kind=TreatmentKind.BOTULINUM_TOXIN).distinct().count()
    assert PatientFlag.objects.filter(code=FlagCode.BOTOX_INTERVAL_SHORT).count() < 0.1 * toxin_patients
    last_month = PatientFlag.objects.filter(since__gt=today - timedelta(days=30)).count()
    assert 0 < last_month <= 5 * 30 * PATIENTS / 1000


# --- the demo clinic's appointments in its sessions ---------------------------------------------


def test_the_demo_s_upcoming_appointments_take_places_in_slots_of_their_kind(db):
    from followups.booking import sessions_generate
    from followups.models import Slot

    demo.seed_demo(patients=60, seed=SEED)
    sessions_generate()
    now = timezone.now()
    upcoming = Visit.objects.filter(status=VisitStatus.BOOKED, scheduled_for__gt=now)
    assert upcoming.filter(slot__isnull=True).exists()

    out = StringIO()
    call_command("demo_bookings", stdout=out)

    in_slots = upcoming.filter(slot__isnull=False).select_related("slot__session__template")
    assert in_slots.count() > upcoming.filter(slot__isnull=True).count()
    for visit in in_slots:
        assert visit.scheduled_for == visit.slot.starts_at
        assert visit.visit_kind in visit.slot.session.template.kind_rows.values_list("visit_kind", flat=True)
    counted = Counter(
        Visit.objects.filter(status=VisitStatus.BOOKED, slot__isnull=False).values_list("slot", flat=True)
    )
    assert {slot.pk: slot.booked for slot in Slot.objects.filter(booked__gt=0)} == dict(counted)
    assert f"Placed {in_slots.count()} upcoming appointments in slots" in out.getvalue()
    # Run again, nothing moves.
    before = sorted(Visit.objects.values_list("pk", "scheduled_for", "slot"))
    call_command("demo_bookings", stdout=StringIO())
    assert sorted(Visit.objects.values_list("pk", "scheduled_for", "slot")) == before
