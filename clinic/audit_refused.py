"""Refused requests for a patient's data in the audit trail (HIPAA 164.312(b) asks for attempts).

The views audit what they showed or changed (status < 400); this middleware adds what they refused:
a 401, 403 or 404 on a patient's resource in the API, FHIR or the admin. A patient's resource is:

- API: a route of a ``ResourceViewSet`` whose rows reach a patient (the clinic's week of templates,
  sessions and slots is nobody's); the row its path names gives the patient, in one query.
- FHIR: every type but the server's ``metadata`` and the clinic's ``Schedule`` and ``Slot``; the
  patient is known when the path or the ``patient`` search parameter names one.
- admin: the pages of a model whose admin is an ``AuditedAdmin``; the row its path names gives the
  patient.

A list or search refused as a whole is recorded once, with no object. A path that names no route
(the URL resolver's own 404) names no resource either. An id that is malformed or names nothing
just leaves the patient empty: nothing here may turn a refusal into a 500.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from uuid import UUID

from django.apps import apps
from django.contrib import admin
from django.contrib.admin.exceptions import NotRegistered
from django.core.exceptions import FieldDoesNotExist

from clinic.admin_services import AuditedAdmin, row_id
from clinic.api import ResourceViewSet
from clinic.audit import audit_record

REFUSALS = frozenset({401, 403, 404})
API_PREFIX = "/api/v1/"
FHIR_PREFIX = "/fhir/"
ADMIN_PREFIX = "/admin/"
FHIR_NOT_A_PATIENTS = frozenset({"metadata", "Schedule", "Slot"})


@dataclass(frozen=True)
class RefusedTarget:
    channel: str
    resource: str
    object_id: str = ""
    patient_id: UUID | None = None


class RefusedRequestAudit:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if response.status_code in REFUSALS:
            target = refused_target(request)
            if target is not None:
                audit_record(
                    request=request,
                    channel=target.channel,
                    resource=target.resource,
                    status=response.status_code,
                    targets=[(target.object_id, target.patient_id)],
                )
        return response


def refused_target(request) -> RefusedTarget | None:
    """What a refused request asked for, if it is a patient's resource."""
    path = request.path
    if request.resolver_match is None:
        return None
    if path.startswith(API_PREFIX):
        return _api_target(request)
    if path.startswith(FHIR_PREFIX):
        return _fhir_target(request)
    if path.startswith(ADMIN_PREFIX):
        return _admin_target(path.removeprefix(ADMIN_PREFIX))
    return None


# --- API ----------------------------------------------------------------------------------------


def _api_target(request) -> RefusedTarget | None:
    match = request.resolver_match
    view = getattr(match.func, "cls", None)
    if not (isinstance(view, type) and issubclass(view, ResourceViewSet)) or not _reaches_a_patient(view):
        return None
    named = _uuid(match.kwargs.get(view.lookup_url_kwarg))
    if named is None:
        object_id = str(match.kwargs.get(view.lookup_url_kwarg, ""))[:64]
        return RefusedTarget("api", view.resource, object_id, _patient_named(request.GET.get("patient")))
    return RefusedTarget("api", view.resource, str(named), _patient_of_row(view, named))


@cache
def _reaches_a_patient(view: type[ResourceViewSet]) -> bool:
    """Whether the view's rows belong to patients (its ``patient_lookup`` leads somewhere)."""
    queryset = getattr(view, "queryset", None)
    if queryset is None:  # patient-nested routes and worklists: rows of patients, built per request
        return True
    model = queryset.model
    try:
        for name in view.patient_lookup.split("__"):
            field = model._meta.get_field(name)
            model = field.related_model or model
    except FieldDoesNotExist:
        return False
    return True


def _patient_of_row(view: type[ResourceViewSet], named: UUID) -> UUID | None:
    if view.patient_lookup == "uuid":  # the path names the patient (patients/<id>/...)
        return _patient_named(named)
    if getattr(view, "queryset", None) is None:
        return None
    rows = view.queryset.model._default_manager.filter(uuid=named)
    return rows.values_list(view.patient_lookup, flat=True).first()


# --- FHIR ---------------------------------------------------------------------------------------


def _fhir_target(request) -> RefusedTarget | None:
    resource_type, _, rest = request.path.removeprefix(FHIR_PREFIX).partition("/")
    if not resource_type or resource_type in FHIR_NOT_A_PATIENTS:
        return None
    resource_id = rest.split("/", 1)[0][:64]
    if resource_type == "Patient" and resource_id:
        return RefusedTarget("fhir", resource_type, resource_id, _patient_named(resource_id))
    patient = request.GET.get("patient", "").removeprefix("Patient/")
    return RefusedTarget("fhir", resource_type, resource_id, _patient_named(patient))


# --- admin --------------------------------------------------------------------------------------


def _admin_target(rest: str) -> RefusedTarget | None:
    app_label, model_name, object_id, *_ = [*rest.split("/"), "", "", ""]
    try:
        model = apps.get_model(app_label, model_name)
    except (LookupError, ValueError):
        return None
    try:
        model_admin = admin.site.get_model_admin(model)
    except NotRegistered:
        return None
    if not isinstance(model_admin, AuditedAdmin):
        return None
    pk = row_id(object_id)
    if pk is None:
        return RefusedTarget("admin", model._meta.model_name)
    row = model._default_manager.filter(pk=pk).first()
    patient = model_admin.audit_patient(row) if row is not None else None
    return RefusedTarget("admin", model._meta.model_name, str(pk), patient)


# --- ids ----------------------------------------------------------------------------------------


def _uuid(value) -> UUID | None:
    try:
        return UUID(str(value))
    except (TypeError, ValueError):
        return None


def _patient_named(value) -> UUID | None:
    """The patient's public id when ``value`` is one that exists; None for anything else."""
    named = _uuid(value) if value else None
    if named is None:
        return None
    patient = apps.get_model("patients", "Patient")
    return named if patient._default_manager.filter(uuid=named).exists() else None
