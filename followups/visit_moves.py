"""Every change of a visit's state (DOMAIN.md section 2): ``visit_move`` and its guards.

The API's move endpoints and PATCH, the admin's visit actions, the patient page and assessments
move one visit through ``visit_move``; the system's own moves of many visits at once (planning
cancelling what no longer applies, the nightly close of windows) go through ``visits_move_bulk``.
Nothing else writes ``Visit.status`` of an existing visit. A refusal is one ``ValidationError``
whose messages a receptionist can act on, each with a code of ``VisitMoveError``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from django.db import transaction
from django.utils import formats, timezone
from simple_history.utils import bulk_update_with_history

from clinic.errors import FieldErrors
from clinic.roles import Role, role_of
from clinic.validation import check_clinical_date
from followups import booking, visit_states
from followups.codes import AssessmentStatus, ReminderKind, VisitMoveError, VisitSource, VisitStatus
from followups.flags_store import flags_sync
from followups.models import ClinicSession, Slot, Visit
from followups.reminders import reminder_enqueue, reminders_plan_for
from patients.models import Patient
from patients.services import patient_lock

E = VisitMoveError

# Further ahead than this, a visit's date is a typo, not an appointment (and near the year 9999 its
# reminders could not even be placed in the patient's time zone).
LATEST_VISIT_AHEAD = timedelta(days=3653)
TOO_FAR_AHEAD = "This is more than ten years ahead."
# simple-history keeps a change's reason in 100 characters: a correction's reason lives there; a
# cancellation's in the visit's own column of 200.
CORRECTION_REASON_MAX_LENGTH = 100
# How long a planned visit stays bookable when a booking made after its window is given up.
REOPENED_WINDOW_DAYS = 14
# Follow-up ended (DOMAIN.md section 9): nothing is booked until a clinician resumes it.
FOLLOW_UP_ENDED = "This patient's follow-up has ended: a clinician resumes it before a visit is booked."
CANCEL_REASON_MAX_LENGTH = 200
MAY_CORRECT = (Role.CLINICIAN, Role.NURSE)


def _day(on: date) -> str:
    return formats.date_format(on, "j F Y")


def _moment(when: datetime) -> str:
    return formats.date_format(timezone.localtime(when), "H:i \\o\\n j F Y")


def check_visit_time(field: str, when, errors: FieldErrors, patient: Patient | None = None) -> None:
    if not isinstance(when, datetime) or timezone.is_naive(when):
        errors.add(field, "Give a date and time with its UTC offset.", E.INVALID_TIME)
    elif when > timezone.now() + LATEST_VISIT_AHEAD:
        errors.add(field, TOO_FAR_AHEAD, E.TOO_FAR_AHEAD)
    elif patient is not None:  # a visit before the patient's birth is an error (DOMAIN.md 4)
        check_clinical_date(field, timezone.localdate(when), patient.date_of_birth, errors, future_ok=True)


def visit_day(visit: Visit) -> date:
    """The first day a visit can take place: a booking's day, or a planned visit's window start
    (the patient may come on any day of the window without a booking)."""
    if visit.status == VisitStatus.BOOKED:
        return timezone.localdate(visit.scheduled_for)
    return visit.window_start


def _check_booking(visit: Visit, when, confirm_outside_window: bool, errors: FieldErrors) -> None:
    check_visit_time("scheduled_for", when, errors, visit.patient)
    if errors:
        return
    on = timezone.localdate(when)
    if visit.source == VisitSource.PROTOCOL and visit.anchor_on and on < visit.anchor_on:
        errors.add(
            "scheduled_for",
            # Words the front desk may read: the day, not what happened on it (issue 20).
            f"This visit cannot be booked before {_day(visit.anchor_on)}, the day its follow-up starts.",
            E.BEFORE_TREATMENT,
        )
    elif not (visit.window_start <= on <= visit.window_end) and not confirm_outside_window:
        errors.add(
            "scheduled_for",
            f"{_day(on)} is outside the visit's window ({_day(visit.window_start)} to "
            f"{_day(visit.window_end)}). Confirm to book it outside the window anyway.",
            E.OUTSIDE_WINDOW,
        )


def _check_completion(visit: Visit, today: date, errors: FieldErrors) -> None:
    if today < visit_day(visit):
        errors.add(
            "status",
            f"This visit is still ahead: it can be completed from {_day(visit_day(visit))} on.",
            E.STILL_AHEAD,
        )


def _check_missed(visit: Visit, now: datetime, today: date, errors: FieldErrors) -> None:
    if visit.status == VisitStatus.BOOKED and visit.scheduled_for > now:
        errors.add(
            "status",
            f"The appointment at {_moment(visit.scheduled_for)} has not passed yet.",
            E.NOT_YET_PASSED,
        )
    elif visit.status == VisitStatus.PLANNED and visit.window_end >= today:
        errors.add(
            "status",
            f"The visit can still take place until {_day(visit.window_end)}: "
            "it is missed only once its window has closed.",
            E.NOT_YET_PASSED,
        )


def _check_correction(visit: Visit, role: Role | None, errors: FieldErrors) -> None:
    if role not in MAY_CORRECT:
        errors.add(
            "status", "Only a clinician or a nurse corrects a visit's state.", E.CORRECTION_NOT_ALLOWED
        )
    if (
        visit.status == VisitStatus.COMPLETED
        and visit.assessments.filter(status=AssessmentStatus.FINAL).exists()
    ):
        errors.add(
            "status",
            "Measurements were recorded at this visit: retract them (or record them without the visit) "
            "before correcting it.",
            E.MEASURED_AT_VISIT,
        )
    if visit.status == VisitStatus.MISSED and hasattr(visit, "rebooked_as"):
        rebooked_on = timezone.localdate(visit.rebooked_as.scheduled_for)
        errors.add(
            "status",
            f"This missed visit was rebooked for {_day(rebooked_on)}: change that visit instead.",
            E.ALREADY_REBOOKED,
        )


def _check_reason(reason: str, field: str, errors: FieldErrors, what: str, max_length: int) -> str:
    reason = (reason or "").strip()
    if not reason:
        errors.add(field, f"Say why the visit is {what}.", E.REASON_REQUIRED)
    elif len(reason) > max_length:
        errors.add(field, f"Keep the reason to {max_length} characters.", E.REASON_TOO_LONG)
    return reason


def _locked_visit(visit: Visit) -> Visit:
    patient_lock(visit.patient)
    return Visit.objects.select_related("patient", "rebooked_as").get(pk=visit.pk)


def session_lock_for(slot: Slot) -> Slot:
    """Lock the session of ``slot`` (before the patient: every path takes a session first, then its
    patients) and answer the slot as it stands now. A session being cancelled finishes first, so a
    booking never lands in it unseen; ``followups.sessions`` takes the same order."""
    session_id = Slot.objects.filter(pk=slot.pk).values_list("session_id", flat=True).first()
    if session_id is not None:
        list(ClinicSession.objects.select_for_update().filter(pk=session_id).values_list("pk", flat=True))
    current = Slot.objects.select_related("session").filter(pk=slot.pk).first()
    if current is None:  # the clinic's hours changed meanwhile and the slot went with them
        errors = FieldErrors()
        errors.add("slot", "This slot no longer exists: choose another.", E.SLOT_UNAVAILABLE)
        errors.raise_if_any()
    return current


def window_reopened(visit: Visit, today: date) -> bool:
    """A booking given up after its window closed (booked outside it, confirmed) would leave a
    planned visit nobody can book and the nightly run would call it missed: its window reopens
    from today for ``REOPENED_WINDOW_DAYS``. Answer whether it did."""
    if visit.window_end >= today:
        return False
    visit.window_end = today + timedelta(days=REOPENED_WINDOW_DAYS)
    return True


def _hold_slot(visit: Visit, slot: Slot | None) -> None:
    """Give back the place the visit held, if it moves off it, and take one in ``slot``; a full
    slot refuses the booking (and the transaction gives the old place back)."""
    if visit.slot_id is not None and (slot is None or slot.pk != visit.slot_id):
        booking.slot_give_back(visit.slot_id)
    if slot is not None and slot.pk != visit.slot_id and not booking.slot_take(slot):
        errors = FieldErrors()
        errors.add("slot", "This slot has just been taken: choose another.", E.SLOT_FULL)
        errors.raise_if_any()
    visit.slot = slot


def after_visit_change(patient: Patient, today: date | None = None) -> None:
    """A visit moved: the overdue flag and the reminders follow it in the same transaction."""
    flags_sync(patient=patient, today=today)
    reminders_plan_for(patient=patient)


def visit_move_errors(
    visit: Visit,
    *,
    to: str,
    role: Role | None = None,
    scheduled_for: datetime | None = None,
    confirm_outside_window: bool = False,
    reason: str = "",
    correction: bool | None = None,
    slot: Slot | None = None,
    now: datetime | None = None,
    took_place_at: datetime | None = None,
) -> FieldErrors:
    """Everything wrong with moving ``visit`` (as it stands) to ``to``; empty when the move may go.

    ``correction``: True when the caller asks for a correction and nothing else (the API's
    ``correct/``), False when it asks for anything but (``book/``), None when either will do."""
    now = now or timezone.now()
    today = timezone.localdate(now)
    errors = FieldErrors()
    transition = visit_states.transition_error(visit.status, to)
    if transition:
        errors.add("status", transition, E.INVALID_TRANSITION)
        return errors
    if visit.patient.archived:
        errors.add("patient", "This patient is archived: restore the patient first.", E.ARCHIVED)
        return errors
    correcting = visit_states.is_correction(visit.status, to)
    if to == VisitStatus.BOOKED and not correcting and visit.patient.follow_up_ended_on is not None:
        errors.add("patient", FOLLOW_UP_ENDED, E.FOLLOW_UP_ENDED)
        return errors
    state = visit.get_status_display().lower()
    if correction is True and not correcting:
        errors.add(
            "status",
            f"Only a completed or missed visit is corrected; this one is {state}.",
            E.INVALID_TRANSITION,
        )
        return errors
    if correction is False and correcting:
        errors.add(
            "status",
            f"This visit is {state}: a clinician or nurse corrects it "
            "(with a reason) before it is booked again.",
            E.INVALID_TRANSITION,
        )
        return errors
    if correcting:
        _check_correction(visit, role, errors)
        _check_reason(reason, "reason", errors, "corrected", CORRECTION_REASON_MAX_LENGTH)
        if scheduled_for is not None and scheduled_for != visit.scheduled_for:
            errors.add(
                "scheduled_for",
                "A correction keeps the visit's time: correct it first, then reschedule it.",
                E.INVALID_TRANSITION,
            )
    elif to == VisitStatus.BOOKED:
        if slot is not None:
            errors.add("slot", booking.slot_unavailable_reason(slot, visit, now), E.SLOT_UNAVAILABLE)
            scheduled_for = slot.starts_at
        _check_booking(visit, scheduled_for, confirm_outside_window, errors)
    elif to == VisitStatus.COMPLETED and took_place_at is not None:
        if took_place_at > now:
            errors.add("status", "A visit reported as done elsewhere took place already.", E.STILL_AHEAD)
    elif to == VisitStatus.COMPLETED:
        _check_completion(visit, today, errors)
    elif to == VisitStatus.MISSED:
        _check_missed(visit, now, today, errors)
    elif to == VisitStatus.CANCELLED:
        _check_reason(reason, "cancel_reason", errors, "cancelled", CANCEL_REASON_MAX_LENGTH)
    return errors


@transaction.atomic
def visit_move(
    *,
    visit: Visit,
    to: str,
    by=None,
    role: Role | None = None,
    scheduled_for: datetime | None = None,
    confirm_outside_window: bool = False,
    reason: str = "",
    correction: bool | None = None,
    slot: Slot | None = None,
    now: datetime | None = None,
    took_place_at: datetime | None = None,
) -> Visit:
    """Move a visit to the state ``to`` (DOMAIN.md section 2), with the patient's row locked.

    - ``booked``: book a planned visit into ``slot`` (its time is the slot's) or, for staff, at a
      free time ``scheduled_for`` (inside its window unless
      ``confirm_outside_window``), reschedule a booked one, or correct a completed or missed one
      (with ``reason``, by a clinician or nurse ``by``), keeping its time;
    - ``planned``: give up a booking; ``completed`` (at ``took_place_at`` when the patient was
      seen elsewhere: the visit's time becomes it, its slot is given back), ``missed``;
      ``cancelled`` with ``reason``.
    ``by`` is the staff user (or API client's user) who asks, None for the system's own moves;
    ``role`` stands for ``by``'s role where a service acts for a recorder it knows by role only.
    """
    now = now or timezone.now()
    if slot is not None:
        slot = session_lock_for(slot)
        scheduled_for = slot.starts_at
    visit = _locked_visit(visit)
    correcting = visit_states.is_correction(visit.status, to)
    if to == VisitStatus.BOOKED and not correcting and scheduled_for is None:
        scheduled_for = visit.scheduled_for
    errors = visit_move_errors(
        visit,
        to=to,
        role=role or role_of(by),
        scheduled_for=scheduled_for,
        confirm_outside_window=confirm_outside_window,
        reason=reason,
        correction=correction,
        slot=slot,
        now=now,
        took_place_at=took_place_at,
    )
    errors.raise_if_any()
    reason = (reason or "").strip()
    fields = ["status"]
    if to == VisitStatus.BOOKED and not correcting and scheduled_for != visit.scheduled_for:
        visit.scheduled_for, visit.sequence = scheduled_for, visit.sequence + 1
        fields += ["scheduled_for", "sequence"]
    if to == VisitStatus.CANCELLED:
        visit.cancel_reason = reason
        fields.append("cancel_reason")
    if (to == VisitStatus.BOOKED and not correcting) or to in (VisitStatus.PLANNED, VisitStatus.CANCELLED):
        _hold_slot(visit, slot if to == VisitStatus.BOOKED else None)
        fields.append("slot")
    if to == VisitStatus.PLANNED and window_reopened(visit, timezone.localdate(now)):
        fields.append("window_end")
    if to == VisitStatus.BOOKED and not correcting and visit.clinic_cancelled_at is not None:
        visit.clinic_cancelled_at = None  # booked again: off the call list's "clinic cancelled"
        fields.append("clinic_cancelled_at")
    if to == VisitStatus.COMPLETED and took_place_at is not None:
        _hold_slot(visit, None)  # seen elsewhere: the place booked here goes back to the clinic
        visit.scheduled_for = took_place_at
        fields += ["slot", "scheduled_for"]
    elif to == VisitStatus.COMPLETED and visit.status == VisitStatus.PLANNED and visit.scheduled_for > now:
        # The patient came early in the window, without a booking: the visit took place now, not
        # on the day it aimed at (the record and "attended a later visit" must not see a future).
        visit.scheduled_for = now
        fields.append("scheduled_for")
    if correcting:
        # The state it leaves is the history's previous row; the reason is kept beside the change.
        visit._change_reason = reason
    visit.status = to
    visit.save(update_fields=[*fields, "updated_at"])
    after_visit_change(visit.patient)
    return visit


def booking_confirm(visit: Visit, now: datetime | None = None) -> None:
    """Confirm to the patient by e-mail, with its calendar event, an appointment they booked (or
    moved) themselves through their link (DOMAIN.md section 12); call in the booking's
    transaction. (Staff book with the patient on the phone or at the desk: the appointment's own
    reminders follow.) Never one already passed, never twice for the same time."""
    now = now or timezone.now()
    if visit.status == VisitStatus.BOOKED and visit.scheduled_for > now:
        reminder_enqueue(
            visit=visit, kind=ReminderKind.BOOKING_CONFIRMATION, visit_time=visit.scheduled_for, now=now
        )


def visits_move_bulk(*, moves: list[tuple[Visit, str]], to: str, history_reason: str) -> list[Visit]:
    """The system's own moves of many visits of one patient at once, each ``(visit, reason)``:
    planning cancels the visits a protocol no longer asks for, the nightly close marks missed the
    visits whose window closed. The state machine holds for each (a move it forbids is a bug, not
    a refusal to show); the history records each. The caller holds the patient's lock, has chosen
    the visits by the guards of the move, and brings the derived rows up to date."""
    now = timezone.now()
    moved = []
    for visit, reason in moves:
        error = visit_states.transition_error(visit.status, to)
        if error:
            raise ValueError(f"Visit {visit.pk}: {error}")
        if to == VisitStatus.CANCELLED:
            if not reason:
                raise ValueError(f"Visit {visit.pk}: a cancellation needs its reason.")
            visit.cancel_reason = reason
            if visit.slot_id is not None:
                booking.slot_give_back(visit.slot_id)
                visit.slot = None
        visit.status, visit.updated_at = to, now
        moved.append(visit)
    fields = ["status", "updated_at", *(["cancel_reason", "slot"] if to == VisitStatus.CANCELLED else [])]
    if moved:
        bulk_update_with_history(moved, Visit, fields, default_change_reason=history_reason)
    return moved
