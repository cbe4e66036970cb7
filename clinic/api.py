"""The conventions every API resource follows (API.md), in one place.

- token authentication for clients, the session for staff; the role matrix of ``clinic.roles``;
- cursor pages of up to 500 rows, ``updated_since`` on every list; a 400 naming the parameter for
  one the operation does not read, or one given empty, twice or malformed (its filter's form says);
- Django ``ValidationError`` from a service becomes a 400 with field messages (dotted names nested);
- ``ETag`` on reads, ``If-Match`` honoured on PUT and PATCH (412 when stale);
- ``Idempotency-Key`` on POST: a retry returns the first response, another body is a 422;
- throttling per client on the shared cache; an audit row for every patient a request touches.
Resource viewsets subclass ``ResourceViewSet`` and supply their serializers and service calls.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC
from uuid import UUID

from django import forms
from django.core.exceptions import NON_FIELD_ERRORS
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.http import Http404
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django_filters import rest_framework as filters
from rest_framework import exceptions, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder as DRFJSONEncoder
from rest_framework.views import exception_handler as drf_exception_handler
from rest_framework.viewsets import GenericViewSet

from clinic.api_auth import ApiTokenAuthentication, ClientRateThrottle, RolePermission
from clinic.api_rows import RowPlan, row_plan
from clinic.api_schema import ResourceSchema, conditional_read  # (and registers the token scheme)
from clinic.audit import audit_record
from clinic.models import IdempotentRequest
from clinic.roles import Kind, may

# --- errors -------------------------------------------------------------------------------------


def nest_field_errors(errors: dict[str, list[str]]) -> dict:
    """``{"medication.daily_dose_mg": [...]}`` -> ``{"medication": {"daily_dose_mg": [...]}}``.

    A name can be both a leaf and a parent (``botulinum_toxin.injections`` says a muscle is listed
    twice, ``botulinum_toxin.injections.0.units`` that a dose is 0): the leaf's messages then go to
    the parent's ``non_field_errors``, the way DRF reports a nested serializer's own errors.
    """
    nested: dict = {}
    for name, messages in errors.items():
        name = "non_field_errors" if name == NON_FIELD_ERRORS else name
        *parents, leaf = name.split(".")
        level = nested
        for part in parents:
            child = level.get(part)
            if not isinstance(child, dict):
                child = level[part] = {} if child is None else {"non_field_errors": child}
            level = child
        if isinstance(level.get(leaf), dict):
            level = level[leaf]
            leaf = "non_field_errors"
        level.setdefault(leaf, []).extend(messages)
    return nested


def api_exception_handler(exc, context):
    """A service's refusal is a 400 with its messages by field, and (beside them, under
    ``error_codes``, nested the same way) the machine-readable code of each message."""
    codes = None
    if isinstance(exc, DjangoValidationError):
        if hasattr(exc, "error_dict"):
            detail = nest_field_errors(exc.message_dict)
            codes = nest_field_errors(
                {
                    field: [error.code or "invalid" for error in errors]
                    for field, errors in exc.error_dict.items()
                }
            )
        else:
            detail = {"non_field_errors": exc.messages}
            codes = {"non_field_errors": [error.code or "invalid" for error in exc.error_list]}
        exc = exceptions.ValidationError(detail)
    response = drf_exception_handler(exc, context)
    if codes is not None and response is not None:
        response.data["error_codes"] = codes
        # A place taken by someone else meanwhile is a conflict with the slot's state, not bad input.
        if CONFLICT_CODES & set(_leaves(codes)):
            response.status_code = status.HTTP_409_CONFLICT
    return response


# Refusals that say the record changed under the caller (API.md: a full slot is a 409).
CONFLICT_CODES = {"slot_full"}


def _leaves(nested):
    if isinstance(nested, dict):
        for value in nested.values():
            yield from _leaves(value)
    elif isinstance(nested, list):
        for value in nested:
            yield from _leaves(value)
    else:
        yield str(nested)


# As long as IdempotentRequest.key may be.
IDEMPOTENCY_KEY_MAX_LENGTH = 255


class ClinicalFieldsHidden:
    """A serializer mixin: the output fields in ``clinical_fields`` name the clinical record (a
    visit's purpose names its treatment), so only roles that read it get them; the front desk sees
    the rest (issue 20). Declare those fields ``required=False`` so that the schema does not promise
    them to everyone."""

    clinical_fields: tuple[str, ...] = ()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        if request is None or not may(request.user, Kind.CLINICAL, write=False):
            for name in self.clinical_fields:
                data.pop(name, None)
        return data


class PreconditionFailed(exceptions.APIException):
    status_code = status.HTTP_412_PRECONDITION_FAILED
    default_detail = "This record changed since you read it (its ETag no longer matches If-Match)."
    default_code = "precondition_failed"


class IdempotencyKeyReused(exceptions.APIException):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_detail = "This Idempotency-Key was used with another request body."
    default_code = "idempotency_key_reused"


# --- pages and filters --------------------------------------------------------------------------


PAGE_SIZE_DIGITS = re.compile(r"[0-9]{1,9}")


def page_size_asked(request, *, default: int, most: int, name: str = "page_size") -> int:
    """The rows per page a list was asked for: ``default`` when the parameter is left out, at most
    ``most`` (API.md: "page_size up to 500": a sync client asking for more gets pages of 500, as it
    always did), and a 400 naming it for anything but a whole number from 1 (issue 20:
    ``page_size=AAA`` or ``0`` quietly gave the default page)."""
    value = request.query_params.get(name)
    if value is None:
        return default
    if not PAGE_SIZE_DIGITS.fullmatch(value) or int(value) < 1:
        raise exceptions.ValidationError(
            {name: [f"Give a whole number of rows from 1 (at most {most} a page)."]}
        )
    return min(int(value), most)


def page_size_parameter(*, default: int, most: int, name: str = "page_size") -> dict:
    """``page_size`` as the schema states it, with the bounds ``page_size_asked`` holds it to."""
    return {
        "name": name,
        "required": False,
        "in": "query",
        "description": f"Rows per page, from 1 (default {default}); more than {most} gives pages of {most}.",
        "schema": {"type": "integer", "minimum": 1, "maximum": 999_999_999},
    }


class CursorPage(CursorPagination):
    page_size = 50
    max_page_size = 500
    page_size_query_param = "page_size"
    ordering = "-id"

    def get_page_size(self, request):
        return page_size_asked(
            request, default=self.page_size, most=self.max_page_size, name=self.page_size_query_param
        )

    def get_schema_operation_parameters(self, view):
        cursor, *_ = super().get_schema_operation_parameters(view)
        return [
            cursor,
            page_size_parameter(
                default=self.page_size, most=self.max_page_size, name=self.page_size_query_param
            ),
        ]

    def decode_cursor(self, request):
        # DRF checks the offset and direction of a cursor but not its position, which it hands to
        # the database as an id: a crafted cursor ("p=abc") would be a 500, not a 404.
        cursor = super().decode_cursor(request)
        position = cursor.position if cursor is not None else None
        if position is not None and not re.fullmatch(r"[0-9]+", position):
            raise exceptions.NotFound(self.invalid_cursor_message)
        return cursor


def query_refusals(query, allowed: set[str]) -> dict[str, list[str]]:
    """What is wrong with a query string, by parameter: unknown to the operation, given twice (which
    value would count?) or given empty. An empty filter would otherwise filter nothing, so that
    ``?patient=`` listed every patient's rows (issue 20). The values themselves are the filters'
    (django-filter's form) and the pages' to judge."""
    refusals = {}
    for name in sorted(query):
        values = query.getlist(name)
        if name not in allowed:
            refusals[name] = ["Unknown query parameter."]
        elif len(values) > 1:
            refusals[name] = ["Give this parameter once."]
        elif not values[0].strip():
            refusals[name] = ["Give a value, or leave the parameter out."]
    return refusals


class OffsetDateTimeField(forms.DateTimeField):
    """An ISO 8601 date-time with its UTC offset (API.md); a naive one is refused, not guessed."""

    default_error_messages = {
        "invalid": (
            "Enter an ISO 8601 date-time with its UTC offset, e.g. 2024-05-01T08:00:00+02:00 "
            "(in a query string a '+' is written %%2B)."
        ),
        "naive": "Give the date-time with its UTC offset (e.g. +02:00 or Z); it has none.",
    }

    def to_python(self, value):
        if value in self.empty_values:
            return None
        try:
            parsed = parse_datetime(str(value).strip())
        except ValueError:  # well-formed but impossible: month 13, offset +25:00
            parsed = None
        if parsed is None:
            raise DjangoValidationError(self.error_messages["invalid"], code="invalid")
        if timezone.is_naive(parsed):
            raise DjangoValidationError(self.error_messages["naive"], code="naive")
        try:
            # The same moment in UTC: PostgreSQL refuses offsets beyond 15:59 (+21:00 was a 500).
            return parsed.astimezone(UTC)
        except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the first moment there is
            raise DjangoValidationError(self.error_messages["invalid"], code="invalid") from None


class OffsetDateTimeFilter(filters.DateTimeFilter):
    field_class = OffsetDateTimeField


class StrictBooleanField(forms.NullBooleanField):
    """``true`` or ``false`` (``1``/``0``); anything else is a 400, where django-filter's own boolean
    filter would quietly not filter at all."""

    widget = forms.TextInput

    def to_python(self, value):
        if value in self.empty_values:
            return None
        text = str(value).strip().lower()
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise DjangoValidationError("Give true or false.", code="invalid")

    def validate(self, value):
        pass


class StrictBooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("widget", forms.TextInput)
        super().__init__(*args, **kwargs)


class ResourceFilter(filters.FilterSet):
    """Every list takes ``updated_since`` for incremental sync (API.md)."""

    updated_since = OffsetDateTimeFilter(field_name="updated_at", lookup_expr="gte")


def etag_for(instance) -> str:
    version = f"{instance.uuid}:{instance.updated_at.isoformat()}"
    return '"' + hashlib.sha256(version.encode()).hexdigest()[:32] + '"'


def read_answer(request, body, etag: str) -> Response:
    """A read with its ETag; 304 Not Modified, without the body, when the caller already holds
    this version (``If-None-Match``, compared weakly as RFC 9110 asks for GET), so a client that
    polls a record pays for the body only when it changed."""
    held = {tag.strip().removeprefix("W/") for tag in request.headers.get("If-None-Match", "").split(",")}
    if "*" in held or etag.removeprefix("W/") in held:
        return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag})
    return Response(body, headers={"ETag": etag})


# --- the base viewset ---------------------------------------------------------------------------


class ResourceViewSet(GenericViewSet):
    """A resource of API.md: reads from a queryset, writes through one service call.

    Subclasses set ``kind``, ``resource``, ``serializer_class`` (output), ``input_serializer_class``
    and implement ``create_object(data)`` / ``update_object(instance, data)`` with a service call;
    ``patient_lookup`` names the patient's id from a row, for the audit.
    """

    kind: Kind = Kind.CLINICAL
    resource = ""
    channel = "api"
    lookup_field = "uuid"
    lookup_url_kwarg = "id"
    input_serializer_class = None
    pagination_class = CursorPage
    filter_backends = [filters.DjangoFilterBackend]
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [RolePermission]
    throttle_classes = [ClientRateThrottle]
    schema = ResourceSchema()
    extra_query_params: tuple[str, ...] = ()
    filterset_class = None
    patient_lookup = "patient__uuid"

    def get_kind(self) -> Kind:
        return self.kind

    # -- strict query parameters
    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if request.method == "OPTIONS" or not self.serves(request.method):
            # Dispatch answers 405 with ``Allow``, and OPTIONS describes the route whatever the
            # query: a query string the method never reads must not turn either into a 400
            # (issue 20: ``PUT visits/?x=1`` was one).
            return
        refusals = query_refusals(request.query_params, self.query_parameters())
        if refusals:
            raise exceptions.ValidationError(refusals)

    def query_parameters(self) -> set[str]:
        """The query parameters this operation reads; any other is a 400 (API.md)."""
        allowed = {"format", *self.extra_query_params}
        if self.action == "list":
            allowed |= {"cursor", "page_size"}
            if self.filterset_class is not None:
                allowed |= set(self.filterset_class.base_filters)
        return allowed

    def serves(self, method: str) -> bool:
        """Whether this route answers ``method`` otherwise than with a 405."""
        name = method.lower()
        return name in self.http_method_names and hasattr(self, name)

    def filter_queryset(self, queryset):
        # django-filter builds and validates a form of every filter even when the query names
        # none of them (bench: 0.3 ms of a list page); none of ours filters unless it is named.
        names = self.filterset_class.base_filters if self.filterset_class is not None else ()
        if not any(name in self.request.query_params for name in names):
            return queryset
        return super().filter_queryset(queryset)

    def get_object(self):
        try:
            UUID(str(self.kwargs[self.lookup_url_kwarg]))
        except ValueError as error:
            raise Http404 from error
        return super().get_object()

    # -- audit
    def patient_uuid(self, instance) -> UUID | None:
        for name in self.patient_lookup.split("__"):
            instance = getattr(instance, name)
        return instance

    def _audit(self, instances):
        self._audit_targets = [(getattr(i, "uuid", i.pk), self.patient_uuid(i)) for i in instances]

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        targets = getattr(self, "_audit_targets", None)
        if targets and response.status_code < 400:
            audit_record(
                request=request,
                channel=self.channel,
                resource=self.resource,
                status=response.status_code,
                targets=targets,
            )
        return response

    # -- reads
    def hidden_fields(self) -> tuple[str, ...]:
        """Output fields the caller's role may not see (the serializer leaves them out too)."""
        return ()

    def list(self, request, *args, **kwargs):
        queryset = self.filter_queryset(self.get_queryset())
        plan = row_plan(self.get_serializer_class())
        if plan is not None and hasattr(queryset.model, "uuid"):
            return self._list_rows(queryset, plan.without(self.hidden_fields()))
        page = self.paginate_queryset(queryset)
        self._audit(page)
        return self.get_paginated_response(self.get_serializer(page, many=True).data)

    def _list_rows(self, queryset, plan: RowPlan):
        """A flat output's page from ``.values()`` rows (clinic.api_rows): the same JSON and audit."""
        ordering = self.paginator.ordering
        positions = [name.lstrip("-") for name in ([ordering] if isinstance(ordering, str) else ordering)]
        # The cursor's position columns, the audit's ids, then what the answer shows.
        columns = dict.fromkeys([*positions, "uuid", self.patient_lookup, *plan.lookups])
        rows = self.paginate_queryset(queryset.prefetch_related(None).values(*columns))
        self._audit_targets = [(row["uuid"], row[self.patient_lookup]) for row in rows]
        return self.get_paginated_response(plan.represent(rows))

    @conditional_read
    def retrieve(self, request, *args, **kwargs):
        instance = self.get_object()
        self._audit([instance])
        return read_answer(request, self.get_serializer(instance).data, etag_for(instance))

    # -- writes
    def _validated_input(self, request, *, partial=False, instance=None):
        serializer = self.input_serializer_class(
            data=request.data, partial=partial, context=self.get_serializer_context(), instance=instance
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def create(self, request, *args, **kwargs):
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return self._create(request)
        if not key.strip():
            # A client that sends the header means its retries to be safe: an empty key would
            # quietly make them duplicates.
            raise exceptions.ValidationError({"Idempotency-Key": ["Give a key, or leave the header out."]})
        if len(key) > IDEMPOTENCY_KEY_MAX_LENGTH:
            # Never cut short: two long keys sharing a prefix would answer each other (issue 20).
            raise exceptions.ValidationError(
                {"Idempotency-Key": [f"Keep the key to {IDEMPOTENCY_KEY_MAX_LENGTH} characters."]}
            )
        return self._create_once(request, key)

    def _create(self, request):
        data = self._validated_input(request)
        with transaction.atomic():
            instance = self.create_object(data)
        instance = self.get_queryset().get(pk=instance.pk)
        self._audit([instance])
        body = self.get_serializer(instance).data
        return Response(body, status=status.HTTP_201_CREATED, headers={"ETag": etag_for(instance)})

    def _create_once(self, request, key: str):
        fingerprint = hashlib.sha256(
            json.dumps([request.path, request.data], sort_keys=True, default=str).encode()
        ).hexdigest()
        try:
            with transaction.atomic():
                record = IdempotentRequest.objects.create(
                    user=request.user, key=key, request_fingerprint=fingerprint
                )
                response = self._create(request)
                record.status = response.status_code
                # DRF's own encoder: the replay must carry the types of the first answer (a
                # decimal as a number, COERCE_DECIMAL_TO_STRING being off), not str() of them.
                record.response_body = json.dumps(response.data, cls=DRFJSONEncoder)
                record.save(update_fields=["status", "response_body"])
                return response
        except IntegrityError:
            # The key was used before (or a concurrent retry won the race and has committed).
            first = IdempotentRequest.objects.filter(user=request.user, key=key).first()
            if first is None:  # a constraint of the record itself, not the key: not ours to hide
                raise
        if first.request_fingerprint != fingerprint:
            raise IdempotencyKeyReused()
        body = json.loads(first.response_body)
        # The replay shows the record again: audited like the first answer.
        created = isinstance(body, dict) and self.get_queryset().filter(uuid=body.get("id")).first()
        if created:
            self._audit([created])
        return Response(body, status=first.status)

    def _update(self, request, partial: bool):
        with transaction.atomic():
            instance = self.get_object()
            self.lock_patient_of(instance)
            locked = type(instance).objects.select_for_update().get(pk=instance.pk)
            expected = request.headers.get("If-Match")
            # A list of entity tags matches when any of them does (RFC 9110, 13.1.1).
            if expected and not {"*", etag_for(locked)} & {tag.strip() for tag in expected.split(",")}:
                raise PreconditionFailed()
            data = self._validated_input(request, partial=partial, instance=locked)
            self.update_object(locked, data)
        instance = self.get_queryset().get(pk=instance.pk)
        self._audit([instance])
        return Response(self.get_serializer(instance).data, headers={"ETag": etag_for(instance)})

    def lock_patient_of(self, instance) -> None:
        """Lock the patient's row before the record's: every service locks the patient first
        (``patients.services.patient_lock``), so taking them the other way round could deadlock
        with the nightly close or a concurrent write about the same patient."""
        patient_field = next((f for f in instance._meta.fields if f.name == "patient"), None)
        if patient_field is not None:
            list(patient_field.related_model.objects.select_for_update().filter(pk=instance.patient_id))

    def update(self, request, *args, **kwargs):
        return self._update(request, partial=False)

    def partial_update(self, request, *args, **kwargs):
        return self._update(request, partial=True)

    def create_object(self, data):
        raise NotImplementedError

    def update_object(self, instance, data):
        raise NotImplementedError
