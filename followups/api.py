"""Follow-up over the API (API.md): visits, assessments, reminders, worklists, outcomes and flags.

As in ``patients.api``, serializers only translate: a visit changes state through the one visit
service its PATCH names, an assessment is recorded, changed or retracted by its services, and a
reminder is cancelled or sent again by the outbox's staff actions. Reads come from querysets (or the
selectors) that fetch a page's relations in a fixed number of queries.
"""

from __future__ import annotations

import re
from datetime import UTC

from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
    extend_schema_view,
)
from rest_framework import exceptions, serializers
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from clinic.api import CursorPage, OffsetDateTimeFilter, ResourceFilter, ResourceViewSet
from clinic.api_rows import row_plan
from clinic.api_schema import ERRORS, IDEMPOTENCY_KEY, IF_MATCH
from clinic.roles import Kind
from followups import booking, codes, reminders, selectors, services
from followups.fhir import clinic_time
from followups.flags_store import flag_acknowledge
from followups.models import HFS7_ITEMS, Assessment, PatientFlag, Reminder, Slot, TreatmentOutcome, Visit
from followups.visit_moves import CORRECTION_REASON_MAX_LENGTH, visit_move
from patients.api import CodeList, RecordRef, StrictInput, public_id
from patients.codes import TreatmentKind
from patients.models import Patient, Treatment

# --- what the schema says about errors ----------------------------------------------------------


def answers(ok: dict, *error_codes: int) -> dict:
    """Responses of an operation: its success, the errors every call may get, and ``error_codes``."""
    return {**ok, **{code: ERRORS[code] for code in sorted({401, 403, 429, *error_codes})}}


# --- shared fields ------------------------------------------------------------------------------


class OffsetDateTime(serializers.DateTimeField):
    """A date-time with its UTC offset (API.md): a naive one is refused, never read as clinic time."""

    default_error_messages = {"naive": "Give a date and time with its UTC offset."}

    def enforce_timezone(self, value):
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)


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


class VisitOut(serializers.ModelSerializer):
    id = public_id("uuid")
    patient = public_id("patient.uuid")
    treatment = _uuid_ref(allow_null=True)
    rebooked_from = _uuid_ref(allow_null=True, help_text="The missed visit this one replaces.")
    rebooked_as = _uuid_ref(allow_null=True, help_text="The visit booked for this one, once missed.")
    slot = _uuid_ref(allow_null=True, help_text="The clinic session's slot a booked visit holds.")
    scheduled_for = ClinicDateTime(read_only=True)

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
            "window_start",
            "window_end",
            "status",
            "source",
            "cancel_reason",
            "sequence",
            "rebooked_from",
            "rebooked_as",
            "created_at",
            "updated_at",
        )
        read_only_fields = fields


class SlotSuggestionOut(serializers.ModelSerializer):
    """A free slot a visit may take (DOMAIN.md section 12), as ``visits/{id}/slot-suggestions/``
    lists them."""

    id = public_id("uuid")
    session = public_id("session.uuid")
    label = serializers.CharField(source="session.label", read_only=True)
    starts_at = ClinicDateTime(read_only=True)
    free = serializers.IntegerField(read_only=True)
    inside_window = serializers.BooleanField(
        read_only=True,
        help_text="False for the nearest slots after the window, offered when none is free inside.",
    )

    class Meta:
        model = Slot
        fields = ("id", "session", "label", "starts_at", "capacity", "booked", "free", "inside_window")
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
    """A worklist in its order (soonest, oldest, longest-standing first), not newest-row first.

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
