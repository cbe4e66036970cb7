"""The call list over the API (API.md "Added in v2"; DOMAIN.md section 9): contact attempts, and the
two lists of patients to reach, ``worklists/call-list/`` and ``worklists/lost-to-follow-up/``.

An attempt is recorded through ``contact_attempt_record``, which carries out what its outcome asks
for in the same transaction (a booking, the wrong-number flag, a visit seen elsewhere, the end of
follow-up); a refusal comes back as the service's field messages (a full slot as a 409, as
``visits/{id}/book/`` answers it). Attempts are a record: listed, read and created, never changed.

The lists come from ``followups.calls.selectors`` in the order the selector computes (reachable
first, clinical risk, longest overdue). That order is made of annotations no cursor can carry, so
these two lists are paged by number (``ListOrderPage``) inside the same envelope as every list.
"""

from __future__ import annotations

import re

from django.db.models import F
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.pagination import BasePagination
from rest_framework.response import Response
from rest_framework.utils.urls import remove_query_param, replace_query_param

from clinic.api import (
    ClinicalFieldsHidden,
    OffsetDateTimeFilter,
    ResourceViewSet,
    page_size_asked,
    page_size_parameter,
)
from clinic.api_schema import IDEMPOTENCY_KEY
from clinic.roles import Kind
from followups.api import ClinicDateTime, OffsetDateTime, WorklistViewSet, answers
from followups.calls.selectors import call_list, call_rows, lost_to_follow_up_list
from followups.calls.services import NOTE_MAX_LENGTH, contact_attempt_record
from followups.codes import CallReason, ContactChannel, ContactOutcome, VisitKind, VisitStatus
from followups.models import ContactAttempt, Slot, Visit
from patients.api import RecordRef, StrictInput, public_id
from patients.models import Patient

# --- contact attempts ---------------------------------------------------------------------------


class ContactAttemptOut(serializers.ModelSerializer):
    id = public_id("uuid")
    patient = public_id("patient.uuid")
    visit = serializers.SlugRelatedField(
        slug_field="uuid", read_only=True, allow_null=True, help_text="The visit the attempt was about."
    )
    at = ClinicDateTime(read_only=True, help_text="When the attempt was made.")
    remind_on = serializers.DateField(
        read_only=True, allow_null=True, help_text="call_later: the day to call again (hidden until then)."
    )
    seen_on = serializers.DateField(
        read_only=True, allow_null=True, help_text="already_seen_elsewhere: the day the patient was seen."
    )
    by = serializers.CharField(
        source="by.username",
        read_only=True,
        allow_null=True,
        help_text="Who made the attempt (user name); null for the system's own missed-visit e-mail.",
    )

    class Meta:
        model = ContactAttempt
        fields = (
            "id",
            "patient",
            "visit",
            "at",
            "channel",
            "outcome",
            "remind_on",
            "seen_on",
            "note",
            "by",
            "created_at",
        )
        read_only_fields = fields


class ContactAttemptIn(StrictInput):
    """One attempt to reach a patient, with what its outcome needs (DOMAIN.md section 9)."""

    patient = RecordRef(Patient.objects.all())
    visit = RecordRef(
        Visit.objects.all(),
        required=False,
        allow_null=True,
        help_text="The visit due the attempt was about; required for agreed_to_visit and "
        "already_seen_elsewhere.",
    )
    at = OffsetDateTime(required=False, help_text="When the attempt was made; now when left out. Not ahead.")
    channel = serializers.ChoiceField(choices=ContactChannel.choices)
    outcome = serializers.ChoiceField(
        choices=ContactOutcome.choices,
        help_text="no_answer, left_message: recorded only; call_later: needs remind_on; agreed_to_visit: "
        "books the visit (slot or scheduled_for); wrong_number: raises contact_details_invalid; "
        "already_seen_elsewhere: needs seen_on, completes the visit; declined_follow_up, moved_away, "
        "deceased: end follow-up as patients/{id}/end-follow-up/ does.",
    )
    remind_on = serializers.DateField(
        required=False, allow_null=True, help_text="call_later only: the day to call again, after today."
    )
    seen_on = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="already_seen_elsewhere only: the day the patient was seen elsewhere (not ahead).",
    )
    note = serializers.CharField(max_length=NOTE_MAX_LENGTH, required=False, allow_blank=True)
    slot = RecordRef(
        Slot.objects.select_related("session"),
        required=False,
        allow_null=True,
        help_text="agreed_to_visit: the slot the visit takes (a full slot is a 409).",
    )
    scheduled_for = OffsetDateTime(
        required=False, allow_null=True, help_text="agreed_to_visit: or a free time, without a slot."
    )
    confirm_outside_window = serializers.BooleanField(
        required=False,
        default=False,
        help_text="agreed_to_visit: book a time outside the visit's window (refused without it).",
    )


class ContactAttemptFilter(filters.FilterSet):
    # An attempt never changes: it is "updated" when it is recorded.
    updated_since = OffsetDateTimeFilter(
        field_name="created_at", lookup_expr="gte", label="Recorded at or after this time."
    )
    patient = filters.UUIDFilter(field_name="patient__uuid", label="Only this patient's attempts.")
    visit = filters.UUIDFilter(field_name="visit__uuid", label="Only the attempts about this visit.")
    outcome = filters.ChoiceFilter(choices=ContactOutcome.choices, label="Only this outcome.")
    channel = filters.ChoiceFilter(choices=ContactChannel.choices, label="Only this channel.")

    class Meta:
        model = ContactAttempt
        fields: list[str] = []


@extend_schema_view(
    list=extend_schema(
        description="Contact attempts, newest recorded first.",
        responses=answers({200: ContactAttemptOut(many=True)}, 400, 404),
    ),
    retrieve=extend_schema(responses=answers({200: ContactAttemptOut}, 400, 404)),
    create=extend_schema(
        description="Record an attempt to reach a patient and carry out what its outcome asks for, in one "
        "step: all of it or nothing. A refusal is a 400 with field messages and their `error_codes`; a slot "
        "taken meanwhile is a 409 (`slot_full`). `by` is the caller. Clinicians and the front desk.",
        request=ContactAttemptIn,
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: ContactAttemptOut}, 400, 409, 422),
    ),
)
class ContactAttemptViewSet(ResourceViewSet):
    """Attempts to reach patients who fell out of follow-up: a record, never changed or deleted.

    The same kind as a patient's contact data (``Kind.CONTACT``), like ``end-follow-up/``, which an
    attempt ending follow-up amounts to."""

    kind = Kind.CONTACT
    resource = "contact_attempt"
    routed_actions = ("list", "create", "retrieve")
    # ``updated_at`` for the ETag: an attempt's only version is the one recorded.
    queryset = ContactAttempt.objects.select_related("patient", "visit", "by").annotate(
        updated_at=F("created_at")
    )
    serializer_class = ContactAttemptOut
    input_serializer_class = ContactAttemptIn
    filterset_class = ContactAttemptFilter

    def create_object(self, data):
        return contact_attempt_record(by=self.request.user, **data)


# --- the call list and the lost-to-follow-up list -----------------------------------------------


PAGE_NUMBER = re.compile(r"[0-9]{1,6}")


class ListOrderPage(BasePagination):
    """Pages of a list kept in an order the database computes, numbered from 1: the envelope of
    every list (``next``, ``previous``, ``results``), ``page`` in its links instead of a cursor.

    The lists are worked through while they are read (a call made takes a patient off), so a page
    holds whoever is at its place when it is asked for; a page past the end is empty."""

    page_size = 50
    max_page_size = 500
    max_page = 100_000  # beyond every list there can be: a larger offset is no page of ours
    page_query_param = "page"
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        self.page_size = self._page_size(request)
        self.number = self._number(request)
        start = (self.number - 1) * self.page_size
        # One row more than the page tells whether there is a next page, without counting.
        rows = list(queryset[start : start + self.page_size + 1])
        self.has_next = len(rows) > self.page_size
        return rows[: self.page_size]

    def _page_size(self, request) -> int:
        # As every other list (clinic.api.CursorPage).
        return page_size_asked(
            request, default=self.page_size, most=self.max_page_size, name=self.page_size_query_param
        )

    def _number(self, request) -> int:
        # A page that is no number is a malformed request (400, the parameter named), not a page
        # that is not there: one past the end is an empty page.
        value = request.query_params.get(self.page_query_param, "1")
        if not PAGE_NUMBER.fullmatch(value) or not 1 <= int(value) <= self.max_page:
            raise exceptions.ValidationError(
                {self.page_query_param: [f"Give a page number from 1 to {self.max_page}."]}
            )
        return int(value)

    def get_paginated_response(self, data):
        url = self.request.build_absolute_uri()
        following = replace_query_param(url, self.page_query_param, self.number + 1)
        if self.number == 1:
            previous = None
        elif self.number == 2:
            previous = remove_query_param(url, self.page_query_param)
        else:
            previous = replace_query_param(url, self.page_query_param, self.number - 1)
        return Response({"next": following if self.has_next else None, "previous": previous, "results": data})

    def get_paginated_response_schema(self, schema):
        link = {"type": "string", "nullable": True, "format": "uri"}
        return {
            "type": "object",
            "required": ["results"],
            "properties": {
                "next": {**link, "example": "http://api.example.org/api/v1/worklists/call-list/?page=3"},
                "previous": {**link, "example": "http://api.example.org/api/v1/worklists/call-list/?page=1"},
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.page_query_param,
                "required": False,
                "in": "query",
                "description": "The page, from 1 (this list is paged by number, not by cursor: its order "
                "is computed). Follow `next`; a page past the end is empty.",
                "schema": {"type": "integer", "minimum": 1, "maximum": self.max_page, "default": 1},
            },
            page_size_parameter(
                default=self.page_size, most=self.max_page_size, name=self.page_size_query_param
            ),
        ]


class CallPatientOut(serializers.Serializer):
    """Who to call and how: contact data only, nothing clinical."""

    id = public_id("uuid")
    given_name = serializers.CharField(read_only=True)
    family_name = serializers.CharField(read_only=True)
    phone = serializers.CharField(read_only=True)
    email_reminders = serializers.BooleanField(read_only=True, help_text="The e-mail reminder consent.")


class CallVisitOut(ClinicalFieldsHidden, serializers.Serializer):
    """The visit that put the patient on the list. Its ``purpose`` is shown only to roles that read
    the clinical record: the front desk sees the kind of clinic a visit needs, never why."""

    id = public_id("uuid")
    visit_kind = serializers.ChoiceField(choices=VisitKind.choices, read_only=True)
    status = serializers.ChoiceField(choices=VisitStatus.choices, read_only=True)
    due_on = serializers.DateField(read_only=True, help_text="The day the visit aimed at.")
    window_start = serializers.DateField(read_only=True)
    window_end = serializers.DateField(read_only=True)
    scheduled_for = ClinicDateTime(
        read_only=True, help_text="A missed visit's appointment; a planned visit's target time."
    )
    clinical_fields = ("purpose",)
    # Not read-only, so that the schema leaves it out of ``required``: only some roles get it.
    purpose = serializers.CharField(
        required=False,
        help_text="Clinicians, nurses and integration clients only; never the front desk.",
    )


class LastAttemptOut(serializers.Serializer):
    at = ClinicDateTime(read_only=True)
    channel = serializers.ChoiceField(choices=ContactChannel.choices, read_only=True)
    outcome = serializers.ChoiceField(choices=ContactOutcome.choices, read_only=True)


class CallRowOut(serializers.Serializer):
    patient = CallPatientOut(read_only=True)
    visit = CallVisitOut(read_only=True)
    reason = serializers.ChoiceField(
        choices=CallReason.choices,
        read_only=True,
        help_text="missed: a missed visit not rebooked; window_closed: a planned visit's window closed "
        "unbooked; not_booked: half its window passed unbooked; clinic_cancelled: its session was "
        "cancelled by the clinic.",
    )
    days_overdue = serializers.IntegerField(
        read_only=True, help_text="Days since the visit fell due (0 while its window is open)."
    )
    high_risk = serializers.BooleanField(
        read_only=True,
        help_text="Within 90 days after an MVD, or recurrence_after_mvd, facial_palsy_after_mvd or "
        "consider_mvd_evaluation raised: listed first.",
    )
    unreachable = serializers.BooleanField(
        read_only=True,
        help_text="3 unanswered attempts in 30 days and no answer since: listed last.",
    )
    last_attempt = LastAttemptOut(read_only=True, allow_null=True)


ORDER = (
    "In the list's order: reachable patients before unreachable ones, then high risk first, then "
    "the longest overdue, one row per patient with the visit that is due longest."
)


class CallWorklistViewSet(WorklistViewSet):
    """A list of patients to reach: a selector's patients, one page at a time, as ``call_rows``."""

    kind = Kind.VISIT
    serializer_class = CallRowOut
    pagination_class = ListOrderPage
    extra_query_params = ("page",)

    def query_parameters(self) -> set[str]:
        # Every other list takes a cursor; this one is paged with ``page``.
        return super().query_parameters() - {"cursor"}

    def patients(self, today):
        raise NotImplementedError

    def list(self, request, *args, **kwargs):
        today = timezone.localdate()
        rows = call_rows(self.paginate_queryset(self.patients(today)), today=today)
        self._audit_targets = [(row.visit.uuid, row.patient.uuid) for row in rows]
        return self.get_paginated_response(self.get_serializer(rows, many=True).data)


@extend_schema_view(
    list=extend_schema(
        summary="The call list",
        description="Patients to reach (DOMAIN.md section 9): in follow-up, with a visit overdue, a "
        "planned visit half through its window unbooked, or one sent back by a cancelled session. Those "
        "asked to be called later are hidden until that day. " + ORDER,
        responses=answers({200: CallRowOut(many=True)}, 400, 404),
    )
)
class CallListViewSet(CallWorklistViewSet):
    resource = "worklist_call_list"

    def patients(self, today):
        return call_list(today=today)


DAYS = re.compile(r"[0-9]{1,4}")
DAYS_LOST = (30, 3650)  # the bounds of the LOST_TO_FOLLOW_UP_DAYS setting


@extend_schema_view(
    list=extend_schema(
        summary="Patients lost to follow-up",
        description="In follow-up, a visit overdue, and no visit attended for `days` days (DOMAIN.md "
        "section 9). " + ORDER,
        parameters=[
            OpenApiParameter(
                "days",
                {"type": "integer", "minimum": DAYS_LOST[0], "maximum": DAYS_LOST[1]},
                description="No visit attended for this many days; the clinic's setting "
                "(LOST_TO_FOLLOW_UP_DAYS, 365 unless changed) when left out.",
            ),
        ],
        responses=answers({200: CallRowOut(many=True)}, 400, 404),
    )
)
class LostToFollowUpViewSet(CallWorklistViewSet):
    resource = "worklist_lost_to_follow_up"
    extra_query_params = ("page", "days")

    def patients(self, today):
        days = self.request.query_params.get("days")
        if days is not None:
            if not DAYS.fullmatch(days) or not DAYS_LOST[0] <= int(days) <= DAYS_LOST[1]:
                raise serializers.ValidationError(
                    {"days": [f"Give a whole number of days from {DAYS_LOST[0]} to {DAYS_LOST[1]}."]}
                )
            days = int(days)
        return lost_to_follow_up_list(today=today, days=days)
