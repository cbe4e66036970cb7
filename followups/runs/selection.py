"""Which patients each kind of run refreshes, as ordered lists of ids (the chunks keep the order).

The nightly choice is the one place to make the nightly run selective (issue 18, second part):
the coordinator asks this module and nothing else.
"""

from __future__ import annotations

from datetime import date

from django.db.models import Exists, OuterRef

from followups import predicates
from followups.models import PatientFlag, Protocol, Reminder, TreatmentOutcome
from patients.models import Patient, Treatment


def _ids(patients) -> list[int]:
    return list(patients.order_by("pk").values_list("pk", flat=True).distinct())


def _in_follow_up():
    return Patient.objects.filter(predicates.in_follow_up(prefix=""), diagnoses__isnull=False)


def nightly_patient_ids(*, today: date) -> list[int]:
    """Everyone in follow-up: open series are rolled forward and dated flags turn on by the
    calendar alone. ``today`` is for the selective choice to come."""
    return _ids(_in_follow_up())


def protocol_patient_ids(*, protocol: Protocol) -> list[int]:
    """The patients an edit of ``protocol`` can re-plan: those in follow-up with a treatment of its
    kind, or, for the protocol of untreated patients, any diagnosed one (a superset is harmless:
    re-planning is idempotent)."""
    patients = _in_follow_up()
    if protocol.treatment_kind:
        patients = patients.filter(
            Exists(Treatment.objects.filter(patient=OuterRef("pk"), kind=protocol.treatment_kind))
        )
    return _ids(patients)


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
    return _ids(patients)
