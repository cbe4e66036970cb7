"""Staff's changes to the clinic's sessions (DOMAIN.md section 12): writing a template, which
reworks its sessions ahead at once, and cancelling one dated session.

Generating sessions and taking places in slots is ``followups.booking``; moving visits is
``followups.visit_moves``. A session or slot that holds a booking is never removed: the bookings
stand, and staff move them (the week view shows them) before the clinic's hours change under them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time

from django.db import transaction
from django.db.models import Exists, F, OuterRef, Q, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from clinic.errors import FieldErrors
from followups import booking
from followups.codes import ReminderKind, VisitKind, VisitStatus
from followups.models import ClinicSession, SessionTemplate, SessionTemplateKind, Slot, Visit
from followups.reminders import reminder_enqueue
from followups.visit_moves import after_visit_change, visit_move, visits_move_bulk
from patients.models import Patient
from patients.services import patient_lock

TEMPLATE_FIELDS = (
    "label",
    "weekday",
    "starts_at",
    "ends_at",
    "slot_minutes",
    "capacity",
    "valid_from",
    "valid_to",
)
# What shapes the dated sessions and their slots: changing one of these remakes the empty sessions
# ahead; any other change (label, places, kinds, validity) leaves every session and slot in place,
# so the ids integrators hold stay valid.
SHAPE_FIELDS = ("weekday", "starts_at", "ends_at", "slot_minutes")
LABEL_MAX_LENGTH = 120
SLOT_MINUTES = (5, 480)
CAPACITY = (1, 50)
DEFAULT_SLOT_MINUTES, DEFAULT_CAPACITY = 15, 1
SESSION_CANCEL_REASON_MAX_LENGTH = 200


@dataclass(frozen=True)
class TemplateSaved:
    template: SessionTemplate
    generated: int
    removed: int
    kept_with_bookings: int


def _check_template(fields: dict, kinds, errors: FieldErrors) -> None:
    label = (fields.get("label") or "").strip()
    if not label:
        errors.add("label", "Name the session (room or team).", "required")
    elif len(label) > LABEL_MAX_LENGTH:
        errors.add("label", f"Keep the label to {LABEL_MAX_LENGTH} characters.", "max_length")
    weekday = fields.get("weekday")
    if not isinstance(weekday, int) or not 0 <= weekday <= 6:
        errors.add("weekday", "Give the weekday as 0 (Monday) to 6 (Sunday).", "invalid")
    starts_at, ends_at = fields.get("starts_at"), fields.get("ends_at")
    for field in ("starts_at", "ends_at"):
        if not isinstance(fields.get(field), time):
            errors.add(field, "Give a time of day.", "invalid")
    minutes = fields.get("slot_minutes")
    if not isinstance(minutes, int) or not SLOT_MINUTES[0] <= minutes <= SLOT_MINUTES[1]:
        errors.add("slot_minutes", "A slot lasts {} to {} minutes.".format(*SLOT_MINUTES), "invalid")
    elif isinstance(starts_at, time) and isinstance(ends_at, time):
        length = (ends_at.hour * 60 + ends_at.minute) - (starts_at.hour * 60 + starts_at.minute)
        if length <= 0:
            errors.add("ends_at", "The session ends after it starts.", "invalid")
        elif length < minutes:
            errors.add("slot_minutes", "The session is shorter than one slot.", "invalid")
    capacity = fields.get("capacity")
    if not isinstance(capacity, int) or not CAPACITY[0] <= capacity <= CAPACITY[1]:
        errors.add("capacity", "A slot takes {} to {} visits.".format(*CAPACITY), "invalid")
    valid_from, valid_to = fields.get("valid_from"), fields.get("valid_to")
    if not isinstance(valid_from, date):
        errors.add("valid_from", "Give the first day the template is in force.", "required")
    elif valid_to is not None and (not isinstance(valid_to, date) or valid_to < valid_from):
        errors.add("valid_to", "The last day is on or after the first.", "invalid")
    if not kinds:
        errors.add("visit_kinds", "Name at least one kind of visit the session serves.", "required")
    elif any(kind not in VisitKind.values for kind in kinds):
        errors.add("visit_kinds", f"Choose among: {', '.join(VisitKind.values)}.", "invalid_choice")


def _booked(sessions):
    return sessions.annotate(has_visits=Exists(Visit.objects.filter(slot__session=OuterRef("pk")))).filter(
        has_visits=True
    )


@transaction.atomic
def session_template_save(
    *, template: SessionTemplate | None = None, visit_kinds=None, today: date | None = None, **changes
) -> TemplateSaved:
    """Create a template, or change one, and bring its sessions of the next 26 weeks in line.

    A change of weekday, hours or slot length makes the empty sessions ahead again from the
    template as it now stands; a change of validity removes the empty ones it no longer covers;
    label and places follow in place. Sessions holding bookings keep their slots (their places
    only grow to the new number) and are counted so that staff can move their visits. Past and
    cancelled sessions stay as they were.
    """
    today = today or timezone.localdate()
    creating = template is None
    if creating:
        template = SessionTemplate()
    else:
        template = SessionTemplate.objects.select_for_update().get(pk=template.pk)
    unknown = set(changes) - set(TEMPLATE_FIELDS)
    if unknown:
        raise TypeError(f"Unknown template fields: {', '.join(sorted(unknown))}")
    fields = {name: changes.get(name, getattr(template, name)) for name in TEMPLATE_FIELDS}
    if creating:
        fields["slot_minutes"] = changes.get("slot_minutes", DEFAULT_SLOT_MINUTES)
        fields["capacity"] = changes.get("capacity", DEFAULT_CAPACITY)
    kinds = (
        list(dict.fromkeys(visit_kinds))
        if visit_kinds is not None
        else list(template.kind_rows.values_list("visit_kind", flat=True))
        if not creating
        else []
    )
    errors = FieldErrors()
    _check_template(fields, kinds, errors)
    errors.raise_if_any()
    fields["label"] = fields["label"].strip()
    reshaped = not creating and any(fields[name] != getattr(template, name) for name in SHAPE_FIELDS)
    for name, value in fields.items():
        setattr(template, name, value)
    template.save()
    template.kind_rows.exclude(visit_kind__in=kinds).delete()
    SessionTemplateKind.objects.bulk_create(
        [SessionTemplateKind(template=template, visit_kind=kind) for kind in kinds], ignore_conflicts=True
    )
    removed = kept = 0
    if not creating:
        removed, kept = _sessions_ahead_follow(template, today, reshaped)
    generated = booking.sessions_generate(today=today, templates=[template])
    return TemplateSaved(template, generated, removed, kept)


def _sessions_ahead_follow(template: SessionTemplate, today: date, reshaped: bool) -> tuple[int, int]:
    """Bring the template's sessions ahead in line with it; answer (removed, kept with bookings).

    Sessions outside its validity, or of another shape when ``reshaped``, are removed when empty
    (``sessions_generate`` then makes what is missing); those holding bookings stay, and are
    counted for staff to move. Labels and places follow in place, never below the places already
    taken (the database's check would refuse it)."""
    ahead = template.sessions.filter(on__gte=today, cancelled=False)
    outside = Q(on__lt=template.valid_from)
    if template.valid_to is not None:
        outside |= Q(on__gt=template.valid_to)
    going = ahead if reshaped else ahead.filter(outside)
    # Locked before they are judged empty: a booking takes its session's lock first, so it either
    # finished (its session is kept) or waits and then finds its slot gone.
    list(going.select_for_update().values_list("pk", flat=True))
    held = _booked(going).values("pk")
    empty = going.exclude(pk__in=held)
    Slot.objects.filter(session__in=empty).delete()
    removed, _ = empty.delete()
    kept = going.count()
    ahead.update(label=template.label, updated_at=timezone.now())
    Slot.objects.filter(session__in=ahead).update(capacity=Greatest(Value(template.capacity), F("booked")))
    return removed, kept


@transaction.atomic
def session_cancel(*, session: ClinicSession, reason: str, by=None) -> ClinicSession:
    """Cancel a dated session (a holiday, an absence): its booked visits go back to planned, wait on
    the call list (``clinic_cancelled``) and their patients are told, with their booking link."""
    errors = FieldErrors()
    reason = (reason or "").strip()
    if not reason:
        errors.add("reason", "Say why the session is cancelled.", "required")
    elif len(reason) > SESSION_CANCEL_REASON_MAX_LENGTH:
        errors.add(
            "reason", f"Keep the reason to {SESSION_CANCEL_REASON_MAX_LENGTH} characters.", "max_length"
        )
    session = ClinicSession.objects.select_for_update().get(pk=session.pk)
    if session.cancelled:
        errors.add("cancelled", "This session is cancelled already.", "already_cancelled")
    elif session.on < timezone.localdate():
        errors.add("on", "This session is over: it cannot be cancelled.", "session_over")
    errors.raise_if_any()
    # The session is locked first: a booking takes it before its patient, so none lands in it
    # from here on. The bookings it holds stay put until their patients are locked too (in one
    # order), and are read again then: a patient may have moved one elsewhere meanwhile.
    holding = Visit.objects.filter(slot__session=session, status=VisitStatus.BOOKED)
    for patient_id in sorted(set(holding.values_list("patient_id", flat=True))):
        patient_lock(Patient(pk=patient_id))
    session.cancelled, session.cancel_reason = True, reason
    session.save(update_fields=["cancelled", "cancel_reason", "updated_at"])
    now = timezone.now()
    # An appointment of the day already over (the session is cancelled in the afternoon) took
    # place or was missed: it stays as it is.
    for visit in holding.filter(scheduled_for__gt=now).select_related("patient").order_by("patient_id", "pk"):
        _send_back(visit, now, by)
    return session


def _send_back(visit: Visit, now, by) -> None:
    """One booking of a cancelled session: back to planned, marked for the call list, the patient
    told with their booking link. An archived patient's booking is simply cancelled (their
    follow-up is over; nobody is to be told)."""
    appointment = visit.scheduled_for
    if visit.patient.archived:
        visits_move_bulk(
            moves=[(visit, "The clinic cancelled the session.")],
            to=VisitStatus.CANCELLED,
            history_reason="The clinic cancelled the session.",
        )
        after_visit_change(visit.patient)
        return
    visit = visit_move(visit=visit, to=VisitStatus.PLANNED, by=by)
    visit.clinic_cancelled_at = now
    visit._change_reason = "The clinic cancelled the session."
    visit.save(update_fields=["clinic_cancelled_at", "updated_at"])
    reminder_enqueue(visit=visit, kind=ReminderKind.APPOINTMENT_CANCELLED, visit_time=appointment, now=now)
