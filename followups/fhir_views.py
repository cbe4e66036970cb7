"""FHIR R4 read endpoints (API.md, "FHIR R4"), answering ``application/fhir+json``.

The same gate as the REST API: token or staff session, the role matrix of ``clinic.roles`` through
each view's ``get_kind()``, the per-client throttle, and an audit row (channel ``fhir``) for every
resource of a patient a request returns. A resource type reads the same rows, with the same kind,
as its REST counterpart: Condition, Procedure and MedicationStatement are clinical, Observation
is an assessment (both refused to the front desk), Patient is contact data, Appointment a visit,
and Communication a reminder (sent reminders, and contact attempts, which the same roles read).
``$everything`` holds clinical resources, so it is clinical. Schedule and Slot (the clinic's
sessions) are nobody's record: read as visits are, so the front desk reads them too, and never
audited, as they name no patient.

Every error is an OperationOutcome. A search of a patient's resources needs ``patient`` and takes
nothing else but ``_format``; a patient that does not exist gives an empty searchset. Schedule and
Slot take their own search parameters (``CLINIC_SOURCES``). Each request runs a fixed number of
queries: each resource type is one query plus its prefetches, whatever the record's size.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.dateparse import parse_date
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions
from rest_framework.authentication import SessionAuthentication
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from clinic.api import api_exception_handler, read_answer
from clinic.api_auth import ApiTokenAuthentication, ClientRateThrottle, RolePermission
from clinic.api_schema import IF_NONE_MATCH, NOT_MODIFIED, with_non_blank_query_strings
from clinic.audit import audit_record
from clinic.roles import Kind, may
from followups import fhir
from followups import fhir_search as search
from followups.codes import ReminderStatus, VisitKind
from followups.models import (
    Assessment,
    ContactAttempt,
    LabResult,
    Reminder,
    SessionTemplate,
    SessionTemplateKind,
    Slot,
    Visit,
)
from patients.models import Diagnosis, Patient, Treatment

# The date this server's CapabilityStatement last changed: bump it with what is served.
CAPABILITY_DATE = "2026-12-05"
SOFTWARE = "HFS Follow-up"
EVERYTHING = "http://hl7.org/fhir/OperationDefinition/Patient-everything"
FORMAT_PARAM = "_format"
JSON_FORMATS = {"json", "application/json", "application/fhir+json"}
UUID_LENGTH = 36

ISSUE_TYPE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    429: "throttled",
}


# --- the HTTP side: one media type, errors as OperationOutcome ----------------------------------


class FhirJsonRenderer(JSONRenderer):
    media_type = "application/fhir+json"


class FhirJsonOnly(BaseContentNegotiation):
    """Only FHIR JSON is served, whatever ``Accept`` says (``_format`` is checked by the view)."""

    def select_parser(self, request, parsers):
        return None

    def select_renderer(self, request, renderers, format_suffix=None):
        return renderers[0], renderers[0].media_type


def _messages(data) -> list[str]:
    if isinstance(data, dict):
        if set(data) == {"detail"}:
            return _messages(data["detail"])
        return [f"{name}: {message}" for name, value in data.items() for message in _messages(value)]
    if isinstance(data, list):
        return [message for item in data for message in _messages(item)]
    return [str(data)]


def fhir_exception_handler(exc, context):
    response = api_exception_handler(exc, context)
    if response is not None:
        code = ISSUE_TYPE.get(response.status_code, "exception")
        response.data = fhir.operation_outcome(code, _messages(response.data))
    return response


ERRORS = {
    status: OpenApiResponse(OpenApiTypes.OBJECT, description=f"OperationOutcome ({code})")
    for status, code in ISSUE_TYPE.items()
    if status != 405
}
FORMAT = OpenApiParameter(FORMAT_PARAM, str, enum=sorted(JSON_FORMATS), description="Only JSON is served.")


class FhirSchema(AutoSchema):
    """One view class serves several resource types: the operation id names the type, and a type
    searched by its own parameters lists them."""

    def get_operation_id(self):
        return self.view.operation_id()

    def get_operation(self, *args, **kwargs):
        return with_non_blank_query_strings(super().get_operation(*args, **kwargs))

    def get_override_parameters(self):
        own = getattr(self.view, "schema_parameters", None)
        return [*super().get_override_parameters(), *(own() if own else [])]


class FhirView(APIView):
    """A read-only FHIR endpoint: the API's authentication, roles and throttle; FHIR's wire format."""

    schema = FhirSchema()
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [RolePermission]
    throttle_classes = [ClientRateThrottle]
    renderer_classes = [FhirJsonRenderer]
    parser_classes: list = []
    content_negotiation_class = FhirJsonOnly
    metadata_class = None
    # Read-only: what a 405's ``Allow`` names. OPTIONS is not served either (it would describe a
    # resource in DRF's terms, not FHIR's), so ``Allow`` must not offer it.
    http_method_names = ["get", "head"]
    kind: Kind | None = Kind.CLINICAL
    query_params: tuple[str, ...] = ()

    def get_kind(self) -> Kind | None:
        return self.kind

    def as_role_sees(self, resource: dict) -> dict:
        """The resource as the caller's role may see it (``fhir.without_clinical``)."""
        if may(self.request.user, Kind.CLINICAL, write=False):
            return resource
        return fhir.without_clinical(resource)

    def get_exception_handler(self):
        return fhir_exception_handler

    def dispatch(self, request, *args, **kwargs):
        # Displays are those of the code systems, which are English, whatever the caller's language.
        with translation.override(settings.LANGUAGE_CODE):
            return super().dispatch(request, *args, **kwargs)

    def initial(self, request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            raise exceptions.MethodNotAllowed(request.method)
        super().initial(request, *args, **kwargs)
        unknown = sorted(set(request.query_params) - {FORMAT_PARAM, *self.query_params})
        # FHIR R4 search (3.1.1.4): with ``Prefer: handling=lenient`` an unknown parameter is
        # ignored, and a searchset says so in an OperationOutcome entry (search mode outcome).
        self.ignored = unknown if search.prefers_lenient(request) else []
        if unknown and not self.ignored:
            raise exceptions.ValidationError({name: ["Unknown search parameter."] for name in unknown})
        wanted = request.query_params.getlist(FORMAT_PARAM)
        if any(value not in JSON_FORMATS for value in wanted):
            raise exceptions.NotAcceptable("Only JSON is served (_format=json).")

    def used_params(self) -> list[tuple[str, str]]:
        """The query's parameters in order, but those ignored: what the self link states."""
        ignored = set(getattr(self, "ignored", ()))
        return [
            (name, value)
            for name, values in self.request.query_params.lists()
            if name not in ignored
            for value in values
        ]

    def ignored_outcome(self) -> dict | None:
        ignored = getattr(self, "ignored", ())
        if not ignored:
            return None
        return fhir.operation_outcome(
            "not-supported",
            [f"{name}: Unknown search parameter, ignored (Prefer: handling=lenient)." for name in ignored],
            severity="warning",
        )

    def searchset(
        self,
        found: list[tuple[dict, UUID | None]],
        result: search.Result,
        *,
        empty_audit: tuple[str, str, UUID] | None = None,
    ) -> Response:
        """The Bundle of the matches ``found`` (each with its patient's id, None for nobody's),
        ordered, subsetted and paged as ``result`` asks; audited for the resources it holds."""
        matches = search.ordered(found, result, resource_of=lambda item: item[0])
        shown = [] if result.summary_count else search.page(matches, offset=result.offset, count=result.count)
        resources = [search.subsetted(r, result.elements) if result.elements else r for r, _ in shown]
        audited = [(r["resourceType"], r["id"], uuid) for r, uuid in shown if uuid is not None]
        if audited or empty_audit:
            # An empty answer still tells the caller something about this patient.
            self.audit(audited or [empty_audit])
        links = search.page_links(
            self.request.build_absolute_uri(self.request.path),
            self.used_params(),
            offset=result.offset,
            count=None if result.summary_count else result.count,
            total=len(matches),
        )
        total = None if result.total == "none" and not result.summary_count else len(matches)
        body = fhir.bundle(
            base=self.base_url(),
            resources=resources,
            total=total,
            links=links,
            outcome=self.ignored_outcome(),
        )
        return Response(body)

    def base_url(self) -> str:
        return self.request.build_absolute_uri(reverse("fhir:metadata")).removesuffix("metadata")

    # -- audit: one row per resource of a patient in the answer, under its FHIR type
    def audit(self, found: list[tuple[str, str, UUID]]):
        """``found``: (resource type, id, patient id) of every resource the answer holds."""
        self._audit_found = found

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        found = getattr(self, "_audit_found", None)
        if found and response.status_code < 400:
            by_type: dict[str, list[tuple[str, UUID]]] = {}
            for resource_type, resource_id, patient in found:
                by_type.setdefault(resource_type, []).append((resource_id, patient))
            for resource_type, targets in by_type.items():
                audit_record(
                    request=request,
                    channel="fhir",
                    resource=resource_type,
                    status=response.status_code,
                    targets=targets,
                )
        return response


# --- what is served -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """One resource type: the rows it is made from (with what its mapping reads), and the mapping."""

    resource_type: str
    kind: Kind
    rows: Callable[[], QuerySet]
    patient_path: str  # from a row to its Patient
    to_fhir: Callable[[Any], list[dict]]

    def patient_of(self, row) -> Patient:
        for name in self.patient_path.split("__") if self.patient_path else ():
            row = getattr(row, name)
        return row

    def resources_for(self, field: str, value) -> list[tuple[dict, UUID]]:
        """Every resource of the patient whose ``field`` is ``value``, each with that patient's id."""
        rows = self.rows().filter(**{f"{self.patient_path}__{field}": value})
        # A stable order (paging walks it): the model's own, else the primary key.
        rows = rows if rows.ordered else rows.order_by("pk")
        return [
            (fhir.versioned(resource), self.patient_of(row).uuid)
            for row in rows
            for resource in self.to_fhir(row)
        ]

    def read(self, resource_id: str) -> tuple[dict, UUID] | None:
        """The resource ``resource_id`` names, with its patient's id; None if it is none of ours."""
        row = self.rows().filter(uuid=_logical_id(resource_id)).first()
        if row is None:
            return None
        resource = next((r for r in self.to_fhir(row) if r["id"] == resource_id), None)
        return None if resource is None else (fhir.versioned(resource), self.patient_of(row).uuid)


@dataclass(frozen=True)
class Sources:
    """One resource type made from the rows of several sources, searched and read as one."""

    resource_type: str
    kind: Kind
    parts: tuple[Source, ...]

    def resources_for(self, field: str, value) -> list[tuple[dict, UUID]]:
        return [found for part in self.parts for found in part.resources_for(field, value)]

    def read(self, resource_id: str) -> tuple[dict, UUID] | None:
        return next((found for part in self.parts if (found := part.read(resource_id))), None)


PATIENTS = Source("Patient", Kind.CONTACT, Patient.objects.all, "", lambda row: [fhir.patient_resource(row)])
CONDITIONS = Source(
    "Condition",
    Kind.CLINICAL,
    lambda: Diagnosis.objects.select_related("patient").prefetch_related("muscle_rows"),
    "patient",
    lambda row: [fhir.condition_resource(row)],
)
PROCEDURES = Source(
    "Procedure",
    Kind.CLINICAL,
    lambda: (
        Treatment.objects.filter(kind__in=fhir.PROCEDURE_KINDS)
        .select_related("patient", "diagnosis", "mvd__redo_of")
        .prefetch_related("mvd__vessel_rows", "mvd__complications")
    ),
    "patient",
    lambda row: [fhir.procedure_resource(row)],
)
MEDICATION_STATEMENTS = Source(
    "MedicationStatement",
    Kind.CLINICAL,
    lambda: (
        Treatment.objects.filter(kind__in=fhir.MEDICATION_KINDS)
        .select_related("patient", "diagnosis", "medication", "botulinum_toxin")
        .prefetch_related("botulinum_toxin__injections")
    ),
    "patient",
    lambda row: [fhir.medication_statement_resource(row)],
)
APPOINTMENTS = Source(
    "Appointment",
    Kind.VISIT,
    lambda: Visit.objects.select_related("patient", "diagnosis", "slot"),
    "patient",
    lambda row: [fhir.appointment_resource(row)],
)
ASSESSMENT_OBSERVATIONS = Source(
    "Observation",
    Kind.ASSESSMENT,
    lambda: Assessment.objects.select_related("patient"),
    "patient",
    fhir.observation_resources,
)
LAB_OBSERVATIONS = Source(
    "Observation",
    Kind.ASSESSMENT,
    lambda: LabResult.objects.select_related("patient"),
    "patient",
    lambda row: [fhir.lab_observation_resource(row)],
)
# The scales of each assessment and the laboratory results, searched and read as one type: the
# roles that read assessments read lab results too (clinic.roles).
OBSERVATIONS = Sources("Observation", Kind.ASSESSMENT, (ASSESSMENT_OBSERVATIONS, LAB_OBSERVATIONS))
SENT_REMINDERS = Source(
    "Communication",
    Kind.REMINDER,
    # Only what was sent happened: a pending, failed or cancelled reminder is no communication.
    lambda: Reminder.objects.filter(status=ReminderStatus.SENT).select_related("visit__patient"),
    "visit__patient",
    lambda row: [fhir.communication_resource(row)],
)
CONTACT_ATTEMPTS = Source(
    "Communication",
    Kind.CONTACT,
    lambda: ContactAttempt.objects.select_related("patient", "visit"),
    "patient",
    lambda row: [fhir.contact_attempt_resource(row)],
)
# The sent reminders and the contact attempts (DOMAIN.md section 9), read as reminders are: the
# roles that read reminders read contact attempts too.
COMMUNICATIONS = Sources("Communication", Kind.REMINDER, (SENT_REMINDERS, CONTACT_ATTEMPTS))
SEARCHABLE = (CONDITIONS, PROCEDURES, MEDICATION_STATEMENTS, APPOINTMENTS, OBSERVATIONS, COMMUNICATIONS)


def _logical_id(value: str) -> UUID:
    """The UUID a logical id starts with (an Observation's id adds ``-<scale>``); else a 404."""
    try:
        return UUID(value[:UUID_LENGTH])
    except ValueError as error:
        raise Http404 from error


PATIENT_REFERENCE = re.compile(r"^(?:Patient/)?(?P<id>[0-9a-fA-F-]{36})$")
# What ``_patient_param`` takes, as the schema states it (it also forgives spaces around it).
PATIENT_PARAMETER = r"^(Patient/)?[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"


def _patient_param(request) -> UUID:
    values = request.query_params.getlist("patient")
    if len(values) != 1:
        raise exceptions.ValidationError({"patient": ["Search by one patient: ?patient=<id>."]})
    match = PATIENT_REFERENCE.match(values[0].strip())
    if match:
        try:
            return UUID(match["id"])
        except ValueError:
            pass
    raise exceptions.ValidationError({"patient": ["Give a Patient id (a UUID) or Patient/<id>."]})


# --- the clinic's sessions: Schedule and Slot, searched by their own parameters ----------------


@dataclass(frozen=True)
class SearchParam:
    """A search parameter of a clinic resource. Each occurrence narrows the rows, as FHIR reads a
    repeated parameter (AND); the comma-separated values of one occurrence are alternatives (OR)."""

    name: str
    type: str  # the FHIR search parameter type, as the CapabilityStatement lists it
    documentation: str
    narrow: Callable[[QuerySet, str], QuerySet]
    # One occurrence's value as the OpenAPI schema states it: what ``narrow`` takes and no more (it
    # also forgives spaces around the values), so that a client generated from the schema, or a
    # fuzzer, can tell a valid search from one it refuses.
    schema: dict
    repeats: bool = False  # given more than once for a range (start=ge...&start=le...)


def one_or_more(value: str) -> dict:
    """The schema of a parameter taking one value or several, separated by commas."""
    return {"type": "string", "pattern": f"^{value}(,{value})*$"}


UUID_TEXT = "[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
DAY_TEXT = search.DAY_TEXT


@dataclass(frozen=True)
class ClinicSource:
    """A resource type of the clinic's week: nobody's record, so no patient to search by or audit."""

    resource_type: str
    rows: Callable[[], QuerySet]
    to_fhir: Callable[[Any], dict]
    params: tuple[SearchParam, ...]

    def search(self, query) -> QuerySet:
        rows = self.rows()
        for param in self.params:
            for value in query.getlist(param.name):
                rows = param.narrow(rows, value)
        return rows


def _refused(name: str, message: str) -> exceptions.ValidationError:
    return exceptions.ValidationError({name: [message]})


def _alternatives(name: str, value: str) -> list[str]:
    values = [part.strip() for part in value.split(",")]
    if not all(values):
        raise _refused(name, "Give a value (or several, separated by commas).")
    return values


def _reference_id(resource_type: str, value: str) -> UUID | None:
    """The id of ``<id>`` or ``<type>/<id>``; None when it is neither."""
    match = re.fullmatch(rf"(?:{resource_type}/)?(?P<id>[0-9a-fA-F-]{{36}})", value)
    try:
        return UUID(match["id"]) if match else None
    except ValueError:
        return None


def _serving(template_path: str) -> Callable[[QuerySet, str], QuerySet]:
    """``service-type``: the kinds of visit served, our codes, with or without their system."""

    def narrow(rows: QuerySet, value: str) -> QuerySet:
        kinds = []
        for token in _alternatives("service-type", value):
            system, _, code = token.rpartition("|")
            if system not in ("", fhir.VISIT_KIND_SYSTEM) or code not in VisitKind.values:
                raise _refused(
                    "service-type",
                    f"Give a kind of visit ({', '.join(VisitKind.values)}), of {fhir.VISIT_KIND_SYSTEM}.",
                )
            kinds.append(code)
        served = SessionTemplateKind.objects.filter(template=OuterRef(template_path), visit_kind__in=kinds)
        return rows.filter(Exists(served))

    return narrow


def _in_force(rows: QuerySet, value: str) -> QuerySet:
    if value not in ("true", "false"):
        raise _refused("active", "Give true or false.")
    in_force = Q(valid_to__isnull=True) | Q(valid_to__gte=timezone.localdate())
    return rows.filter(in_force) if value == "true" else rows.exclude(in_force)


def _of_schedules(rows: QuerySet, value: str) -> QuerySet:
    ids = [_reference_id("Schedule", token) for token in _alternatives("schedule", value)]
    if None in ids:
        raise _refused("schedule", "Give a Schedule id (a UUID) or Schedule/<id>.")
    return rows.filter(session__template__uuid__in=ids)


START = re.compile(r"(?P<prefix>eq|ge|gt|le|lt)?(?P<day>[0-9]{4}-[0-9]{2}-[0-9]{2})")
DAY_LOOKUP = {"eq": "exact", "ge": "gte", "gt": "gt", "le": "lte", "lt": "lt"}


def _starting(rows: QuerySet, value: str) -> QuerySet:
    """``start``: the day a slot starts on in the clinic's calendar (its session's day)."""
    match = START.fullmatch(value.strip())
    try:
        on = parse_date(match["day"]) if match else None
    except ValueError:  # well-formed but no day: 2026-02-30
        on = None
    if on is None:
        raise _refused("start", "Give a day (YYYY-MM-DD), after ge, gt, le, lt or eq if need be.")
    return rows.filter(**{f"session__on__{DAY_LOOKUP[match['prefix'] or 'eq']}": on})


# As fhir.slot_status says: a cancelled session's slots are unavailable, a full slot is busy. No
# slot is held tentatively or entered in error.
SLOT_STATUS = {
    "free": Q(session__cancelled=False, booked__lt=F("capacity")),
    "busy": Q(session__cancelled=False, booked__gte=F("capacity")),
    "busy-unavailable": Q(session__cancelled=True),
    "busy-tentative": Q(pk__in=[]),
    "entered-in-error": Q(pk__in=[]),
}


def _with_status(rows: QuerySet, value: str) -> QuerySet:
    wanted = _alternatives("status", value)
    if not set(wanted) <= set(SLOT_STATUS):
        raise _refused("status", f"Give a slot status: {', '.join(SLOT_STATUS)}.")
    either = Q(pk__in=[])
    for status in wanted:
        either |= SLOT_STATUS[status]
    return rows.filter(either)


# A kind of visit, with or without its system (what ``_serving`` takes).
VISIT_KIND_SYSTEM_TEXT = fhir.VISIT_KIND_SYSTEM.replace(".", r"\.")
VISIT_KIND_TOKEN = rf"(({VISIT_KIND_SYSTEM_TEXT})?\|)?({'|'.join(VisitKind.values)})"
SERVICE_TYPE = one_or_more(VISIT_KIND_TOKEN)

SCHEDULES = ClinicSource(
    "Schedule",
    lambda: SessionTemplate.objects.prefetch_related("kind_rows").order_by("weekday", "starts_at", "id"),
    lambda row: fhir.schedule_resource(row, today=timezone.localdate()),
    (
        SearchParam(
            "active",
            "token",
            "true: the templates in force today or later; false: ended.",
            _in_force,
            {"type": "string", "enum": ["true", "false"]},
        ),
        SearchParam(
            "service-type", "token", "A kind of visit the sessions serve.", _serving("pk"), SERVICE_TYPE
        ),
    ),
)
SLOTS = ClinicSource(
    "Slot",
    lambda: (
        Slot.objects.select_related("session__template")
        .prefetch_related("session__template__kind_rows")
        .order_by("starts_at", "id")
    ),
    fhir.slot_resource,
    (
        SearchParam(
            "schedule",
            "reference",
            "The Schedule's id, or Schedule/<id>.",
            _of_schedules,
            one_or_more(f"(Schedule/)?{UUID_TEXT}"),
        ),
        SearchParam(
            "start",
            "date",
            "The day the slot starts on (YYYY-MM-DD, clinic calendar), after ge, gt, le, lt or eq; "
            "repeat it for a range.",
            _starting,
            {"type": "string", "pattern": f"^(eq|ge|gt|le|lt)?{DAY_TEXT}$"},
            repeats=True,
        ),
        SearchParam(
            "status",
            "token",
            f"One of {', '.join(SLOT_STATUS)}.",
            _with_status,
            one_or_more("(" + "|".join(SLOT_STATUS) + ")"),
        ),
        SearchParam(
            "service-type",
            "token",
            "A kind of visit the slot's session serves.",
            _serving("session__template"),
            SERVICE_TYPE,
        ),
    ),
)
CLINIC_SOURCES = (SCHEDULES, SLOTS)


def _sessions_held_by(patient: Patient) -> list[tuple[dict, UUID]]:
    """The slots the patient's visits hold and their Schedules: what the Appointments refer to."""
    slots = SLOTS.rows().filter(Exists(Visit.objects.filter(slot=OuterRef("pk"), patient=patient)))
    found, templates = [], {}
    for slot in slots:
        found.append((fhir.versioned(SLOTS.to_fhir(slot)), patient.uuid))
        templates.setdefault(slot.session.template_id, slot.session.template)
    return found + [
        (fhir.versioned(SCHEDULES.to_fhir(template)), patient.uuid) for template in templates.values()
    ]


# --- views --------------------------------------------------------------------------------------


ETAG = OpenApiParameter(
    "ETag",
    str,
    OpenApiParameter.HEADER,
    response=[200],
    description='W/"<meta.versionId>": the version read.',
)
READ_RESPONSES = {
    200: OpenApiResponse(OpenApiTypes.OBJECT, description="The resource"),
    304: NOT_MODIFIED,
    **ERRORS,
}
SEARCH_RESPONSES = {200: OpenApiResponse(OpenApiTypes.OBJECT, description="A searchset Bundle"), **ERRORS}


def _read_answer(request, resource: dict) -> Response:
    """A read: the resource, and its version as a weak ETag; 304 when the client holds that
    version already (If-None-Match: FHIR's conditional read)."""
    return read_answer(request, resource, f'W/"{resource["meta"]["versionId"]}"')


def result_parameters(resource_type: str) -> list[OpenApiParameter]:
    """The result parameters a search takes (FHIR R4 search, 3.1.1.5), as the schema states them."""
    date_name = search.DATE_OF[resource_type][0]
    return [
        OpenApiParameter(
            search.COUNT,
            search.NUMBER_SCHEMA,
            description=f"Page size (at most {search.MAX_COUNT}); the Bundle links the next and previous "
            "pages.",
        ),
        OpenApiParameter(
            search.OFFSET,
            search.NUMBER_SCHEMA,
            description="Where the page starts among the ordered matches (the paging links carry it).",
        ),
        OpenApiParameter(
            search.SUMMARY,
            {"type": "string", "enum": list(search.SUMMARIES)},
            description="count: the total only, no entries.",
        ),
        OpenApiParameter(
            search.TOTAL,
            {"type": "string", "enum": list(search.TOTALS)},
            description="none: no total in the Bundle; estimate or accurate (the default): the exact total.",
        ),
        OpenApiParameter(
            search.SORT,
            {"type": "string", "enum": search.sort_names(resource_type)},
            description=f"By date ({date_name}), oldest first, or newest first with a leading -; "
            "undated resources last. Without it, in the type's own order.",
        ),
        OpenApiParameter(
            search.ELEMENTS,
            search.ELEMENTS_SCHEMA,
            description="Only these top-level elements (with id, meta and the mandatory ones); "
            "the resources are tagged SUBSETTED.",
        ),
    ]


class ResourceRead(FhirView):
    """``GET /fhir/<type>/<id>``: the resource, with ``meta.versionId`` and an ETag."""

    source: Source | Sources = PATIENTS

    def get_kind(self):
        return self.source.kind

    def operation_id(self) -> str:
        return f"fhir_{self.source.resource_type}_read"

    @extend_schema(
        tags=["FHIR"],
        summary="Read one resource",
        parameters=[FORMAT, ETAG, IF_NONE_MATCH],
        responses=READ_RESPONSES,
    )
    def get(self, request, id):
        found = self.source.read(id)
        if found is None:
            raise Http404
        resource, patient = found
        resource = self.as_role_sees(resource)
        self.audit([(resource["resourceType"], resource["id"], patient)])
        return _read_answer(request, resource)


class ResourceSearch(FhirView):
    """``GET /fhir/<type>?patient=<id>``: a searchset of that patient's resources of the type."""

    source: Source | Sources = CONDITIONS
    query_params = ("patient", *search.RESULT_PARAMS)

    def get_kind(self):
        return self.source.kind

    def operation_id(self) -> str:
        return f"fhir_{self.source.resource_type}_search"

    def schema_parameters(self) -> list[OpenApiParameter]:
        return result_parameters(self.source.resource_type)

    @extend_schema(
        tags=["FHIR"],
        summary="Search a patient's resources",
        parameters=[
            OpenApiParameter(
                "patient",
                {"type": "string", "pattern": PATIENT_PARAMETER},
                required=True,
                description="The patient's id, or Patient/<id>.",
            ),
            FORMAT,
        ],
        responses=SEARCH_RESPONSES,
    )
    def get(self, request):
        patient = _patient_param(request)
        result = search.Result.of(request.query_params, self.source.resource_type)
        found = [(self.as_role_sees(r), uuid) for r, uuid in self.source.resources_for("uuid", patient)]
        return self.searchset(found, result, empty_audit=(self.source.resource_type, "", patient))


# What ``$everything`` holds, in the order of its Bundle (the patient first).
EVERYTHING_TYPES = ("Patient", *(source.resource_type for source in SEARCHABLE), "Slot", "Schedule")


class PatientEverything(FhirView):
    """``GET /fhir/Patient/<id>/$everything``: the patient and every resource above about them,
    narrowed by ``_since`` and ``_type``, paged by ``_count``."""

    kind = Kind.CLINICAL
    query_params = search.EVERYTHING_PARAMS

    def operation_id(self) -> str:
        return "fhir_Patient_everything"

    @extend_schema(
        tags=["FHIR"],
        summary="Everything about one patient",
        parameters=[
            FORMAT,
            OpenApiParameter(
                search.SINCE,
                search.INSTANT_SCHEMA,
                description="Only the resources changed at or after this instant (those that keep no "
                "time of change, Slot, are always given).",
            ),
            OpenApiParameter(
                search.TYPE,
                one_or_more("(" + "|".join(EVERYTHING_TYPES) + ")"),
                description="Only resources of these types (separated by commas).",
            ),
            *[
                param
                for param in result_parameters("Appointment")
                if param.name in (search.COUNT, search.OFFSET)
            ],
        ],
        responses=SEARCH_RESPONSES,
    )
    def get(self, request, id):
        patient = PATIENTS.rows().filter(uuid=_logical_id(id)).first()
        if patient is None or str(patient.uuid) != id:
            raise Http404
        since = search.since_param(request.query_params)
        types = search.types_param(request.query_params, EVERYTHING_TYPES)
        # Paging only: $everything takes no other result parameter (refused as unknown, or ignored
        # under lenient handling, so never read here).
        result = search.Result(
            count=search.page_count(request.query_params), offset=search.page_offset(request.query_params)
        )
        found = [(fhir.versioned(fhir.patient_resource(patient)), patient.uuid)]
        for source in SEARCHABLE:
            if types is None or source.resource_type in types:
                found += source.resources_for("pk", patient.pk)
        if types is None or {"Slot", "Schedule"} & types:
            found += _sessions_held_by(patient)
        found = [
            (resource, uuid)
            for resource, uuid in found
            if (types is None or resource["resourceType"] in types)
            and (since is None or search.changed_since(resource, since))
        ]
        # A stable order for paging: by type as listed, then as each type's search orders it.
        found.sort(key=lambda item: EVERYTHING_TYPES.index(item[0]["resourceType"]))
        shown = search.page(found, offset=result.offset, count=result.count)
        # An answer that shows no resource still tells the patient exists (and how much they have).
        self.audit(
            [(r["resourceType"], r["id"], uuid) for r, uuid in shown] or [("Patient", "", patient.uuid)]
        )
        links = search.page_links(
            request.build_absolute_uri(request.path),
            self.used_params(),
            offset=result.offset,
            count=result.count,
            total=len(found),
        )
        body = fhir.bundle(
            base=self.base_url(),
            resources=[r for r, _ in shown],
            total=len(found),
            links=links,
            outcome=self.ignored_outcome(),
        )
        return Response(body)


class ClinicRead(FhirView):
    """``GET /fhir/Schedule/<id>`` or ``/fhir/Slot/<id>``."""

    kind = Kind.VISIT
    source: ClinicSource = SLOTS

    def operation_id(self) -> str:
        return f"fhir_{self.source.resource_type}_read"

    @extend_schema(
        tags=["FHIR"],
        summary="Read one resource of the clinic's sessions",
        parameters=[FORMAT, ETAG, IF_NONE_MATCH],
        responses=READ_RESPONSES,
    )
    def get(self, request, id):
        row = self.source.rows().filter(uuid=_logical_id(id)).first()
        if row is None or str(row.uuid) != id:
            raise Http404
        return _read_answer(request, fhir.versioned(self.source.to_fhir(row)))


class ClinicSearch(FhirView):
    """``GET /fhir/Schedule?...`` or ``/fhir/Slot?...``: a searchset by the type's own parameters;
    without any, every one there is."""

    kind = Kind.VISIT
    source: ClinicSource = SLOTS

    @property
    def query_params(self) -> tuple[str, ...]:
        return (*(param.name for param in self.source.params), *search.RESULT_PARAMS)

    def operation_id(self) -> str:
        return f"fhir_{self.source.resource_type}_search"

    def schema_parameters(self) -> list[OpenApiParameter]:
        return [
            *(
                OpenApiParameter(
                    param.name,
                    {"type": "array", "items": param.schema} if param.repeats else param.schema,
                    description=param.documentation,
                    explode=True if param.repeats else None,
                )
                for param in self.source.params
            ),
            *result_parameters(self.source.resource_type),
        ]

    @extend_schema(
        tags=["FHIR"], summary="Search the clinic's sessions", parameters=[FORMAT], responses=SEARCH_RESPONSES
    )
    def get(self, request):
        result = search.Result.of(request.query_params, self.source.resource_type)
        rows = self.source.search(request.query_params)
        return self.searchset([(fhir.versioned(self.source.to_fhir(row)), None) for row in rows], result)


SERVED = (
    fhir.Served("Patient", operations=(("everything", EVERYTHING),)),
    *(
        fhir.Served(
            source.resource_type,
            search_params=(("patient", "reference", "The patient's id, or Patient/<id>; required."),),
        )
        for source in SEARCHABLE
    ),
    *(
        fhir.Served(
            source.resource_type,
            search_params=tuple((param.name, param.type, param.documentation) for param in source.params),
        )
        for source in CLINIC_SOURCES
    ),
)


class Metadata(FhirView):
    """``GET /fhir/metadata``: open to anyone, as FHIR clients expect; it holds no patient data."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    kind = None

    def operation_id(self) -> str:
        return "fhir_metadata"

    @extend_schema(
        tags=["FHIR"],
        summary="The CapabilityStatement",
        parameters=[FORMAT],
        responses={
            200: OpenApiResponse(OpenApiTypes.OBJECT, description="CapabilityStatement"),
            400: ERRORS[400],
            406: ERRORS[406],
            429: ERRORS[429],
        },
    )
    def get(self, request):
        statement = fhir.capability_statement(
            base=self.base_url(), served=SERVED, date_changed=CAPABILITY_DATE, software=SOFTWARE
        )
        return Response(statement)
