"""Follow-up over the API (API.md): visits, assessments, reminders, worklists, outcomes and flags.

As in ``patients.api``, serializers only translate: a visit changes state through the one visit
service its PATCH names, an assessment is recorded, changed or retracted by its services, and a
reminder is cancelled or sent again by the outbox's staff actions. Reads come from querysets (or the
selectors) that fetch a page's relations in a fixed number of queries.
"""

from __future__ import annotations

import re
from datetime import UTC

from django.db.models import Sum
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
)
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import SAFE_METHODS
from rest_framework.response import Response

from clinic.api import (
    ClinicalFieldsHidden,
    CursorPage,
    OffsetDateTimeFilter,
    ResourceFilter,
    ResourceViewSet,
    StrictBooleanFilter,
)
from clinic.api_auth import RolePermission
from clinic.api_rows import row_plan
from clinic.api_schema import ERRORS, IDEMPOTENCY_KEY, IF_MATCH
from clinic.roles import Kind, Role, role_of
from followups import booking, codes, reminders, selectors, services, sessions
from followups.calls.follow_up_end import MAY_RESUME, follow_up_end, follow_up_resume
from followups.fhir import clinic_time
from followups.flags_store import flag_acknowledge
from followups.models import (
    HFS7_ITEMS,
    Assessment,
    ClinicSession,
    LabResult,
    PatientFlag,
    Reminder,
    SessionTemplate,
    Slot,
    TreatmentOutcome,
    Visit,
)
from followups.visit_moves import CORRECTION_REASON_MAX_LENGTH, visit_move
from patients.api import CodeList, PatientOut, RecordRef, StrictInput, public_id
from patients.codes import FollowUpEndReason, TreatmentKind
from patients.models import Patient, Treatment

# --- what the schema says about errors ----------------------------------------------------------


def answers(ok: dict, *error_codes: int) -> dict:
    """Responses of an operation: its success, the errors every call may get, and ``error_codes``.

    Every call may get a 400: any operation refuses a query parameter it does not read, or one given
    empty or twice (``clinic.api.query_refusals``), so a schema-driven client must expect it."""
    return {**ok, **{code: ERRORS[code] for code in sorted({400, 401, 403, 429, *error_codes})}}


# --- shared fields ------------------------------------------------------------------------------


class OffsetDateTime(serializers.DateTimeField):
    """A date-time with its UTC offset (API.md): a naive one is refused, never read as clinic time."""

    default_error_messages = {"naive": "Give a date and time with its UTC offset."}

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


CLOCK_TIME = r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9])?"


@extend_schema_field({"type": "string", "pattern": f"^{CLOCK_TIME}$", "example": "13:30"})
class ClinicClock(serializers.TimeField):
    """A time of day on the clinic's clock, ``13:30`` or ``13:30:00`` (answered so). No offset: a
    session keeps its hours whatever the clinic's UTC offset on its day, and Django would drop one
    silently (``13:30+05:00`` read as 13:30)."""

    default_error_messages = {"clock": "Give a time of day as HH:MM, clinic time, without an offset."}

    def to_internal_value(self, value):
        if not isinstance(value, str) or not re.fullmatch(CLOCK_TIME, value):
            self.fail("clock")
        return super().to_internal_value(value)


class ClinicDateTime(serializers.DateTimeField):
    """A stored date-time as the API answers it: in the clinic's zone, with an offset RFC 3339 allows."""

    def enforce_timezone(self, value):
        return clinic_time(super().enforce_timezone(value))


class PatientBrief(serializers.ModelSerializer):
    """Who a worklist row is about: enough to find the patient, nothing clinical."""

    id = public_id("uuid")

    class Meta:
        model = Patient
        fields = ("id", "mrn", "given_name", "family_name")
        read_only_fields = fields


def _same_patient(instance, data) -> None:
    patient = data.pop("patient", None)
    if patient is not None and patient.pk != instance.patient_id:
        raise serializers.ValidationError({"patient": ["A record stays with its patient."]})


def _uuid_ref(**kwargs):
    return serializers.SlugRelatedField(slug_field="uuid", read_only=True, **kwargs)


# --- visits -------------------------------------------------------------------------------------


class VisitOut(ClinicalFieldsHidden, serializers.ModelSerializer):
    """A visit. Its ``purpose`` and ``treatment`` name the clinical record: only roles that read it
    get them; the front desk sees the kind of clinic the visit needs (``visit_kind``), never why."""

    clinical_fields = ("purpose", "treatment")
    id = public_id("uuid")
    patient = public_id("patient.uuid")
    # Not read-only, so that the schema leaves them out of ``required``: only some roles get them.
    purpose = serializers.CharField(
        required=False, help_text="Clinicians, nurses and integration clients only; never the front desk."
    )
    treatment = serializers.UUIDField(
        source="treatment.uuid",
        required=False,
        allow_null=True,
        help_text="The treatment the visit follows. Clinicians, nurses and integration clients only.",
    )
    rebooked_from = _uuid_ref(allow_null=True, help_text="The missed visit this one replaces.")
    rebooked_as = _uuid_ref(allow_null=True, help_text="The visit booked for this one, once missed.")
    slot = _uuid_ref(allow_null=True, help_text="The clinic session's slot a booked visit holds.")
    scheduled_for = ClinicDateTime(read_only=True)
    due_on = serializers.DateField(
        read_only=True,
        help_text="The day the visit aims at. A planned visit's scheduled_for is never an appointment: "
        "only a booked visit's is.",
    )
    clinic_cancelled_at = ClinicDateTime(
        read_only=True,
        allow_null=True,
        help_text="When the clinic cancelled the session this visit was booked in; "
        "cleared once it is booked again.",
    )

    class Meta:
        model = Visit
        fields = (
            "id",
            "patient",
            "treatment",
            "purpose",
            "visit_kind",
            "slot",
            "scheduled_for",
            "due_on",
            "window_start",
            "window_end",
            "status",
            "source",
            "cancel_reason",
            "sequence",
            "rebooked_from",
            "rebooked_as",
            "clinic_cancelled_at",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class SlotOut(serializers.ModelSerializer):
    """A slot of a clinic session (DOMAIN.md section 12): a time that takes up to ``capacity`` visits."""

    id = public_id("uuid")
    session = public_id("session.uuid")
    label = serializers.CharField(source="session.label", read_only=True, help_text="The session's label.")
    starts_at = ClinicDateTime(read_only=True)
    capacity = serializers.IntegerField(read_only=True, help_text="Visits the slot takes.")
    booked = serializers.IntegerField(read_only=True, help_text="Visits booked into it.")
    free = serializers.IntegerField(read_only=True, help_text="Places left: capacity - booked.")

    class Meta:
        model = Slot
        fields = ("id", "session", "label", "starts_at", "capacity", "booked", "free")
        read_only_fields = fields


class SlotSuggestionOut(SlotOut):
    """A free slot a visit may take, as ``visits/{id}/slot-suggestions/`` lists them."""

    inside_window = serializers.BooleanField(
        read_only=True,
        help_text="False for the nearest slots after the window, offered when none is free inside.",
    )

    class Meta(SlotOut.Meta):
        fields = (*SlotOut.Meta.fields, "inside_window")
        read_only_fields = fields


class VisitIn(StrictInput):
    """A visit staff arrange by hand (source ``manual``)."""

    patient = RecordRef(Patient.objects.all())
    treatment = RecordRef(Treatment.objects.all(), required=False, allow_null=True)
    purpose = serializers.CharField(max_length=200)
    visit_kind = serializers.ChoiceField(
        choices=codes.VisitKind.choices, required=False, help_text="The clinic it needs. Default: review."
    )
    scheduled_for = OffsetDateTime()
    window_start = serializers.DateField(required=False, allow_null=True, help_text="Default: its day.")
    window_end = serializers.DateField(required=False, allow_null=True, help_text="Default: its day.")
    status = serializers.ChoiceField(
        choices=[codes.VisitStatus.PLANNED, codes.VisitStatus.BOOKED],
        required=False,
        help_text="Default: booked.",
    )


class VisitChangeIn(StrictInput):
    """A change of state through ``visit_move`` (see the PATCH operation)."""

    status = serializers.ChoiceField(choices=codes.VisitStatus.choices, required=False)
    scheduled_for = OffsetDateTime(required=False)
    confirm_outside_window = serializers.BooleanField(required=False, default=False)
    cancel_reason = serializers.CharField(max_length=200, required=False, allow_blank=True)
    reason = serializers.CharField(
        max_length=CORRECTION_REASON_MAX_LENGTH,
        required=False,
        allow_blank=True,
        help_text="Why a completed or missed visit is corrected (with status booked).",
    )

    def validate(self, attrs):
        new_status = attrs.get("status")
        if not set(attrs) - {"confirm_outside_window"}:
            raise serializers.ValidationError(
                "Give the new status, or a new scheduled_for to book or reschedule the visit."
            )
        if "reason" in attrs and new_status != codes.VisitStatus.BOOKED:
            raise serializers.ValidationError(
                {
                    "reason": [
                        "A reason here corrects a completed or missed visit: give it with status booked "
                        "(a cancellation's reason is cancel_reason)."
                    ]
                }
            )
        if "cancel_reason" in attrs and new_status != codes.VisitStatus.CANCELLED:
            raise serializers.ValidationError(
                {"cancel_reason": ["A reason is given only with status cancelled."]}
            )
        if "scheduled_for" in attrs and new_status not in (None, codes.VisitStatus.BOOKED):
            raise serializers.ValidationError(
                {"scheduled_for": ["A new time books the visit: give it alone or with status booked."]}
            )
        return attrs


class VisitBookIn(StrictInput):
    slot = RecordRef(
        Slot.objects.select_related("session"),
        required=False,
        help_text="A slot of a clinic session (`visits/{id}/slot-suggestions/` lists them): the visit "
        "takes its time. A full slot is a 409.",
    )
    scheduled_for = OffsetDateTime(
        required=False, help_text="Or a free time outside any session (staff only), without a slot."
    )
    confirm_outside_window = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Book a time outside the visit's window (refused without it, with code outside_window).",
    )

    def validate(self, attrs):
        if ("slot" in attrs) == ("scheduled_for" in attrs):
            raise serializers.ValidationError("Give a slot or a scheduled_for, one of the two.")
        return attrs


class VisitCancelIn(StrictInput):
    reason = serializers.CharField(max_length=200, help_text="Why the visit is cancelled.")


class VisitCorrectIn(StrictInput):
    status = serializers.ChoiceField(
        choices=[codes.VisitStatus.BOOKED],
        help_text="The state the visit is corrected to: a completed or missed visit back to booked.",
    )
    reason = serializers.CharField(
        max_length=CORRECTION_REASON_MAX_LENGTH, help_text="Why: kept in the visit's history."
    )


class NoInput(StrictInput):
    """A move that asks nothing more."""


class VisitRebookIn(StrictInput):
    scheduled_for = OffsetDateTime()


class VisitFilter(ResourceFilter):
    patient = filters.UUIDFilter(field_name="patient__uuid")
    scheduled_from = OffsetDateTimeFilter(
        field_name="scheduled_for", lookup_expr="gte", label="Scheduled at or after this time."
    )
    scheduled_to = OffsetDateTimeFilter(
        field_name="scheduled_for", lookup_expr="lt", label="Scheduled before this time (exclusive)."
    )

    class Meta:
        model = Visit
        fields = ["patient", "status"]


VISIT_PATCH = """Change the visit's state through `visit_move`, as the move endpoints do:

- `{"status": "booked", "scheduled_for": T}` or `{"scheduled_for": T}`: book a planned visit at T, or
  reschedule a booked one (`status: booked` alone books it at its planned time); a time outside the
  window needs `"confirm_outside_window": true`;
- `{"status": "booked", "reason": "..."}` on a completed or missed visit: a correction (clinician or
  nurse);
- `{"status": "planned"}`: give up the booking;
- `{"status": "completed"}` (from the visit's day on), `{"status": "missed"}` (once it has passed);
- `{"status": "cancelled", "cancel_reason": "..."}` (the reason is required).

A refused move is a 400 with the reason on `status` (or on the field at fault) and its code under
`error_codes`. A missed visit is rebooked with `POST visits/{id}/rebook/`."""

# The move endpoints: each one state of DOMAIN.md section 2, with what it asks for.
VISIT_MOVES = {
    "book": (codes.VisitStatus.BOOKED, VisitBookIn),
    "unbook": (codes.VisitStatus.PLANNED, NoInput),
    "complete": (codes.VisitStatus.COMPLETED, NoInput),
    "missed": (codes.VisitStatus.MISSED, NoInput),
    "cancel": (codes.VisitStatus.CANCELLED, VisitCancelIn),
    "correct": (codes.VisitStatus.BOOKED, VisitCorrectIn),
}


def _visit_move_view(name: str, description: str):
    to, input_class = VISIT_MOVES[name]

    def move(self, request, *args, **kwargs):
        return self._update(request, partial=False)

    # DRF names an extra action after its function, so the function carries the move's name.
    move.__name__ = move.__qualname__ = name
    schema = extend_schema(
        description=description,
        request=None if input_class is NoInput else input_class,
        parameters=[IF_MATCH],
        responses=answers({200: VisitOut}, 400, 404, *((409,) if name == "book" else ()), 412),
    )
    return schema(action(detail=True, methods=["post"])(move))


@extend_schema_view(
    list=extend_schema(responses=answers({200: VisitOut(many=True)}, 400, 404)),
    retrieve=extend_schema(responses=answers({200: VisitOut}, 404)),
    create=extend_schema(
        description="A visit arranged by hand; planning never changes it.",
        request=VisitIn,
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: VisitOut}, 400, 422),
    ),
    partial_update=extend_schema(
        description=VISIT_PATCH,
        request=VisitChangeIn,
        parameters=[IF_MATCH],
        responses=answers({200: VisitOut}, 400, 404, 412),
    ),
)
class VisitViewSet(ResourceViewSet):
    """Visits, planned by protocol or arranged by hand; never deleted (cancelled, with a reason)."""

    kind = Kind.VISIT
    resource = "visit"
    routed_actions = ("list", "create", "retrieve", "partial_update")
    queryset = Visit.objects.select_related("patient", "treatment", "rebooked_from", "rebooked_as")
    serializer_class = VisitOut
    filterset_class = VisitFilter

    @property
    def input_serializer_class(self):
        if self.action in VISIT_MOVES:
            return VISIT_MOVES[self.action][1]
        return {"partial_update": VisitChangeIn, "rebook": VisitRebookIn}.get(self.action, VisitIn)

    def create_object(self, data):
        if self.action == "rebook":
            return services.visit_rebook(visit=self.missed_visit, **data)
        return services.visit_create(**data)

    def update_object(self, visit, data):
        if self.action == "partial_update":
            move = {**data}
            to = move.pop("status", codes.VisitStatus.BOOKED)
            cancel_reason = move.pop("cancel_reason", None)
            if to == codes.VisitStatus.CANCELLED:
                move["reason"] = cancel_reason or ""
        else:
            to, move = VISIT_MOVES[self.action][0], {**data}
            move.pop("status", None)
            if to == codes.VisitStatus.BOOKED:
                move["correction"] = self.action == "correct"
        return visit_move(visit=visit, to=to, by=self.request.user, **move)

    book = _visit_move_view(
        "book",
        "Book a planned visit at `scheduled_for`, or reschedule a booked one. Inside the visit's window, "
        "or outside it with `confirm_outside_window`; a protocol visit never before its treatment.",
    )
    unbook = _visit_move_view(
        "unbook", "Give up the booking: the visit is planned again, due within its window."
    )
    complete = _visit_move_view(
        "complete", "The visit took place: from its day on (a booking's day, a planned visit's window start)."
    )
    missed = _visit_move_view(
        "missed", "The patient did not come: a booked visit after its time, a planned one after its window."
    )
    cancel = _visit_move_view(
        "cancel", "Cancel a planned or booked visit, with a reason. It stays cancelled."
    )
    correct = _visit_move_view(
        "correct",
        "Undo a wrong completed or missed: back to booked at its time, with a reason kept in the history. "
        "Clinicians and nurses only; not a visit with measurements recorded at it, nor a rebooked one.",
    )

    @extend_schema(
        description="The free slots this visit may take: of sessions serving its kind, inside its window, "
        "earliest first; when none is free inside, the nearest after it (`inside_window` false). Book one "
        "with `POST visits/{id}/book/` `{slot}`.",
        filters=False,
        responses=answers({200: SlotSuggestionOut(many=True)}, 400, 404),
    )
    @action(detail=True, methods=["get"], url_path="slot-suggestions", pagination_class=None)
    def slot_suggestions(self, request, *args, **kwargs):
        visit = self.get_object()
        self._audit([visit])
        slots = []
        for suggestion in booking.slot_suggestions(visit=visit):
            suggestion.slot.inside_window = suggestion.inside_window
            slots.append(suggestion.slot)
        return Response(SlotSuggestionOut(slots, many=True).data)

    @extend_schema(
        description="Book a new visit for a missed one; the missed visit stays on the record and "
        "points to the new one (`rebooked_as`).",
        request=VisitRebookIn,
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: VisitOut}, 400, 404, 422),
    )
    @action(detail=True, methods=["post"])
    def rebook(self, request, *args, **kwargs):
        self.missed_visit = self.get_object()
        return self.create(request)


# --- assessments --------------------------------------------------------------------------------

ASSESSMENT_MEASURES = services.ASSESSMENT_MEASURES
# What a PUT that leaves a field out means: the field is cleared.
ASSESSMENT_EMPTY = {
    "visit": None,
    **dict.fromkeys(ASSESSMENT_MEASURES),
    "contraction_pattern": "",
    "jankovic_anchors": "",
    "hfs7_items": None,
    "triggers": [],
    "adverse_effects": [],
    "notes": "",
}


class Hfs7Items(serializers.ListField):
    """The seven HFS-7 answers (0-4) as one list, stored as ``hfs7_item_1..7``: all seven, or null."""

    def __init__(self, **kwargs):
        super().__init__(
            child=serializers.IntegerField(min_value=0, max_value=4),
            min_length=7,
            max_length=7,
            allow_null=True,
            **kwargs,
        )

    def get_attribute(self, instance):
        return instance

    def to_representation(self, assessment):
        answers = [getattr(assessment, item) for item in HFS7_ITEMS]
        return None if all(answer is None for answer in answers) else answers


def _hfs7_items_unpacked(data: dict) -> dict:
    if "hfs7_items" in data:
        answers = data.pop("hfs7_items") or [None] * len(HFS7_ITEMS)
        data.update(zip(HFS7_ITEMS, answers, strict=True))
    return data


class AssessmentOut(serializers.ModelSerializer):
    id = public_id("uuid")
    patient = public_id("patient.uuid")
    visit = _uuid_ref(allow_null=True)
    # Stored blank when not recorded: declared here, as read_only_fields would drop allow_blank and the
    # schema would then refuse the "" the row answers.
    contraction_pattern = serializers.ChoiceField(
        choices=codes.ContractionPattern.choices, allow_blank=True, read_only=True
    )
    jankovic_anchors = serializers.ChoiceField(
        choices=codes.JankovicAnchors.choices, allow_blank=True, read_only=True
    )
    jankovic_total = serializers.IntegerField(read_only=True, allow_null=True)
    hfs7_items = Hfs7Items(read_only=True)
    hfs7_total = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The sum of the seven answers (0-28)."
    )
    triggers = CodeList(codes.Trigger.choices, "trigger_rows", "trigger", read_only=True)
    adverse_effects = CodeList(
        codes.AdverseEffect.choices, "adverse_effect_rows", "adverse_effect", read_only=True
    )

    class Meta:
        model = Assessment
        fields = (
            "id",
            "patient",
            "visit",
            "assessed_on",
            "status",
            *ASSESSMENT_MEASURES,
            "jankovic_total",
            "hfs7_items",
            "hfs7_total",
            "triggers",
            "adverse_effects",
            "notes",
            "source",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class AssessmentIn(StrictInput, serializers.ModelSerializer):
    patient = RecordRef(Patient.objects.all())
    visit = RecordRef(Visit.objects.all(), required=False, allow_null=True)
    hfs7_items = Hfs7Items(required=False)
    triggers = serializers.ListField(
        child=serializers.ChoiceField(choices=codes.Trigger.choices), required=False
    )
    adverse_effects = serializers.ListField(
        child=serializers.ChoiceField(choices=codes.AdverseEffect.choices), required=False
    )

    class Meta:
        model = Assessment
        fields = (
            "patient",
            "visit",
            "assessed_on",
            "status",
            *ASSESSMENT_MEASURES,
            "hfs7_items",
            "triggers",
            "adverse_effects",
            "notes",
        )
        extra_kwargs = {
            "spasms_per_day": {"min_value": 0},
            "episode_duration_seconds": {"min_value": 0},
            **{
                name: {"min_value": low, "max_value": high}
                for name, (low, high) in services.ASSESSMENT_RANGES.items()
                if name not in HFS7_ITEMS
            },
        }


class AssessmentFilter(ResourceFilter):
    patient = filters.UUIDFilter(field_name="patient__uuid")
    visit = filters.UUIDFilter(field_name="visit__uuid")

    class Meta:
        model = Assessment
        fields = ["patient", "visit", "status"]


@extend_schema_view(
    list=extend_schema(responses=answers({200: AssessmentOut(many=True)}, 400, 404)),
    retrieve=extend_schema(responses=answers({200: AssessmentOut}, 404)),
    create=extend_schema(
        request=AssessmentIn, parameters=[IDEMPOTENCY_KEY], responses=answers({201: AssessmentOut}, 400, 422)
    ),
    update=extend_schema(
        description="Replace the assessment: a measure left out is cleared.",
        request=AssessmentIn,
        parameters=[IF_MATCH],
        responses=answers({200: AssessmentOut}, 400, 404, 412),
    ),
    partial_update=extend_schema(
        description='Change some measures; `{"status": "entered_in_error"}` alone retracts the '
        "assessment, which then changes no more.",
        request=AssessmentIn,
        parameters=[IF_MATCH],
        responses=answers({200: AssessmentOut}, 400, 404, 412),
    ),
)
class AssessmentViewSet(ResourceViewSet):
    """What was measured at a visit; retracted with PATCH ``{"status": "entered_in_error"}``."""

    kind = Kind.ASSESSMENT
    resource = "assessment"
    routed_actions = ("list", "create", "retrieve", "update", "partial_update")
    queryset = Assessment.objects.select_related("patient", "visit").prefetch_related(
        "trigger_rows", "adverse_effect_rows"
    )
    serializer_class = AssessmentOut
    input_serializer_class = AssessmentIn
    filterset_class = AssessmentFilter

    def create_object(self, data):
        if data.pop("status", codes.AssessmentStatus.FINAL) != codes.AssessmentStatus.FINAL:
            raise serializers.ValidationError(
                {"status": ["A new assessment is final; retract it afterwards if it was entered in error."]}
            )
        return services.assessment_record(
            source=services.source_of(self.request.user), **_hfs7_items_unpacked(data)
        )

    def update_object(self, assessment, data):
        _same_patient(assessment, data)
        if data.pop("status", None) == codes.AssessmentStatus.ENTERED_IN_ERROR:
            if self.action == "update" or data:
                raise serializers.ValidationError(
                    {"status": ["Retract with PATCH and the status alone; change nothing else with it."]}
                )
            return services.assessment_retract(assessment=assessment)
        if self.action == "update":
            data = {**ASSESSMENT_EMPTY, **data}
        return services.assessment_update(assessment=assessment, **_hfs7_items_unpacked(data))


# --- laboratory results -------------------------------------------------------------------------

# The unit each test's ``value`` is in (a blood count is recorded as done, without a value).
LAB_UNITS = {codes.LabTest.SODIUM: "mmol/L"}


@extend_schema_field({"type": "string", "nullable": True, "example": "mmol/L"})
class LabUnit(serializers.Field):
    """The unit of a result's ``value``, from its test: null for a test recorded without a value."""

    def __init__(self, **kwargs):
        super().__init__(read_only=True, **kwargs)

    def get_attribute(self, instance):
        return instance

    def to_representation(self, result):
        return LAB_UNITS.get(result.test)


class LabResultOut(serializers.ModelSerializer):
    id = public_id("uuid")
    patient = public_id("patient.uuid")
    unit = LabUnit(help_text="The unit of `value` (sodium: mmol/L); null for a blood count.")

    class Meta:
        model = LabResult
        fields = (
            "id",
            "patient",
            "test",
            "taken_on",
            "value",
            "unit",
            "abnormal",
            "status",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class LabResultIn(StrictInput, serializers.ModelSerializer):
    """A result as the lab sends it, naming the patient by the id it has from the order."""

    patient = RecordRef(Patient.objects.all())

    class Meta:
        model = LabResult
        fields = ("patient", "test", "taken_on", "value", "abnormal", "status")
        extra_kwargs = {
            "value": {
                "min_value": services.LAB_VALUE_RANGE[0],
                "max_value": services.LAB_VALUE_RANGE[1],
                "help_text": "Sodium: mmol/L, required. A blood count: left out (say `abnormal`).",
            },
            "status": {"help_text": "A new result is final; retract it later with PATCH."},
        }


LAB_RESULT_UNCHANGEABLE = (
    "A result is not changed: retract it (status entered_in_error) and record the right one."
)


class LabResultChangeIn(StrictInput):
    """What a PATCH may do to a result: retract it. Anything else is recorded anew."""

    status = serializers.ChoiceField(choices=codes.AssessmentStatus.choices, required=False)

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unchangeable = sorted(set(data) & set(LabResultIn.Meta.fields) - {"status"})
            if unchangeable:
                raise serializers.ValidationError({name: [LAB_RESULT_UNCHANGEABLE] for name in unchangeable})
        return super().to_internal_value(data)


class LabResultFilter(ResourceFilter):
    patient = filters.UUIDFilter(field_name="patient__uuid")

    class Meta:
        model = LabResult
        fields = ["patient", "test", "status"]


@extend_schema_view(
    list=extend_schema(
        summary="List lab results",
        responses=answers({200: LabResultOut(many=True)}, 400, 404),
    ),
    retrieve=extend_schema(summary="Read a lab result", responses=answers({200: LabResultOut}, 404)),
    create=extend_schema(
        summary="Record a lab result",
        description="Record a result for the patient named by `patient` (the id the lab has from the "
        "order). The patient's flags are recomputed in the same transaction: a sodium result for an "
        "oxcarbazepine course, or a blood count for a carbamazepine one, clears `lab_monitoring_due`.",
        request=LabResultIn,
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: LabResultOut}, 400, 422),
    ),
    partial_update=extend_schema(
        summary="Retract a lab result",
        description='`{"status": "entered_in_error"}` retracts the result (the flags are recomputed '
        "without it); a result is otherwise never changed: record the right one.",
        request=LabResultChangeIn,
        parameters=[IF_MATCH],
        responses=answers({200: LabResultOut}, 400, 404, 412),
    ),
)
class LabResultViewSet(ResourceViewSet):
    """Laboratory results (API.md v2), written by the lab system (the ``lab`` role), clinicians and
    nurses; retracted with PATCH ``{"status": "entered_in_error"}``, never edited nor deleted."""

    kind = Kind.LAB_RESULT
    resource = "lab_result"
    routed_actions = ("list", "create", "retrieve", "partial_update")
    queryset = LabResult.objects.select_related("patient")
    serializer_class = LabResultOut
    filterset_class = LabResultFilter

    @property
    def input_serializer_class(self):
        return LabResultChangeIn if self.action == "partial_update" else LabResultIn

    def create_object(self, data):
        if data.pop("status", codes.AssessmentStatus.FINAL) != codes.AssessmentStatus.FINAL:
            raise serializers.ValidationError(
                {"status": ["A new result is final; retract it afterwards if it was entered in error."]}
            )
        return services.lab_result_record(**data)

    def update_object(self, result, data):
        wanted = data.get("status", result.status)
        if wanted == codes.AssessmentStatus.ENTERED_IN_ERROR:
            return services.lab_result_retract(result=result)
        if wanted != result.status:
            raise serializers.ValidationError(
                {"status": ["A retracted result stays retracted; record a new one."]}
            )
        return result


# --- outcomes and flags of one patient ----------------------------------------------------------


class AssessmentBrief(serializers.ModelSerializer):
    id = public_id("uuid")

    class Meta:
        model = Assessment
        fields = ("id", "assessed_on")
        read_only_fields = fields


class BlankAsNullChoice(serializers.ChoiceField):
    """A code stored blank where its scale does not apply, answered as null."""

    def to_representation(self, value):
        return super().to_representation(value) or None


class OutcomeOut(serializers.ModelSerializer):
    treatment = public_id("treatment.uuid")
    treatment_kind = serializers.ChoiceField(
        source="treatment.kind", choices=TreatmentKind.choices, read_only=True
    )
    baseline = AssessmentBrief(read_only=True, allow_null=True)
    current = AssessmentBrief(read_only=True, allow_null=True)
    # Stored blank for a treatment that is not an MVD: the scale does not apply, so null.
    soriano_baron = BlankAsNullChoice(choices=codes.SorianoBaron.choices, read_only=True, allow_null=True)
    spasms_per_day_change_pct = serializers.DecimalField(
        max_digits=12,
        decimal_places=1,
        read_only=True,
        allow_null=True,
        help_text="(baseline - current) / baseline x 100: positive is fewer spasms; null when either is "
        "missing or the baseline is 0.",
    )
    duration_change_pct = serializers.DecimalField(
        max_digits=12,
        decimal_places=1,
        read_only=True,
        allow_null=True,
        help_text="The same for the duration of an episode: positive is shorter.",
    )
    grade_change = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="Baseline minus current Cohen-Albert grade: positive is better.",
    )
    benefit_days = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="A toxin session's benefit: days from the injection until its effect wore off "
        "(null until `wore_off_on` is known; null for other kinds).",
    )

    class Meta:
        model = TreatmentOutcome
        fields = (
            "treatment",
            "treatment_kind",
            "category",
            "baseline",
            "current",
            "spasms_per_day_change_pct",
            "duration_change_pct",
            "grade_change",
            "soriano_baron",
            "days_to_spasm_free",
            "qol_meaningful_improvement",
            "benefit_days",
            "rule_version",
            "computed_at",
        )
        read_only_fields = fields


class FlagOut(serializers.ModelSerializer):
    id = public_id("uuid")
    since = serializers.DateField(read_only=True, help_text="The date of the fact that raised the flag.")
    acknowledged_by = serializers.CharField(
        source="acknowledged_by.get_username",
        read_only=True,
        allow_null=True,
        default=None,
        help_text="The clinician who acknowledged it (user name); null while unacknowledged.",
    )

    class Meta:
        model = PatientFlag
        fields = ("id", "code", "detail", "since", "acknowledged_by", "acknowledged_at", "note")
        read_only_fields = fields


class FlagAcknowledgeIn(StrictInput):
    note = serializers.CharField(max_length=500, help_text="What was decided about the flag.")


class FlagViewSet(ResourceViewSet):
    """A flag of one patient, acknowledged by a clinician (DOMAIN.md 8 v2). Flags are derived: they
    are read through ``patients/{id}/flags/`` and the flagged worklist, never written otherwise."""

    kind = Kind.CLINICAL
    resource = "flag"
    routed_actions = ()
    queryset = PatientFlag.objects.select_related("patient", "acknowledged_by")
    serializer_class = FlagOut

    @extend_schema(
        description="Acknowledge the flag with a note: it stays on the patient's flags, marked by whom "
        "and when, and leaves the flagged worklist until the fact behind it changes (a new `since`). "
        "Clinicians only; acknowledging again replaces the note.",
        request=FlagAcknowledgeIn,
        responses=answers({200: FlagOut}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, *args, **kwargs):
        flag = self.get_object()
        data = FlagAcknowledgeIn(data=request.data)
        data.is_valid(raise_exception=True)
        flag = flag_acknowledge(flag=flag, by=request.user, note=data.validated_data["note"])
        self._audit([flag])
        return Response(self.get_serializer(self.get_queryset().get(pk=flag.pk)).data)


class FollowUpEndIn(StrictInput):
    reason = serializers.ChoiceField(choices=FollowUpEndReason.choices, help_text="Why follow-up ends.")
    on = serializers.DateField(required=False, help_text="The day it ended (not ahead); today when left out.")


class PatientFollowUpView(ResourceViewSet):
    """Ending and resuming one patient's follow-up (DOMAIN.md section 9), mounted at
    ``patients/<uuid:id>/end-follow-up/`` and ``patients/<uuid:id>/resume-follow-up/``. Whoever
    writes contact data ends it (the front desk hears of a move or a death first); a clinician
    resumes it."""

    kind = Kind.CONTACT
    resource = "patient"
    serializer_class = PatientOut
    pagination_class = None
    filter_backends = []
    patient_lookup = "uuid"

    def _answer(self, patient):
        self._audit([patient])
        return Response(PatientOut(patient, context=self.get_serializer_context()).data)

    @extend_schema(
        summary="End the patient's follow-up",
        description="Cancels every planned and booked visit ahead with its reminders, takes the patient "
        "off every worklist and keeps the whole record; `deceased` also withdraws e-mail consent. "
        "A second end is a 400 (`already_ended`).",
        request=FollowUpEndIn,
        responses=answers({200: PatientOut}, 400, 404),
    )
    def end(self, request, *args, **kwargs):
        patient = get_object_or_404(Patient, uuid=kwargs["id"])
        data = FollowUpEndIn(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(follow_up_end(patient=patient, by=request.user, **data.validated_data))

    @extend_schema(
        summary="Resume the patient's follow-up",
        description="Clinicians only: the protocols plan the patient's visits again as of today.",
        request=None,
        responses=answers({200: PatientOut}, 400, 404),
    )
    def resume(self, request, *args, **kwargs):
        if role_of(request.user) not in MAY_RESUME:
            raise exceptions.PermissionDenied("Only a clinician resumes a patient's follow-up.")
        patient = get_object_or_404(Patient, uuid=kwargs["id"])
        return self._answer(follow_up_resume(patient=patient, by=request.user))


class PatientSnapshotView(ResourceViewSet):
    """Derived rows of one patient, answered whole: a short list, not a page (no cursor).

    Mounted at ``patients/<uuid:id>/...``; an unknown patient is a 404. The audit names the patient.
    """

    kind = Kind.CLINICAL
    pagination_class = None
    filter_backends = []
    patient_lookup = "uuid"

    def rows_of(self, patient):
        raise NotImplementedError

    def retrieve(self, request, *args, **kwargs):
        patient = get_object_or_404(Patient, uuid=kwargs["id"])
        self._audit([patient])
        rows = self.rows_of(patient)
        plan = row_plan(self.get_serializer_class())
        if plan is not None:  # a flat output: from .values() rows (clinic.api_rows), the same JSON
            return Response(plan.represent(rows.values(*plan.lookups)))
        return Response(self.get_serializer(rows, many=True).data)


@extend_schema_view(
    retrieve=extend_schema(
        summary="The outcome of each of the patient's treatments",
        description="One entry per treatment (retracted ones have none), oldest treatment first; the "
        "whole list, not paginated. Recomputed with every change of the patient's record.",
        responses=answers({200: OutcomeOut(many=True)}, 400, 404),
    )
)
class PatientOutcomesView(PatientSnapshotView):
    resource = "patient_outcomes"
    serializer_class = OutcomeOut

    def rows_of(self, patient):
        return selectors.outcomes_for_patient(patient=patient)


@extend_schema_view(
    retrieve=extend_schema(
        summary="The flags the patient carries",
        description="The safety warnings and clinical-attention flags that hold today (DOMAIN.md sections "
        "4 and 8); `since` is the date of the fact that raised each, and an acknowledged flag says by "
        "whom and when. The whole list, not paginated.",
        responses=answers({200: FlagOut(many=True)}, 400, 404),
    )
)
class PatientFlagsView(PatientSnapshotView):
    resource = "patient_flags"
    serializer_class = FlagOut

    def rows_of(self, patient):
        return patient.flags.select_related("acknowledged_by").order_by("code", "since", "id")


# --- reminders ----------------------------------------------------------------------------------


class ReminderOut(serializers.ModelSerializer):
    id = public_id("uuid")
    visit = public_id("visit.uuid")
    patient = public_id("visit.patient.uuid")
    scheduled_for = serializers.DateTimeField(
        source="due_at", read_only=True, help_text="When the reminder is (or was) due to be sent."
    )
    visit_time = serializers.DateTimeField(
        read_only=True, help_text="The appointment time the reminder was planned for."
    )

    class Meta:
        model = Reminder
        fields = (
            "id",
            "visit",
            "patient",
            "kind",
            "scheduled_for",
            "visit_time",
            "status",
            "status_reason",
            "attempts",
            "sent_at",
            "last_error",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class ReminderCancelIn(StrictInput):
    reason = serializers.CharField(max_length=200, required=False, help_text="Default: Cancelled by staff.")


class ReminderFilter(ResourceFilter):
    patient = filters.UUIDFilter(field_name="visit__patient__uuid")
    visit = filters.UUIDFilter(field_name="visit__uuid")

    class Meta:
        model = Reminder
        fields = ["patient", "visit", "status"]


@extend_schema_view(
    list=extend_schema(responses=answers({200: ReminderOut(many=True)}, 400, 404)),
    retrieve=extend_schema(responses=answers({200: ReminderOut}, 404)),
)
class ReminderViewSet(ResourceViewSet):
    """The outbox of e-mail reminders: read-only, but for cancelling one or sending it again."""

    kind = Kind.REMINDER
    resource = "reminder"
    routed_actions = ("list", "retrieve")
    queryset = Reminder.objects.select_related("visit__patient")
    serializer_class = ReminderOut
    filterset_class = ReminderFilter
    patient_lookup = "visit__patient__uuid"

    def _answer(self, reminder):
        reminder = self.get_queryset().get(pk=reminder.pk)
        self._audit([reminder])
        return Response(self.get_serializer(reminder).data)

    @extend_schema(
        description="Cancel a pending, skipped or failed reminder; cancelling a cancelled one changes "
        "nothing (so a retry is safe). A sent one is a 400.",
        request=ReminderCancelIn,
        responses=answers({200: ReminderOut}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        reminder = self.get_object()
        data = ReminderCancelIn(data=request.data)
        data.is_valid(raise_exception=True)
        return self._answer(reminders.reminder_cancel(reminder=reminder, **data.validated_data))

    @extend_schema(
        description="Queue a failed, cancelled or skipped reminder to be sent again; a pending one is left "
        "as it is (so a retry is safe).",
        request=None,
        responses=answers({200: ReminderOut}, 400, 404),
    )
    @action(detail=True, methods=["post"])
    def resend(self, request, *args, **kwargs):
        reminder = self.get_object()
        return self._answer(reminders.reminder_resend(reminder=reminder))


# --- worklists ----------------------------------------------------------------------------------


class WorklistPage(CursorPage):
    """A worklist in its order (soonest, oldest, longest-standing first), not newest-row first;
    the clinic's sessions and slots, in the calendar's.

    The cursor's position is then a date or time, not an id: it is checked as one, so a crafted
    cursor is a 404 like any other invalid cursor.
    """

    position_is_date = False

    def decode_cursor(self, request):
        cursor = CursorPagination.decode_cursor(self, request)
        if cursor is None or cursor.position is None:
            return cursor
        position = self._position(cursor.position)
        if position is None:
            raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor._replace(position=position)

    def _position(self, position: str) -> str | None:
        """The position as the database takes it (a date-time in UTC: PostgreSQL refuses an offset
        beyond 15:59, and a crafted +21:00 was a 500), or None when it is no position of ours."""
        try:
            if self.position_is_date:
                parsed = parse_date(position)
                return None if parsed is None else parsed.isoformat()
            parsed = parse_datetime(position)
            if parsed is None or timezone.is_naive(parsed):
                return None
            return parsed.astimezone(UTC).isoformat()
        except (ValueError, OverflowError):
            return None


class DuePage(WorklistPage):
    ordering = ("scheduled_for", "id")


class OverduePage(WorklistPage):
    ordering = ("window_end", "id")
    position_is_date = True


class FlaggedPage(WorklistPage):
    ordering = ("since", "id")
    position_is_date = True  # ``since`` is the fact's date (DOMAIN.md 8 v2)


class VisitWorklistRow(serializers.Serializer):
    patient = PatientBrief(read_only=True)
    visit = VisitOut(source="*", read_only=True)


class FlagWorklistRow(serializers.Serializer):
    patient = PatientBrief(read_only=True)
    flag = FlagOut(source="*", read_only=True)


class WorklistViewSet(ResourceViewSet):
    """A worklist: one row per visit (or flag) that puts a patient on it, with that patient."""

    routed_actions = ("list",)
    filterset_class = None
    filter_backends = []


@extend_schema_view(
    list=extend_schema(
        summary="Patients overdue for follow-up",
        description="Missed visits nobody rebooked, and planned visits whose window has closed, oldest "
        "window first: one row per visit.",
        responses=answers({200: VisitWorklistRow(many=True)}, 400, 404),
    )
)
class OverdueWorklistViewSet(WorklistViewSet):
    kind = Kind.VISIT
    resource = "worklist_overdue"
    serializer_class = VisitWorklistRow
    pagination_class = OverduePage

    def get_queryset(self):
        return selectors.worklist_overdue().select_related("rebooked_from", "rebooked_as")


DAYS = re.compile(r"[0-9]{1,3}")


@extend_schema_view(
    list=extend_schema(
        summary="Patients with a visit due soon",
        description="Planned or booked visits from today through the next `days` days, soonest first: one "
        "row per visit.",
        parameters=[
            OpenApiParameter(
                "days",
                {"type": "integer", "minimum": 1, "maximum": 365, "default": 7},
                description="How many days ahead, 1 to 365.",
            )
        ],
        responses=answers({200: VisitWorklistRow(many=True)}, 400, 404),
    )
)
class DueWorklistViewSet(WorklistViewSet):
    kind = Kind.VISIT
    resource = "worklist_due"
    serializer_class = VisitWorklistRow
    pagination_class = DuePage
    extra_query_params = ("days",)

    def get_queryset(self):
        days = self.request.query_params.get("days", "7")
        if not DAYS.fullmatch(days) or not 1 <= int(days) <= 365:
            raise serializers.ValidationError({"days": ["Give a whole number of days from 1 to 365."]})
        return selectors.worklist_due(days=int(days)).select_related("rebooked_from", "rebooked_as")


@extend_schema_view(
    list=extend_schema(
        summary="Patients carrying a flag",
        description="The flags a clinician should see, longest-standing first: one row per flag.",
        parameters=[
            OpenApiParameter(
                "code", OpenApiTypes.STR, enum=codes.FlagCode.values, description="Only this flag."
            )
        ],
        responses=answers({200: FlagWorklistRow(many=True)}, 400, 404),
    )
)
class FlaggedWorklistViewSet(WorklistViewSet):
    kind = Kind.CLINICAL
    resource = "worklist_flagged"
    serializer_class = FlagWorklistRow
    pagination_class = FlaggedPage
    extra_query_params = ("code",)

    def get_queryset(self):
        code = self.request.query_params.get("code")
        if code is not None and code not in codes.FlagCode.values:
            raise serializers.ValidationError(
                {"code": [f"Choose one of: {', '.join(codes.FlagCode.values)}."]}
            )
        return selectors.worklist_flagged(code=code)


# --- the clinic's sessions and their slots (DOMAIN.md section 12) -------------------------------

# The front desk runs the clinic's week with the clinicians. A nurse books visits into it but does
# not set it, though the role matrix lets a nurse write visits: writes here ask for these roles too.
MAY_RUN_SESSIONS = (Role.CLINICIAN, Role.FRONT_DESK)


class RunsClinicSessions(RolePermission):
    """Reading the clinic's sessions is reading visits; changing them is for ``MAY_RUN_SESSIONS``."""

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        return request.method in SAFE_METHODS or role_of(request.user) in MAY_RUN_SESSIONS


class ClinicWeekViewSet(ResourceViewSet):
    """Templates, sessions and slots: the clinic's week, nobody's record. There is no patient to
    audit (the history tables keep who changed a template or cancelled a session)."""

    kind = Kind.VISIT
    permission_classes = [RunsClinicSessions]

    def _audit(self, instances):
        """Nothing of a patient's to record."""

    def list(self, request, *args, **kwargs):
        # Never ResourceViewSet's row path: it audits each row under its patient, and these have none.
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


def days_from_to(field_name: str, what: str):
    """Add the filters ``from`` and ``to``, inclusive days on ``field_name``. Python keywords, so
    they are added by name rather than declared as attributes of the filter set."""

    def add(filterset):
        filterset.base_filters["from"] = filters.DateFilter(
            field_name=field_name, lookup_expr="gte", label=f"Only {what} on or after this day."
        )
        filterset.base_filters["to"] = filters.DateFilter(
            field_name=field_name, lookup_expr="lte", label=f"Only {what} on or before this day."
        )
        return filterset

    return add


def serving(path: str):
    return filters.ChoiceFilter(
        field_name=f"{path}kind_rows__visit_kind",
        choices=codes.VisitKind.choices,
        label="Only those serving this kind of visit.",
    )


class SessionTemplateOut(serializers.ModelSerializer):
    id = public_id("uuid")
    starts_at = ClinicClock(read_only=True)
    ends_at = ClinicClock(read_only=True)
    visit_kinds = CodeList(codes.VisitKind.choices, "kind_rows", "visit_kind", read_only=True)

    class Meta:
        model = SessionTemplate
        fields = ("id", *sessions.TEMPLATE_FIELDS, "visit_kinds", "created_at", "updated_at")
        read_only_fields = fields


class SessionChangesOut(serializers.Serializer):
    """What saving a template did to its sessions of the next 26 weeks."""

    generated = serializers.IntegerField(help_text="Sessions made (with their slots).")
    removed = serializers.IntegerField(
        help_text="Sessions ahead without bookings taken away: made again from the template as it now "
        "stands (counted in `generated` too), or for good when they fall outside it."
    )
    kept_with_bookings = serializers.IntegerField(
        help_text="Sessions ahead holding bookings, kept as they were (their slots' capacity only grows): "
        "move their visits if the hours changed under them."
    )


class SessionTemplateSavedOut(SessionTemplateOut):
    """The template as a write answers it, with what the write did to its sessions."""

    session_changes = serializers.SerializerMethodField()

    class Meta(SessionTemplateOut.Meta):
        fields = (*SessionTemplateOut.Meta.fields, "session_changes")
        read_only_fields = fields

    @extend_schema_field(SessionChangesOut)
    def get_session_changes(self, template):
        return SessionChangesOut(self.context["saved"]).data


class SessionTemplateIn(StrictInput):
    """A weekly session of the clinic: its day and hours, cut into slots of the kinds of visit it serves."""

    # The bounds are the service's (followups.sessions), repeated here so that the schema shows them.
    label = serializers.CharField(
        max_length=sessions.LABEL_MAX_LENGTH, help_text="Room or team, as staff and patients see it."
    )
    weekday = serializers.IntegerField(min_value=0, max_value=6, help_text="0 = Monday ... 6 = Sunday.")
    starts_at = ClinicClock()
    ends_at = ClinicClock(help_text="After starts_at.")
    slot_minutes = serializers.IntegerField(
        min_value=sessions.SLOT_MINUTES[0],
        max_value=sessions.SLOT_MINUTES[1],
        required=False,
        help_text=f"Default {sessions.DEFAULT_SLOT_MINUTES}; no longer than the session.",
    )
    capacity = serializers.IntegerField(
        min_value=sessions.CAPACITY[0],
        max_value=sessions.CAPACITY[1],
        required=False,
        help_text=f"Visits one slot takes. Default {sessions.DEFAULT_CAPACITY}.",
    )
    visit_kinds = serializers.ListField(
        child=serializers.ChoiceField(choices=codes.VisitKind.choices),
        help_text="The kinds of visit its sessions serve (at least one).",
    )
    valid_from = serializers.DateField(help_text="The first day the template is in force.")
    valid_to = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="The last day it is in force (null: no end). A template ends by setting it; it is "
        "never deleted.",
    )

    def validate(self, attrs):
        if not attrs:
            raise serializers.ValidationError("Give at least one field to change.")
        return attrs


# What a PUT that leaves an optional field out means: its default, as when the template was created.
SESSION_TEMPLATE_DEFAULTS = {
    "slot_minutes": sessions.DEFAULT_SLOT_MINUTES,
    "capacity": sessions.DEFAULT_CAPACITY,
    "valid_to": None,
}


class SessionTemplateFilter(ResourceFilter):
    visit_kind = serving("")

    class Meta:
        model = SessionTemplate
        fields: list[str] = []


SAVED = """

The template's sessions of the next 26 weeks are brought in line at once: those without bookings are
made again from it (or removed, outside its validity), those holding bookings are kept as they were
and counted, so that staff can move their visits. `session_changes` says what happened. Clinicians and
the front desk only."""


@extend_schema_view(
    list=extend_schema(
        description="The clinic's weekly session templates, newest first.",
        responses=answers({200: SessionTemplateOut(many=True)}, 400, 404),
    ),
    retrieve=extend_schema(responses=answers({200: SessionTemplateOut}, 400, 404)),
    create=extend_schema(
        description="A new weekly session." + SAVED,
        request=SessionTemplateIn,
        parameters=[IDEMPOTENCY_KEY],
        responses=answers({201: SessionTemplateSavedOut}, 400, 422),
    ),
    update=extend_schema(
        description="Replace the template: `slot_minutes` and `capacity` left out take their defaults "
        "(15 and 1), a `valid_to` left out is cleared." + SAVED,
        request=SessionTemplateIn,
        parameters=[IF_MATCH],
        responses=answers({200: SessionTemplateSavedOut}, 400, 404, 412),
    ),
    partial_update=extend_schema(
        description="Change some fields; set `valid_to` to end the template." + SAVED,
        request=SessionTemplateIn,
        parameters=[IF_MATCH],
        responses=answers({200: SessionTemplateSavedOut}, 400, 404, 412),
    ),
)
class SessionTemplateViewSet(ClinicWeekViewSet):
    """The clinic's weekly sessions, from which its dated sessions are generated 26 weeks ahead."""

    resource = "session_template"
    routed_actions = ("list", "create", "retrieve", "update", "partial_update")
    queryset = SessionTemplate.objects.prefetch_related("kind_rows")
    input_serializer_class = SessionTemplateIn
    filterset_class = SessionTemplateFilter

    def get_serializer_class(self):
        if self.action in ("create", "update", "partial_update"):
            return SessionTemplateSavedOut
        return SessionTemplateOut

    def get_serializer_context(self):
        return {**super().get_serializer_context(), "saved": getattr(self, "saved", None)}

    def create_object(self, data):
        self.saved = sessions.session_template_save(**data)
        return self.saved.template

    def update_object(self, template, data):
        if self.action == "update":
            data = {**SESSION_TEMPLATE_DEFAULTS, **data}
        self.saved = sessions.session_template_save(template=template, **data)
        return self.saved.template


class ServedKinds(CodeList):
    """The kinds of visit a session serves: its template's."""

    def get_attribute(self, session):
        return session.template


class ClinicSessionOut(serializers.ModelSerializer):
    id = public_id("uuid")
    template = public_id("template.uuid")
    on = serializers.DateField(read_only=True, help_text="The session's day.")
    starts_at = ClinicClock(read_only=True)
    ends_at = ClinicClock(read_only=True)
    visit_kinds = ServedKinds(codes.VisitKind.choices, "kind_rows", "visit_kind", read_only=True)
    capacity = serializers.IntegerField(read_only=True, help_text="Visits its slots take, all together.")
    booked = serializers.IntegerField(read_only=True, help_text="Visits booked into its slots.")

    class Meta:
        model = ClinicSession
        fields = (
            "id",
            "template",
            "on",
            "starts_at",
            "ends_at",
            "label",
            "visit_kinds",
            "cancelled",
            "cancel_reason",
            "capacity",
            "booked",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class SessionCancelIn(StrictInput):
    """Why one dated session does not take place."""

    reason = serializers.CharField(
        max_length=sessions.SESSION_CANCEL_REASON_MAX_LENGTH,
        help_text="Why the session is cancelled (a holiday, an absence).",
    )


@days_from_to("on", "sessions")
class ClinicSessionFilter(ResourceFilter):
    template = filters.UUIDFilter(field_name="template__uuid", label="Only the sessions of this template.")
    visit_kind = serving("template__")
    cancelled = StrictBooleanFilter()

    class Meta:
        model = ClinicSession
        fields: list[str] = []


class SessionPage(WorklistPage):
    ordering = ("on", "starts_at", "id")
    position_is_date = True


@extend_schema_view(
    list=extend_schema(
        description="The clinic's dated sessions, cancelled ones included, in the order of the calendar.",
        responses=answers({200: ClinicSessionOut(many=True)}, 400, 404),
    ),
    retrieve=extend_schema(responses=answers({200: ClinicSessionOut}, 400, 404)),
)
class ClinicSessionViewSet(ClinicWeekViewSet):
    """The dated sessions generated from the templates; cancelled for a day, never deleted."""

    resource = "clinic_session"
    routed_actions = ("list", "retrieve")
    queryset = (
        ClinicSession.objects.select_related("template")
        .prefetch_related("template__kind_rows")
        .annotate(
            capacity=Coalesce(Sum("slots__capacity"), 0),
            booked=Coalesce(Sum("slots__booked"), 0),
        )
    )
    serializer_class = ClinicSessionOut
    input_serializer_class = SessionCancelIn
    filterset_class = ClinicSessionFilter
    pagination_class = SessionPage

    def update_object(self, session, data):
        return sessions.session_cancel(session=session, reason=data["reason"], by=self.request.user)

    @extend_schema(
        description="Cancel the session for its day (a holiday, an absence), with a reason. Its booked "
        "visits go back to planned and onto the call list (clinic_cancelled), and their patients are "
        "told, with their booking link. A session already cancelled (code already_cancelled) or over "
        "(session_over) is a 400. Clinicians and the front desk only.",
        request=SessionCancelIn,
        parameters=[IF_MATCH],
        responses=answers({200: ClinicSessionOut}, 400, 404, 412),
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request, *args, **kwargs):
        return self._update(request, partial=False)


@days_from_to("session__on", "slots")
class SlotFilter(filters.FilterSet):
    # No updated_since: a slot keeps no time of change (a booking only counts a place in it).
    session = filters.UUIDFilter(field_name="session__uuid", label="Only the slots of this session.")
    visit_kind = serving("session__template__")

    class Meta:
        model = Slot
        fields: list[str] = []


class SlotPage(WorklistPage):
    ordering = ("starts_at", "id")


@extend_schema_view(
    list=extend_schema(
        description="The slots of the clinic's sessions, earliest first: where visits are booked "
        "(`POST visits/{id}/book/` `{slot}`). The slots of a cancelled session are not listed, as they "
        "take no booking: `sessions/` shows the session and why it was cancelled. A slot keeps no time "
        "of change, so this list takes no `updated_since`: read a range of days again instead.",
        responses=answers({200: SlotOut(many=True)}, 400, 404),
    ),
    retrieve=extend_schema(
        description="One slot of a session that is not cancelled.",
        responses=answers({200: SlotOut}, 400, 404),
    ),
)
class SlotViewSet(ClinicWeekViewSet):
    resource = "slot"
    routed_actions = ("list", "retrieve")
    queryset = Slot.objects.filter(session__cancelled=False).select_related("session")
    serializer_class = SlotOut
    filterset_class = SlotFilter
    pagination_class = SlotPage

    def retrieve(self, request, *args, **kwargs):
        # No ETag: a slot keeps no version to make one of, and nothing changes it through this API.
        return Response(self.get_serializer(self.get_object()).data)
