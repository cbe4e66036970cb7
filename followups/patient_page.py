"""The patient page of the staff panel: one patient's record, follow-up and recovery at a glance.

``patient_page`` gathers everything the page shows in a fixed number of queries, whatever the
length of the record; staff who may not read the clinical record (the front desk) get contact
data, visits and reminders only, and the clinical tables are not even queried for them.
``recovery_chart`` lays out the chart of spasms per day and Cohen-Albert grade as plain numbers
for an inline SVG, so the page needs no script and no asset from outside the project.
``slot_offers`` are the slots the page offers for booking one visit, the one staff chose
(``?book=<visit>``): asked for one visit at a time, they keep the page's cost fixed. The contact
history (DOMAIN.md section 9) is every attempt to reach the patient, newest first, in one query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from django.db.models import Prefetch
from django.utils import timezone

from clinic.roles import Kind, may, role_of
from followups import booking, visit_states
from followups.booking import Suggestion
from followups.codes import ReminderStatus, VisitStatus
from followups.models import Assessment, ContactAttempt, LabResult, PatientFlag, Reminder, Visit
from followups.predicates import is_missed_not_rebooked
from followups.recovery_chart import Chart, recovery_chart
from followups.visit_moves import MAY_CORRECT, visit_day, visit_move_errors
from patients.models import Diagnosis, ImagingStudy, Patient, Treatment
from patients.record_states import treatment_stoppable

# What staff can do to a visit from the page, for each state it may move to.
VISIT_ACTIONS = {
    VisitStatus.BOOKED: "book",
    VisitStatus.PLANNED: "unbook",
    VisitStatus.COMPLETED: "complete",
    VisitStatus.MISSED: "missed",
    VisitStatus.CANCELLED: "cancel",
}


# A missed visit's rebooking offers the free slots of this many days ahead, as the patient's own
# rebooking link does (DOMAIN.md section 12).


# Moves whose guards are dates alone: offered only once they would pass (no "missed" for a visit
# ahead). The other moves are offered as the state machine allows and judged when asked.
DATED_MOVES = (VisitStatus.COMPLETED, VisitStatus.MISSED)


def visit_named(visit: Visit, *, clinical: bool) -> str:
    """What the panel calls a visit: its purpose to those who read the clinical record; to the rest
    (the front desk) the kind of clinic it needs, which is all booking asks, since a purpose names
    the treatment ("Re-injection visit (day 84)")."""
    return visit.purpose if clinical else str(visit.get_visit_kind_display())


def visit_named_on(visit: Visit, *, clinical: bool) -> str:
    """A visit with its day and state, for a message or a field: ``Visit.__str__`` (which starts
    with the purpose) only to those who read the clinical record."""
    if clinical:
        return str(visit)
    day = timezone.localdate(visit.scheduled_for)
    return f"{visit_named(visit, clinical=False)} ({day:%Y-%m-%d}, {visit.get_status_display().lower()})"


def visit_actions(visit: Visit, *, may_correct: bool = False) -> list[str]:
    """The page's actions for a visit: its moves that could go now, a correction for clinicians
    and nurses, and a rebook for a missed visit nobody rebooked."""
    actions = []
    for status, action in VISIT_ACTIONS.items():
        if visit_states.transition_error(visit.status, status):
            continue
        if visit_states.is_correction(visit.status, status):
            if may_correct:
                actions.append("correct")
        elif status not in DATED_MOVES or not visit_move_errors(visit, to=status):
            actions.append(action)
    if is_missed_not_rebooked(visit):
        actions.insert(0, "rebook")
    return actions


def visit_assessable(visit: Visit, today: date | None = None) -> bool:
    """Whether measurements can be recorded at the visit now: it took place, or its day has come
    (recording completes it)."""
    if visit.status == VisitStatus.CANCELLED:
        return False
    return visit.status == VisitStatus.COMPLETED or (today or timezone.localdate()) >= visit_day(visit)


def rebooking_offers(missed: Visit, now=None) -> list[Suggestion]:
    """The free slots of the next 30 days that may take a missed visit's rebooking. The rebooked
    visit's window is its own day, so none of them is outside it."""
    slots = booking.rebooking_slots(missed, now=now)
    return [Suggestion(slot, True) for slot in slots[: booking.SUGGESTIONS]]


@dataclass(frozen=True)
class SlotOffers:
    """The slots offered for booking (or rebooking) one visit of the page."""

    visit: Visit
    action: str
    suggestions: list[Suggestion]


def slot_offers(visit: Visit) -> SlotOffers | None:
    """What the page offers to book ``visit`` into, or None when it is not to be booked now."""
    if "rebook" in visit.page_actions:
        return SlotOffers(visit, "rebook", rebooking_offers(visit))
    if "book" in visit.page_actions:
        return SlotOffers(visit, "book", booking.slot_suggestions(visit=visit))
    return None


@dataclass(frozen=True)
class Event:
    on: date
    what: str
    text: str
    anchor: str
    # A reminder that was never sent (skipped, cancelled): kept, but folded away by default, as
    # a plan's re-planning leaves dozens of them.
    quiet: bool = False


# Reminders that went nowhere: a re-plan or a booking skipped or cancelled them.
QUIET_REMINDERS = (ReminderStatus.SKIPPED, ReminderStatus.CANCELLED)
OPEN_VISITS = (VisitStatus.PLANNED, VisitStatus.BOOKED)


@dataclass
class PatientPage:
    patient: Patient
    clinical: bool
    visits: list[Visit]
    reminders: list[Reminder]
    diagnoses: list[Diagnosis] = field(default_factory=list)
    imaging: list[ImagingStudy] = field(default_factory=list)
    treatments: list[Treatment] = field(default_factory=list)
    assessments: list[Assessment] = field(default_factory=list)
    lab_results: list[LabResult] = field(default_factory=list)
    flags: list[PatientFlag] = field(default_factory=list)
    chart: Chart = field(default_factory=Chart)
    timeline: list[Event] = field(default_factory=list)
    offers: SlotOffers | None = None
    contacts: list[ContactAttempt] = field(default_factory=list)
    # Whether this user records contact attempts (front desk, clinician): the page links to the form.
    may_record_contact: bool = False

    # The visits table in three parts: what is ahead (the next first), what took place or was
    # missed (the latest first), and the cancelled ones, folded away.
    @property
    def upcoming(self) -> list[Visit]:
        return sorted(
            (v for v in self.visits if v.status in OPEN_VISITS), key=lambda v: (v.scheduled_for, v.pk)
        )

    @property
    def history(self) -> list[Visit]:
        return [v for v in self.visits if v.status not in OPEN_VISITS and v.status != VisitStatus.CANCELLED]

    @property
    def cancelled(self) -> list[Visit]:
        return [v for v in self.visits if v.status == VisitStatus.CANCELLED]

    @property
    def visit_parts(self) -> list[tuple[str, list[Visit], str]]:
        return [
            ("upcoming", self.upcoming, "No visit ahead."),
            ("history", self.history, "No visit yet."),
            ("cancelled", self.cancelled, ""),
        ]

    @property
    def reminders_shown(self) -> list[Reminder]:
        return [r for r in self.reminders if r.status not in QUIET_REMINDERS]

    @property
    def reminders_quiet(self) -> list[Reminder]:
        return [r for r in self.reminders if r.status in QUIET_REMINDERS]

    @property
    def timeline_shown(self) -> list[Event]:
        return [e for e in self.timeline if not e.quiet]

    @property
    def timeline_quiet(self) -> list[Event]:
        return [e for e in self.timeline if e.quiet]


def _local_day(when) -> date:
    return timezone.localdate(when)


def _timeline(page: PatientPage) -> list[Event]:
    events = [
        Event(
            _local_day(v.scheduled_for),
            "visit",
            f"Visit {v.get_status_display().lower()}: {visit_named(v, clinical=page.clinical)}",
            f"visit-{v.pk}",
        )
        for v in page.visits
    ]
    events += [
        Event(
            _local_day(r.sent_at or r.due_at),
            "reminder",
            f"Reminder {r.get_kind_display().lower()}: {r.get_status_display().lower()}",
            f"reminder-{r.pk}",
            quiet=r.status in QUIET_REMINDERS,
        )
        for r in page.reminders
    ]
    events += [
        Event(
            _local_day(c.at),
            "contact",
            f"Contact attempt ({c.get_channel_display().lower()}): {c.get_outcome_display().lower()}",
            f"contact-{c.pk}",
        )
        for c in page.contacts
    ]
    if page.clinical:
        events += [
            Event(d.diagnosed_on, "diagnosis", f"Diagnosis: {d}", f"diagnosis-{d.pk}") for d in page.diagnoses
        ]
        events += [Event(s.performed_on, "imaging", f"Imaging: {s}", f"imaging-{s.pk}") for s in page.imaging]
        for t in page.treatments:
            events.append(
                Event(
                    t.started_on,
                    "treatment",
                    f"Treatment started: {t.get_kind_display()}",
                    f"treatment-{t.pk}",
                )
            )
            if t.ended_on:
                events.append(
                    Event(
                        t.ended_on,
                        "treatment",
                        f"Treatment ended: {t.get_kind_display()}",
                        f"treatment-{t.pk}",
                    )
                )
        events += [
            Event(a.assessed_on, "assessment", "Assessment", f"assessment-{a.pk}") for a in page.assessments
        ]
        events += [Event(r.taken_on, "lab", f"Laboratory: {r}", f"lab-{r.pk}") for r in page.lab_results]
    return sorted(events, key=lambda e: e.on, reverse=True)


def patient_page(*, patient: Patient, user, book: int | None = None, chart: str = "all") -> PatientPage:
    """Everything the patient page shows that this user may read, in a fixed number of queries;
    with ``book``, the slots offered for that visit of the patient, to staff who book visits;
    ``chart``, the span the recovery chart shows (``recovery_chart``'s ``shown``)."""
    clinical = may(user, Kind.CLINICAL, write=False)
    visits = list(
        patient.visits.select_related("rebooked_as", "slot__session").order_by("-scheduled_for", "-id")
    )
    may_correct = role_of(user) in MAY_CORRECT
    for visit in visits:
        visit.page_actions = visit_actions(visit, may_correct=may_correct)
        visit.assessable = visit_assessable(visit)
    reminders = list(
        Reminder.objects.filter(visit__patient=patient).select_related("visit").order_by("-due_at", "-id")
    )
    contacts = list(patient.contact_attempts.select_related("by", "visit").order_by("-at", "-id"))
    page = PatientPage(
        patient=patient,
        clinical=clinical,
        visits=visits,
        reminders=reminders,
        contacts=contacts,
        may_record_contact=may(user, Kind.CONTACT, write=True),
    )
    to_book = next((visit for visit in visits if visit.pk == book), None)
    if to_book is not None and may(user, Kind.VISIT, write=True):
        page.offers = slot_offers(to_book)
    if clinical:
        page.diagnoses = list(patient.diagnoses.prefetch_related("muscle_rows"))
        page.imaging = list(patient.imaging_studies.prefetch_related("sequence_rows", "vessel_rows"))
        page.treatments = list(
            patient.treatments.select_related(
                "diagnosis", "medication", "botulinum_toxin", "mvd__surgeon", "outcome"
            )
            .prefetch_related("botulinum_toxin__injections", "mvd__complications", "mvd__vessel_rows")
            .order_by("-started_on", "-id")
        )
        for treatment in page.treatments:
            treatment.stoppable = treatment_stoppable(treatment.kind, treatment.status)
        page.assessments = list(
            patient.assessments.prefetch_related(
                Prefetch("adverse_effect_rows"), Prefetch("trigger_rows")
            ).order_by("-assessed_on", "-id")
        )
        page.lab_results = list(patient.lab_results.all())
        page.flags = list(patient.flags.select_related("acknowledged_by").order_by("since", "id"))
        page.chart = recovery_chart(page.assessments, page.treatments, shown=chart)
    page.timeline = _timeline(page)
    return page
