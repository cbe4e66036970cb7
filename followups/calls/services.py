"""Recording a contact attempt with the effect its outcome has (DOMAIN.md section 9).

One service call, one transaction: the attempt and its effect are written together or not at all.
- ``no_answer``, ``left_message``: the attempt only (the call list counts them: unreachable after
  3 in 30 days);
- ``call_later``: the attempt with ``remind_on``, a day ahead (the call list hides the patient
  until then);
- ``agreed_to_visit``: needs the booking made in the same step, into a slot or at a time (a missed
  visit is rebooked as staff rebook it);
- ``wrong_number``: the patient's contact data are marked for update (the
  ``contact_details_invalid`` flag, until a new phone or e-mail is saved);
- ``already_seen_elsewhere`` with ``seen_on``: the visit is recorded as completed on that day (a
  missed one through a completed rebooking, so that the missed one stays on the record);
- ``declined_follow_up``, ``moved_away``, ``deceased``: follow-up ends (``follow_up_end``).
The system records its own attempt when it sends a missed-visit e-mail
(``system_attempt_record``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from clinic.errors import FieldErrors
from followups import services
from followups.calls.follow_up_end import follow_up_end
from followups.codes import ContactChannel, ContactOutcome, VisitStatus
from followups.flags_store import flags_sync
from followups.models import ContactAttempt, Slot, Visit
from followups.predicates import is_missed_not_rebooked
from followups.protocols import visit_time
from followups.visit_moves import FOLLOW_UP_ENDED, session_lock_for, visit_move
from patients.codes import FollowUpEndReason
from patients.models import Patient
from patients.services import patient_lock

Outcome = ContactOutcome
ENDING = {
    Outcome.DECLINED_FOLLOW_UP: FollowUpEndReason.DECLINED_FOLLOW_UP,
    Outcome.MOVED_AWAY: FollowUpEndReason.MOVED_AWAY,
    Outcome.DECEASED: FollowUpEndReason.DECEASED,
}
CALL_LATER_AT_MOST = timedelta(days=365)
# A visit elsewhere stands for the one due when it took place from this long before its window.
SEEN_BEFORE_WINDOW = timedelta(days=30)
# Outcomes that act on the visit due: none once follow-up has ended.
VISIT_OUTCOMES = (Outcome.AGREED_TO_VISIT, Outcome.ALREADY_SEEN_ELSEWHERE)
# How far ahead of our clock an attempt's time may be: a call centre's clock and ours are never
# exactly the same, and the "now" it sends must not be refused as ahead.
CLOCK_SKEW = timedelta(minutes=2)
NOTE_MAX_LENGTH = 500


def _check(
    patient, channel, outcome, at, visit, remind_on, seen_on, note, slot, scheduled_for, today
) -> FieldErrors:
    errors = FieldErrors()
    if at > timezone.now() + CLOCK_SKEW:
        errors.add("at", "An attempt is recorded once made: not ahead of now.", "in_future")
    elif patient.date_of_birth and timezone.localdate(at) < patient.date_of_birth:
        errors.add("at", "The attempt cannot be before the patient's birth.", "before_birth")
    if channel not in ContactChannel.values:
        errors.add("channel", f"Choose among: {', '.join(ContactChannel.values)}.", "invalid_choice")
    if outcome not in ContactOutcome.values:
        errors.add("outcome", f"Choose among: {', '.join(ContactOutcome.values)}.", "invalid_choice")
    if len(note or "") > NOTE_MAX_LENGTH:
        errors.add("note", f"Keep the note to {NOTE_MAX_LENGTH} characters.", "max_length")
    if patient.archived:
        errors.add("patient", "This patient is archived.", "archived")
    elif patient.follow_up_ended_on is not None and outcome in VISIT_OUTCOMES:
        errors.add("patient", FOLLOW_UP_ENDED, "follow_up_ended")
    if visit is not None and visit.patient_id != patient.pk:
        errors.add("visit", "This visit belongs to another patient.", "other_patient")
    elif visit is not None and outcome in VISIT_OUTCOMES:
        _check_visit_due(visit, outcome, errors)
    if outcome == Outcome.CALL_LATER:
        if not isinstance(remind_on, date) or remind_on <= today:
            errors.add("remind_on", "Give the day to call again, after today.", "required")
        elif remind_on > today + CALL_LATER_AT_MOST:
            errors.add("remind_on", "Call again within a year.", "too_far_ahead")
    elif remind_on is not None:
        errors.add("remind_on", "Only a call-later attempt has a day to call again.", "not_allowed")
    if outcome == Outcome.AGREED_TO_VISIT:
        if visit is None:
            errors.add("visit", "Name the visit the patient agreed to.", "required")
        if (slot is None) == (scheduled_for is None):
            errors.add(
                "slot", "Book the visit in the same step: a slot or a time, one of the two.", "required"
            )
    elif slot is not None or scheduled_for is not None:
        errors.add("slot", "Only an agreed visit is booked with the attempt.", "not_allowed")
    if outcome == Outcome.ALREADY_SEEN_ELSEWHERE:
        if visit is None:
            errors.add("visit", "Name the visit the patient had elsewhere.", "required")
        if not isinstance(seen_on, date):
            errors.add("seen_on", "Give the day the patient was seen elsewhere.", "required")
        elif seen_on > today:
            errors.add("seen_on", "The day seen elsewhere cannot be ahead of today.", "in_future")
        elif patient.date_of_birth and seen_on < patient.date_of_birth:
            errors.add(
                "seen_on", "The day seen elsewhere cannot be before the patient's birth.", "before_birth"
            )
        elif visit is not None and visit.patient_id == patient.pk and seen_on < _seen_earliest(visit):
            errors.add(
                "seen_on",
                f"A visit elsewhere before {_seen_earliest(visit):%d %b %Y} does not stand for this "
                f"one (its window opens on {visit.window_start:%d %b %Y}).",
                "before_window",
            )
    elif seen_on is not None:
        errors.add("seen_on", "Only a seen-elsewhere attempt has the day seen elsewhere.", "not_allowed")
    return errors


def _check_visit_due(visit: Visit, outcome: str, errors: FieldErrors) -> None:
    """The visit an agreement books, or a visit elsewhere stands for, is still due: planned or
    missed and not rebooked (a visit elsewhere may also stand for a booked one). A visit booked
    since the list was read is refused, never moved unseen."""
    due = visit.status == VisitStatus.PLANNED or is_missed_not_rebooked(visit)
    if outcome == Outcome.ALREADY_SEEN_ELSEWHERE:
        due = due or visit.status == VisitStatus.BOOKED
    if not due:
        state = "rebooked" if visit.status == VisitStatus.MISSED else visit.get_status_display().lower()
        errors.add("visit", f"This visit is {state} already: look at the patient's page.", "not_due")


def _seen_earliest(visit: Visit) -> date:
    """A visit elsewhere stands for ``visit`` from a little before its window opens, never before
    the treatment it follows (never for a review of next year)."""
    return max(visit.window_start - SEEN_BEFORE_WINDOW, visit.anchor_on or date.min)


def _seen_elsewhere(visit: Visit, by, seen_on: date) -> Visit:
    took_place_at = visit_time(seen_on, hour=settings.CLINIC_VISIT_HOUR, zone=settings.CLINIC_TIME_ZONE)
    # Seen today, before the clinic's visit hour: the visit took place by now (the moves refuse a
    # visit "done elsewhere" in the future), on the same day.
    took_place_at = min(took_place_at, timezone.now())
    visit = Visit.objects.get(pk=visit.pk)  # as it stands under the patient's lock
    if visit.status == VisitStatus.MISSED:
        return services.visit_rebook_as_attended(visit=visit, took_place_at=took_place_at)
    return visit_move(visit=visit, to=VisitStatus.COMPLETED, by=by, took_place_at=took_place_at)


def _book(visit: Visit, by, slot, scheduled_for, confirm_outside_window) -> Visit:
    visit = Visit.objects.get(pk=visit.pk)  # as it stands under the patient's lock
    if visit.status == VisitStatus.MISSED:
        return services.visit_rebook(visit=visit, slot=slot, scheduled_for=scheduled_for)
    return visit_move(
        visit=visit,
        to=VisitStatus.BOOKED,
        by=by,
        slot=slot,
        scheduled_for=scheduled_for,
        confirm_outside_window=confirm_outside_window,
        correction=False,
    )


@transaction.atomic
def contact_attempt_record(
    *,
    patient: Patient,
    channel: str,
    outcome: str,
    by=None,
    visit: Visit | None = None,
    at: datetime | None = None,
    remind_on: date | None = None,
    seen_on: date | None = None,
    note: str = "",
    slot: Slot | None = None,
    scheduled_for: datetime | None = None,
    confirm_outside_window: bool = False,
) -> ContactAttempt:
    """Record one attempt to reach ``patient`` and carry out what its outcome asks for."""
    today = timezone.localdate()
    if slot is not None:
        slot = session_lock_for(slot)  # the session first, then the patient, as every booking
    patient = patient_lock(patient)
    if visit is not None:  # as it stands under the patient's lock: booked meanwhile, perhaps
        visit = Visit.objects.select_related("rebooked_as").get(pk=visit.pk)
    at = at or timezone.now()
    _check(
        patient, channel, outcome, at, visit, remind_on, seen_on, note, slot, scheduled_for, today
    ).raise_if_any()
    attempt = ContactAttempt.objects.create(
        patient=patient,
        visit=visit,
        at=at,
        channel=channel,
        outcome=outcome,
        remind_on=remind_on,
        seen_on=seen_on,
        note=(note or "").strip(),
        by=by,
    )
    if outcome == Outcome.AGREED_TO_VISIT:
        _book(visit, by, slot, scheduled_for, confirm_outside_window)
    elif outcome == Outcome.ALREADY_SEEN_ELSEWHERE:
        _seen_elsewhere(visit, by, seen_on)
    elif outcome == Outcome.WRONG_NUMBER:
        patient.contact_details_invalid_since = attempt.at
        patient.save(update_fields=["contact_details_invalid_since", "updated_at"])
        flags_sync(patient=patient)
    elif outcome in ENDING:
        # Follow-up ends on the day of the call, when it is recorded later.
        follow_up_end(patient=patient, reason=ENDING[outcome], on=min(timezone.localdate(at), today), by=by)
    return attempt


def system_attempt_record(*, visit: Visit, at: datetime) -> ContactAttempt:
    """The automatic missed-visit e-mail, recorded as the system's attempt to reach the patient
    (DOMAIN.md section 9: channel e-mail, no one's name). Called by the delivery in the
    transaction that marks the e-mail sent, so it is recorded once or not at all."""
    return ContactAttempt.objects.create(
        patient_id=visit.patient_id,
        visit=visit,
        at=at,
        channel=ContactChannel.EMAIL,
        outcome=Outcome.LEFT_MESSAGE,
        by=None,
    )
