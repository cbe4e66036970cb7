"""Ending a patient's follow-up, and resuming it (DOMAIN.md section 9).

Ending (declined, moved away, deceased, transferred, discharged, with its date) cancels every
planned and booked visit ahead with its reminders, stops invitations and prompts and takes the
patient off every worklist; the whole record stays, and the history says who ended it and why.
``deceased`` also withdraws e-mail consent. A clinician resumes it: the protocols plan again as of
that day. Planning, reminders, flags and worklists read the end from the patient's row
(``planning.follow_up_stopped``, ``reminders.planning.ineligible_reason``,
``predicates.in_follow_up``), so nothing here has to be undone by hand.
"""

from __future__ import annotations

from datetime import date

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from clinic.errors import FieldErrors
from clinic.roles import Role, role_of
from clinic.validation import check_clinical_date
from followups.codes import VisitStatus
from followups.predicates import start_of_day
from followups.services import patient_follow_up_refresh
from followups.visit_moves import after_visit_change, visits_move_bulk
from patients.codes import FollowUpEndReason
from patients.models import Patient
from patients.services import patient_lock

MAY_RESUME = (Role.CLINICIAN,)


def _visits_ahead(patient: Patient, since: date):
    start = start_of_day(since)
    return patient.visits.filter(
        Q(status=VisitStatus.BOOKED, scheduled_for__gte=start)
        | Q(status=VisitStatus.PLANNED, window_end__gte=since)
    ).order_by("scheduled_for", "pk")


@transaction.atomic
def follow_up_end(*, patient: Patient, reason: str, on: date | None = None, by=None) -> Patient:
    """End the patient's follow-up on ``on`` (today when not given) for ``reason``."""
    today = timezone.localdate()
    on = on or today
    patient = patient_lock(patient)
    errors = FieldErrors()
    if reason not in FollowUpEndReason.values:
        errors.add("reason", f"Choose among: {', '.join(FollowUpEndReason.values)}.", "invalid_choice")
    if not isinstance(on, date):
        errors.add("on", "Give the day follow-up ended.", "invalid")
    elif on > today:
        errors.add("on", "Follow-up ends today or on a day already past.", "future")
    else:
        check_clinical_date("on", on, patient.date_of_birth, errors)
    if patient.archived:
        errors.add("patient", "This patient is archived.", "archived")
    elif patient.follow_up_ended_on is not None:
        errors.add("patient", "This patient's follow-up has ended already.", "already_ended")
    errors.raise_if_any()
    label = FollowUpEndReason(reason).label
    patient.follow_up_ended_on, patient.follow_up_end_reason = on, reason
    fields = ["follow_up_ended_on", "follow_up_end_reason", "updated_at"]
    if reason == FollowUpEndReason.DECEASED and patient.email_reminders:
        patient.email_reminders, patient.email_reminders_consented_at = False, None
        fields += ["email_reminders", "email_reminders_consented_at"]
    patient._change_reason = f"Follow-up ended: {label}."
    patient.save(update_fields=fields)
    cancelled = f"Follow-up ended: {label}."
    visits_move_bulk(
        # From the day it ended: a death recorded a week late leaves no booking of that week to
        # turn "missed".
        moves=[(visit, cancelled) for visit in _visits_ahead(patient, on)],
        to=VisitStatus.CANCELLED,
        history_reason=cancelled,
    )
    after_visit_change(patient)
    return patient


@transaction.atomic
def follow_up_resume(*, patient: Patient, by=None, role: Role | None = None) -> Patient:
    """Take the patient back into follow-up: the protocols plan their visits again as of today."""
    patient = patient_lock(patient)
    errors = FieldErrors()
    if (role or role_of(by)) not in MAY_RESUME:
        errors.add("patient", "Only a clinician resumes a patient's follow-up.", "not_a_clinician")
    if patient.follow_up_ended_on is None:
        errors.add("patient", "This patient's follow-up has not ended.", "not_ended")
    errors.raise_if_any()
    patient.follow_up_ended_on, patient.follow_up_end_reason = None, ""
    patient.follow_up_resumed_on = timezone.localdate()
    patient._change_reason = "Follow-up resumed."
    patient.save(
        update_fields=["follow_up_ended_on", "follow_up_end_reason", "follow_up_resumed_on", "updated_at"]
    )
    patient_follow_up_refresh(patient=patient)
    return patient
