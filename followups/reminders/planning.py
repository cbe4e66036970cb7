"""Which reminder rows should exist (DOMAIN.md section 6): the outbox's planning half.

``reminders_plan_for`` runs in the transaction of every visit change and keeps the patient's rows
in step with their visits:
- a planned visit (not an appointment): a booking invitation 14 days before its window opens, or
  at once when planned later, and a last call 7 days before the window closes; neither names a
  time. Both are about the window, so they are keyed on it, not on a time: booking a visit
  cancels them, giving the booking up reopens them, and a window is never invited twice;
- a booked visit: a reminder 7 days and 1 day before the appointment;
- a missed visit not rebooked: a "please rebook" e-mail the day after it was missed.
Stale rows are cancelled, rows whose time has passed are skipped. Two kinds are not derived from a
visit's state but from an event, and are queued by the service that sees it
(``reminder_enqueue``): the booking confirmation, and the clinic's cancellation of a session.
Visits written in bulk never pass through here: ``planning_bulk`` inserts the same rows, set-based.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from followups.codes import ReminderKind, ReminderStatus, VisitStatus
from followups.models import Reminder, Visit
from followups.predicates import is_missed_not_rebooked
from patients.models import Patient

# Kinds of a booked visit: days before the appointment's local day.
DAYS_BEFORE = {ReminderKind.VISIT_7D: 7, ReminderKind.VISIT_1D: 1}
# Kinds of a planned visit: the invitation's days before the window opens, the last call's days
# before it closes.
INVITATION_DAYS_BEFORE_WINDOW = 14
LAST_CALL_DAYS_BEFORE_CLOSE = 7
WINDOW_KINDS = (ReminderKind.BOOKING_INVITATION, ReminderKind.BOOKING_LAST_CALL)
# Kinds queued by an event (a booking made, a session cancelled) rather than by a visit's state:
# planning neither creates nor cancels them.
EVENT_KINDS = (ReminderKind.BOOKING_CONFIRMATION, ReminderKind.APPOINTMENT_CANCELLED)
PLANNED_KINDS = tuple(kind for kind in ReminderKind.values if kind not in EVENT_KINDS)
OPEN = (ReminderStatus.PENDING, ReminderStatus.SKIPPED)
# Why a reminder row was skipped; reminders_bulk writes the same words from SQL.
LATE_REASON = "Its time had passed when it was planned."
ARCHIVED_REASON = "The patient is archived."
ENDED_REASON = "The patient's follow-up has ended."
NO_CONSENT_REASON = "No consent to e-mail reminders."
_VISIT_CHANGED = "The visit changed (rescheduled, cancelled, completed or rebooked)."


def patient_zone(patient: Patient) -> ZoneInfo:
    return ZoneInfo(patient.timezone or settings.CLINIC_TIME_ZONE)


def at_send_hour(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(settings.REMINDER_SEND_HOUR), tzinfo=zone)


def window_key_time(window_start: date) -> datetime:
    """The ``visit_time`` of a window's invitations: noon UTC of its first day. Not the patient's
    zone: a patient who moves zone keeps the same key, so is never invited twice for one window."""
    return datetime.combine(window_start, time(12), tzinfo=UTC)


@dataclass(frozen=True)
class Wanted:
    visit: Visit
    kind: str
    visit_time: datetime
    due_at: datetime
    # The last moment it is still worth sending; when planned after it, the row is skipped as late.
    # An invitation planned after its day goes out at once, as long as the window is open.
    send_by: datetime

    @property
    def key(self):
        return (self.visit.pk, self.kind, self.visit_time)


def wanted_for(visit: Visit, zone: ZoneInfo) -> list[Wanted]:
    """The reminders a visit asks for in its present state."""
    if visit.status == VisitStatus.BOOKED:
        local_day = visit.scheduled_for.astimezone(zone).date()
        wanted = []
        for kind, days in DAYS_BEFORE.items():
            due = at_send_hour(local_day - timedelta(days=days), zone)
            wanted.append(Wanted(visit, kind, visit.scheduled_for, due, due))
        return wanted
    if visit.status == VisitStatus.PLANNED:
        key_time = window_key_time(visit.window_start)
        window_closes = at_send_hour(visit.window_end, zone)
        invitation = at_send_hour(visit.window_start - timedelta(days=INVITATION_DAYS_BEFORE_WINDOW), zone)
        last_call = at_send_hour(visit.window_end - timedelta(days=LAST_CALL_DAYS_BEFORE_CLOSE), zone)
        return [
            Wanted(visit, ReminderKind.BOOKING_INVITATION, key_time, invitation, window_closes),
            Wanted(visit, ReminderKind.BOOKING_LAST_CALL, key_time, last_call, last_call),
        ]
    if is_missed_not_rebooked(visit):
        due = at_send_hour(missed_on(visit, zone) + timedelta(days=1), zone)
        return [Wanted(visit, ReminderKind.MISSED_VISIT, visit.scheduled_for, due, due)]
    return []


def missed_on(visit: Visit, zone: ZoneInfo) -> date:
    """The day a visit was missed: its window's last day, or its appointment's when booked after
    the window (the nightly close counts from the appointment then)."""
    return max(visit.window_end, visit.scheduled_for.astimezone(zone).date())


def asking_for_reminders(recent: datetime) -> Q:
    """Visits whose reminders planning still looks after: ahead (a planned one while its window is
    open), or closed no earlier than ``recent``."""
    return (
        Q(status=VisitStatus.BOOKED, scheduled_for__gte=recent)
        | Q(status=VisitStatus.PLANNED, window_end__gte=recent.date())
        | Q(status=VisitStatus.MISSED, window_end__gte=recent.date())
        | Q(status=VisitStatus.MISSED, scheduled_for__gte=recent)
    )


def ineligible_reason(patient: Patient) -> str | None:
    if patient.archived:
        return ARCHIVED_REASON
    if patient.follow_up_ended_on is not None:
        return ENDED_REASON
    if not patient.email_reminders or not patient.email:
        return NO_CONSENT_REASON
    return None


def reminders_plan_for(*, patient: Patient, now: datetime | None = None) -> None:
    """Bring the patient's reminder rows in step with their visits; call inside the change's transaction.

    Only rows still open (pending, or skipped while their time is ahead) move, and rows planning
    itself cancelled when their visit time is asked for again: a sent, failed or otherwise
    cancelled reminder is history. A row whose time has passed when planned is skipped, never
    sent late; one already pending keeps its place in the queue.
    """
    now = now or timezone.now()
    zone = patient_zone(patient)
    recent = now - timedelta(days=2)
    visits = (
        patient.visits.filter(
            asking_for_reminders(recent)
            | Q(reminders__kind__in=PLANNED_KINDS, reminders__status__in=OPEN, reminders__due_at__gte=recent)
            | Q(reminders__kind__in=PLANNED_KINDS, reminders__status=ReminderStatus.PENDING)
        )
        .select_related("rebooked_as")
        .distinct()
    )
    wanted = {w.key: w for visit in visits for w in wanted_for(visit, zone)}
    planned_rows = Reminder.objects.filter(visit__patient=patient, kind__in=PLANNED_KINDS)
    rows = {
        (r.visit_id, r.kind, r.visit_time): r
        for r in planned_rows.filter(visit__in=[w.visit for w in wanted.values()])
        | planned_rows.filter(status__in=OPEN, due_at__gte=recent)
        # An invitation planned after its day is pending with a due time in the past.
        | planned_rows.filter(status=ReminderStatus.PENDING)
    }
    ineligible = ineligible_reason(patient)
    to_create, to_update = [], []
    for key, want in wanted.items():
        row = rows.pop(key, None)
        if row is None:
            row = Reminder(visit=want.visit, kind=want.kind, visit_time=want.visit_time)
            set_open_state(row, want, ineligible, now)
            to_create.append(row)
        elif row.status in OPEN or _cancelled_by_planning(row):
            before = _open_state(row)
            set_open_state(row, want, ineligible, now)
            # Rows that stay as they were are not written: planning twice changes nothing.
            if _open_state(row) != before:
                to_update.append(row)
    for row in rows.values():
        if row.status in OPEN:
            row.status, row.status_reason = ReminderStatus.CANCELLED, _VISIT_CHANGED
            row.next_attempt_at = None
            to_update.append(row)
    if ineligible:
        # An event's e-mail still waiting (a confirmation) goes the same way as the rest: a
        # patient who opted out, or was archived, gets nothing more.
        Reminder.objects.filter(
            visit__patient=patient, kind__in=EVENT_KINDS, status=ReminderStatus.PENDING
        ).update(
            status=ReminderStatus.SKIPPED, status_reason=ineligible, next_attempt_at=None, updated_at=now
        )
    # A bulk run (``reminders_plan_bulk``) may be inserting the same row right now, outside the
    # patient's lock: its row is the one this would write, so the conflict is no error.
    Reminder.objects.bulk_create(to_create, ignore_conflicts=True)
    for row in to_update:
        row.updated_at = now
    Reminder.objects.bulk_update(
        to_update, ["status", "status_reason", "due_at", "next_attempt_at", "updated_at"]
    )


def _cancelled_by_planning(row: Reminder) -> bool:
    # A visit moved away and back again asks for the same (visit, kind, visit time) once more: the
    # row planning cancelled, never sent, is the one to reopen. Staff's cancellations stand.
    return row.status == ReminderStatus.CANCELLED and row.status_reason == _VISIT_CHANGED


def _open_state(row: Reminder) -> tuple:
    return (row.status, row.status_reason, row.due_at, row.next_attempt_at)


def set_open_state(row: Reminder, want: Wanted, ineligible: str | None, now: datetime) -> None:
    due_at = want.due_at
    moved = row.due_at != due_at
    row.due_at = due_at
    if row.pk and row.status == ReminderStatus.SKIPPED and row.status_reason == LATE_REASON:
        return
    if ineligible:
        row.status, row.status_reason, row.next_attempt_at = ReminderStatus.SKIPPED, ineligible, None
    elif row.pk and row.status == ReminderStatus.PENDING and not moved:
        # Already waiting: for its time, for the sweeper once due, for the next attempt after a
        # transient error, or resent by staff. Any other change of the patient's visits (which
        # re-plans them all) must neither skip it as late nor undo its backoff.
        return
    elif want.send_by <= now:
        row.status, row.status_reason, row.next_attempt_at = ReminderStatus.SKIPPED, LATE_REASON, None
    else:
        # Due already (an invitation planned after its day): the sweeper takes it at once.
        row.status, row.status_reason, row.next_attempt_at = ReminderStatus.PENDING, "", due_at


def reminder_enqueue(
    *, visit: Visit, kind: str, visit_time: datetime, now: datetime | None = None
) -> Reminder | None:
    """Queue an event's e-mail (a booking confirmed, a session cancelled) to go out at once, in the
    transaction of the change that calls for it, with the patient's row locked; answer the row, or
    None when that e-mail for this visit and time exists already (nothing is sent twice)."""
    if kind not in EVENT_KINDS:
        raise ValueError(f"{kind} reminders are planned from the visit's state, not queued.")
    if Reminder.objects.filter(visit=visit, kind=kind, visit_time=visit_time).exists():
        return None
    now = now or timezone.now()
    row = Reminder(visit=visit, kind=kind, visit_time=visit_time, due_at=now)
    ineligible = ineligible_reason(visit.patient)
    if ineligible:
        row.status, row.status_reason = ReminderStatus.SKIPPED, ineligible
    else:
        row.status, row.next_attempt_at = ReminderStatus.PENDING, now
    row.save(force_insert=True)
    return row
