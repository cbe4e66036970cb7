"""The staff dashboard on the admin index: who needs the clinic today, as counts that link to lists.

Each count is the length of a list an admin changelist shows under a filter defined here (the
visit worklists) or under one of the admin's own filters (flag code, reminder status), or of the
call list and the lost-to-follow-up list (``followups.calls.selectors``, whose pages the tiles
open), so a count and the list behind its link cannot disagree. All counts come in seven queries,
whatever the size of the clinic, each through an index (issue 18): one count per visit worklist,
one grouped count of flags, one count of reminders, one count of each call list. Below them,
whether last night's follow-up run finished (``followups.runs.health``, the health check's own
answer): one query, two while it runs. Above them, for those who may read patients' contact data,
the search box of the patient list (``patients.search``), which submits to that list: no query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone

from clinic.roles import Kind, may
from followups.calls.selectors import call_list_patients, lost_to_follow_up_patients
from followups.codes import FlagCode, ReminderStatus, VisitStatus
from followups.models import Reminder, Visit
from followups.predicates import in_follow_up, overdue_as_stored, start_of_day
from followups.runs.health import RunHealth, nightly_run_health
from followups.selectors import flags_to_review
from patients.search import SEARCH_HELP_TEXT

# The worklists of followups.selectors, as filters: "week" is worklist_due(days=7).
WORKLISTS = {
    "today": "Visits today",
    "week": "Due in the next 7 days",
    "overdue": "Overdue",
}
DUE_DAYS = 7


def visit_worklist_filter(worklist: str, today: date) -> Q:
    """The visits of one worklist (``WORKLISTS``), of patients in follow-up."""
    open_visits = Q(status__in=(VisitStatus.PLANNED, VisitStatus.BOOKED)) & in_follow_up()
    if worklist == "today":
        return open_visits & Q(
            scheduled_for__gte=start_of_day(today), scheduled_for__lt=start_of_day(today + timedelta(days=1))
        )
    if worklist == "week":
        return open_visits & Q(
            scheduled_for__gte=start_of_day(today),
            scheduled_for__lt=start_of_day(today + timedelta(days=DUE_DAYS + 1)),
        )
    if worklist == "overdue":
        return overdue_as_stored() & in_follow_up()
    raise ValueError(f"Unknown worklist {worklist!r}")


@dataclass(frozen=True)
class Tile:
    key: str
    label: str
    count: int
    url: str


@dataclass(frozen=True)
class Dashboard:
    visits: list[Tile]
    flags: list[Tile]
    reminders: list[Tile]
    calls: list[Tile]
    # Last night's run, for those who work the lists it keeps up to date.
    nightly: RunHealth | None = None
    # The patient list the search box submits to (``?q=``), for those who may open it.
    patient_search: str | None = None
    search_help_text: str = SEARCH_HELP_TEXT

    @property
    def empty(self) -> bool:
        return not (self.patient_search or self.visits or self.flags or self.reminders or self.calls)


def _url(name: str, **params) -> str:
    return f"{reverse(name)}?{urlencode(params)}"


def dashboard_for(*, user, today: date | None = None) -> Dashboard:
    """The counts this user may see: flags only for those who read the clinical record."""
    today = today or timezone.localdate()
    visits, flags, reminders, calls = [], [], [], []
    patient_search = (
        reverse("admin:patients_patient_changelist") if may(user, Kind.CONTACT, write=False) else None
    )
    if may(user, Kind.VISIT, write=False):
        # One count per list, each through the index its filter names (the day's visits by time,
        # the overdue ones by their stored flags): one aggregate over all three read every visit.
        visits = [
            Tile(
                key,
                label,
                Visit.objects.filter(visit_worklist_filter(key, today)).count(),
                _url("admin:followups_visit_changelist", worklist=key),
            )
            for key, label in WORKLISTS.items()
        ]
        calls = [
            Tile(
                "call_list",
                "Call list",
                call_list_patients(today=today).count(),
                reverse("admin:followups_call_list"),
            ),
            Tile(
                "lost",
                "Lost to follow-up",
                lost_to_follow_up_patients(today=today).count(),
                reverse("admin:followups_lost_list"),
            ),
        ]
    if may(user, Kind.CLINICAL, write=False):
        flagged = dict(
            flags_to_review()
            .values_list("code")
            .annotate(patients=Count("patient", distinct=True))
            .order_by()
        )
        flags = [
            Tile(
                code,
                label,
                flagged.get(code, 0),
                _url("admin:patients_patient_changelist", flag=code, archived__exact=0),
            )
            for code, label in FlagCode.choices
        ]
    if may(user, Kind.REMINDER, write=False):
        failed = Reminder.objects.filter(status=ReminderStatus.FAILED).count()
        reminders = [
            Tile(
                "failed",
                "Failed reminders",
                failed,
                _url("admin:followups_reminder_changelist", status__exact=ReminderStatus.FAILED),
            )
        ]
    # Overdue visits, date-driven flags and rolled series are only as fresh as the last nightly run.
    nightly = nightly_run_health() if visits else None
    return Dashboard(
        visits=visits,
        flags=flags,
        reminders=reminders,
        calls=calls,
        nightly=nightly,
        patient_search=patient_search,
    )
