"""Which patients each kind of run refreshes, as ordered lists of ids (the chunks keep the order).

The nightly run refreshes only the patients whose follow-up can change by the calendar alone
since the last nightly run that finished (issue 18). Everything else a refresh derives follows a
write, in that write's transaction; what turns by date alone is listed in ``_changed_by_date``,
one set-based query per rule, each the rule's own threshold read backwards: "which rows reach
their day in (the last finished run's day, today]". A query may choose more patients than will
change (refreshing is idempotent), never fewer: ``tests/followups/test_nightly_selection.py``
runs the selective night and then a full one over seeded patients, day after day, and finds the
full one changing nothing.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q
from django.db.models.functions import Coalesce

from clinic.day_numbers import DayNumber, day_number
from followups import predicates
from followups.codes import AssessmentStatus, FlagCode, StepAnchor, VisitStatus
from followups.flags import CONSIDER_MVD_AFTER_DAYS, LAB_FOR_DRUG, LAB_MONITORING_DAYS
from followups.models import (
    Assessment,
    FollowUpRun,
    FollowUpRunChunk,
    LabResult,
    PatientFlag,
    Protocol,
    ProtocolStep,
    Reminder,
    TreatmentOutcome,
    Visit,
)
from followups.protocols import OPEN_SERIES, OPEN_SERIES_INTERVALS_AHEAD
from followups.runs.codes import RunKind, RunState
from followups.services import visits_due_to_close
from patients.codes import TreatmentKind, TreatmentStatus
from patients.models import Diagnosis, Patient, Treatment


def _in_follow_up():
    """Patients in follow-up with a diagnosis: those a protocol can plan for."""
    return Patient.objects.filter(predicates.in_follow_up(prefix=""), diagnoses__isnull=False)


def _followed():
    """Patients in follow-up, diagnosed or not: those the nightly run refreshes (a patient with
    visits arranged by hand only has flags that turn by date too: overdue, lost to follow-up).
    ``services.patient_nightly_refresh`` asks the same of one patient."""
    return Patient.objects.filter(predicates.in_follow_up(prefix=""))


def nightly_patient_ids(*, today: date) -> list[int]:
    """The patients tonight's run works on: whose windows closed (marked missed, everyone), and,
    of those in follow-up, whose record reaches a dated turn since the last finished night. With
    no finished night before (a new install), everyone in follow-up.

    Each rule is a query of its own, its ids united here: one query OR-ing them all made the
    planner test every patient against every rule (13 s at 100,000 patients, against about 1 s)."""
    closing = set(_id_list(visits_due_to_close(today)))
    last = (
        FollowUpRun.objects.filter(kind=RunKind.NIGHTLY, state=RunState.FINISHED, clinic_day__lt=today)
        .order_by("-clinic_day")
        .first()
    )
    if last is None:
        return sorted(closing | set(_id_list(_followed())))
    chosen = set(_failed_since(last.clinic_day))
    for rule in _changed_by_date(since=last.clinic_day, today=today):
        chosen.update(_id_list(rule))
    # A protocol edited since (a step added, an interval changed) reaches its patients' open series
    # by night, as it did when every night refreshed everyone (and as its "Re-plan" action does).
    for protocol in _protocols_edited_since(last.started_at):
        chosen.update(protocol_patient_ids(protocol=protocol))
    # Not a list of ids sent back to the database: a night may choose more than a statement takes.
    return sorted(closing | (chosen & set(_id_list(_followed()))))


def _id_list(rows) -> list[int]:
    """The distinct patient ids of a query of patients or of rows naming them."""
    column = "pk" if rows.model is Patient else "patient_id"
    return list(rows.order_by().values_list(column, flat=True).distinct())


def _protocols_edited_since(moment: datetime) -> list[Protocol]:
    """Protocols whose row or steps were written (added, changed, removed) since ``moment``, as
    their history records it."""
    steps = ProtocolStep.history.filter(history_date__gte=moment).values("protocol_id")
    protocols = Protocol.history.filter(history_date__gte=moment).values("id")
    return list(Protocol.objects.filter(Q(pk__in=steps) | Q(pk__in=protocols)))


def _failed_since(since: date) -> list[int]:
    """The patients a nightly run since ``since`` recorded failed: they are taken again."""
    failed = FollowUpRunChunk.objects.filter(run__kind=RunKind.NIGHTLY, run__clinic_day__gte=since)
    return sorted({pk for ids in failed.values_list("failed_ids", flat=True) for pk in ids})


def _changed_by_date(*, since: date, today: date):
    """Per rule, a query of patients (or of rows naming them) whose follow-up may change on a day
    in (``since``, ``today``]."""
    after, upto = day_number(since), day_number(today)
    visits = Visit.objects.all()
    treatments = Treatment.objects.exclude(status=TreatmentStatus.ENTERED_IN_ERROR)

    # Overdue (DOMAIN.md 8): a planned visit's window closed the day before, or an appointment
    # passed and so no longer holds the patient's place ahead (``overdue_visits_filter``).
    yield visits.filter(status=VisitStatus.PLANNED, window_end__gte=since, window_end__lt=today)
    yield visits.filter(
        status=VisitStatus.BOOKED,
        scheduled_for__gte=predicates.start_of_day(since),
        scheduled_for__lt=predicates.start_of_day(today),
    )

    # Open series (DOMAIN.md 5) gain a visit when the one after their latest comes within the
    # horizon: the latest's date less one interval (``protocols.protocol_days``). A cancelled
    # visit inside the horizon is planned again by the roll; a series with no visit yet, when its
    # first comes within the horizon.
    open_visits = visits.filter(protocol_step__repeat__in=OPEN_SERIES).annotate(
        on=DayNumber("anchor_on") + F("protocol_day"), every=F("protocol_step__repeat_every_days")
    )
    yield open_visits.exclude(status=VisitStatus.CANCELLED).filter(
        on__gt=after + F("every"), on__lte=upto + F("every")
    )
    horizon = upto + OPEN_SERIES_INTERVALS_AHEAD * F("every")
    yield open_visits.filter(status=VisitStatus.CANCELLED, window_end__gte=today, on__lte=horizon)
    yield from _series_first_visits(after=after, upto=upto)

    # Laboratory monitoring (DOMAIN.md 4): due from a monitored course's start, or once the last
    # result is older than the monitoring interval.
    monitored = treatments.filter(
        kind=TreatmentKind.MEDICATION, status=TreatmentStatus.ACTIVE, medication__drug__in=list(LAB_FOR_DRUG)
    )
    yield monitored.filter(started_on__gt=since, started_on__lte=today)
    lapse = timedelta(days=LAB_MONITORING_DAYS + 1)
    lapsed = LabResult.objects.filter(
        patient=OuterRef("patient"),
        status=AssessmentStatus.FINAL,
        taken_on__gt=since - lapse,
        taken_on__lte=today - lapse,
    )
    yield monitored.filter(Exists(lapsed))

    # Consider MVD (DOMAIN.md 8): a course or a toxin series reaches its days of treatment.
    reached = timedelta(days=CONSIDER_MVD_AFTER_DAYS)
    yield treatments.filter(
        kind__in=(TreatmentKind.MEDICATION, TreatmentKind.BOTULINUM_TOXIN),
        started_on__gt=since - reached,
        started_on__lte=today - reached,
    )

    # Lost to follow-up (DOMAIN.md 9): overdue for long enough and not flagged lost yet; and
    # every patient flagged lost (a few), so that the flag follows a change of the clinic's
    # number of days (LOST_TO_FOLLOW_UP_DAYS) by the next night.
    flags = PatientFlag.objects.filter(patient=OuterRef("pk"))
    yield Patient.objects.filter(
        Exists(flags.filter(code=FlagCode.OVERDUE_FOLLOW_UP)),
        ~Exists(flags.filter(code=FlagCode.LOST_TO_FOLLOW_UP)),
        predicates.lost_to_follow_up(today, settings.LOST_TO_FOLLOW_UP_DAYS),
    )
    yield PatientFlag.objects.filter(code=FlagCode.LOST_TO_FOLLOW_UP)


def _series_first_visits(*, after: int, upto: int):
    """Series with no visit yet whose first comes within the horizon: on the day its anchor plus
    the step's offset, less the horizon, is reached. A series that began with a write in the past
    got its first visit then; one whose anchor lies ahead (a course planned to start next month)
    or whose offset exceeds the horizon (a step the clinic may write) gets it on that day."""
    for step in ProtocolStep.objects.filter(repeat__in=OPEN_SERIES).select_related("protocol"):
        lead = step.offset_days - OPEN_SERIES_INTERVALS_AHEAD * step.repeat_every_days
        window = {"first__gt": after - lead, "first__lte": upto - lead}
        if step.anchor == StepAnchor.DIAGNOSIS:
            diagnoses = Diagnosis.objects.annotate(first=DayNumber("diagnosed_on"))
            yield diagnoses.filter(**window)
        elif step.anchor == StepAnchor.FACIAL_PALSY:
            yield (
                Assessment.objects.filter(house_brackmann_grade__gte=predicates.FACIAL_PALSY_FROM_GRADE)
                .annotate(first=DayNumber("assessed_on"))
                .filter(**window)
            )
        else:
            anchor = "started_on"
            if step.anchor == StepAnchor.LAST_DOSE_CHANGE:
                anchor = Coalesce("medication__dose_changed_on", "started_on")
            yield (
                Treatment.objects.filter(kind=step.protocol.treatment_kind)
                .annotate(first=DayNumber(anchor))
                .filter(**window)
            )


def protocol_patient_ids(*, protocol: Protocol) -> list[int]:
    """The patients an edit of ``protocol`` can re-plan: those in follow-up with a treatment of its
    kind, or, for the protocol of untreated patients, any diagnosed one (a superset is harmless:
    re-planning is idempotent)."""
    patients = _in_follow_up()
    if protocol.treatment_kind:
        patients = patients.filter(
            Exists(Treatment.objects.filter(patient=OuterRef("pk"), kind=protocol.treatment_kind))
        )
    return sorted(_id_list(patients))


def refresh_patient_ids(*, only_unplanned: bool = False) -> list[int]:
    """What ``follow_up_refresh`` re-plans: every patient with a diagnosis who is not archived."""
    patients = Patient.objects.filter(archived=False, diagnoses__isnull=False)
    if only_unplanned:
        # seed_demo writes visits (the planner's own plan) but leaves outcomes, flags and
        # reminders to the command, so "no visit yet" no longer tells fresh demo patients
        # apart; what they lack is anything a refresh derives.
        patients = patients.exclude(
            Exists(TreatmentOutcome.objects.filter(treatment__patient=OuterRef("pk")))
            | Exists(PatientFlag.objects.filter(patient=OuterRef("pk")))
            | Exists(Reminder.objects.filter(visit__patient=OuterRef("pk")))
        )
    return sorted(_id_list(patients))
