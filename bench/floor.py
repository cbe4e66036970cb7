"""The floor: plain Django views answering the same JSON as the API's pages, each from one ``.values()``
query, for the load test to measure the API against (BENCHMARKS.md).

Bench only (``bench.urls``), never routed by the product. No authentication, throttle, audit, role
check or serializer: what is left is Django, the database and JSON, the least any endpoint serving
these rows could cost. The rows, their order, the page size and the field names are the API's.

The **duty floor** (``/bench/duty-floor/``) is the same views plus what every API request owes
the clinic whatever framework answers it, done by the product's own functions: find the client
of the key (one query), check its role, count it against its rate (one Redis round trip), and
write the audit rows of what it was shown (one INSERT). The API measured against it shows what
DRF and the read path cost; against the plain floor, what the duties cost too.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.http import Http404, JsonResponse
from django.utils import timezone

from clinic.api_auth import ClientRateThrottle
from clinic.api_clients import api_client_for_key
from clinic.audit import audit_record
from clinic.roles import Kind, may
from followups.models import TreatmentOutcome, Visit
from patients.models import Patient
from patients.services import PATIENT_FIELDS

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500

PATIENT = {"id": "uuid", **{name: name for name in PATIENT_FIELDS}, "archived": "archived"}
PATIENT |= {"created_at": "created_at", "updated_at": "updated_at"}
VISIT = {
    "id": "uuid",
    "patient": "patient__uuid",
    "treatment": "treatment__uuid",
    "purpose": "purpose",
    "scheduled_for": "scheduled_for",
    "window_start": "window_start",
    "window_end": "window_end",
    "status": "status",
    "source": "source",
    "cancel_reason": "cancel_reason",
    "sequence": "sequence",
    "rebooked_from": "rebooked_from__uuid",
    "rebooked_as": "rebooked_as__uuid",
    "created_at": "created_at",
    "updated_at": "updated_at",
}
OUTCOME = {
    "treatment": "treatment__uuid",
    "treatment_kind": "treatment__kind",
    "category": "category",
    "baseline_id": "baseline__uuid",
    "baseline_on": "baseline__assessed_on",
    "current_id": "current__uuid",
    "current_on": "current__assessed_on",
    "spasms_per_day_change_pct": "spasms_per_day_change_pct",
    "duration_change_pct": "duration_change_pct",
    "grade_change": "grade_change",
    "soriano_baron": "soriano_baron",
    "days_to_spasm_free": "days_to_spasm_free",
    "qol_meaningful_improvement": "qol_meaningful_improvement",
    "rule_version": "rule_version",
    "computed_at": "computed_at",
}


def _plain(value):
    # As the API writes them: date-times in the clinic's zone with their offset, decimals as numbers.
    if isinstance(value, datetime):
        return timezone.localtime(value).isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _rows(queryset, fields: dict[str, str]) -> list[dict]:
    return [
        {name: _plain(row[source]) for name, source in fields.items()}
        for row in queryset.values(*fields.values())
    ]


def _page_payload(request, queryset, fields: dict[str, str]) -> dict:
    size = min(int(request.GET.get("page_size", PAGE_SIZE)), MAX_PAGE_SIZE)
    # The API's cursor pages: newest row first, the next page after the last id shown.
    before = request.GET.get("before")
    if before:
        queryset = queryset.filter(pk__lt=int(before))
    rows = queryset.order_by("-pk").values("pk", *fields.values())[:size]
    results = [{name: _plain(row[source]) for name, source in fields.items()} for row in rows]
    following = f"{request.path}?page_size={size}&before={rows[len(rows) - 1]['pk']}" if rows else None
    return {"next": following, "previous": None, "results": results}


def _patients_list(request) -> dict:
    return _page_payload(request, Patient.objects.all(), PATIENT)


def _visits_list(request) -> dict:
    visits = Visit.objects.all()
    if "patient" in request.GET:
        visits = visits.filter(patient__uuid=request.GET["patient"])
    return _page_payload(request, visits, VISIT)


def _patient_detail(request, id) -> dict:
    rows = _rows(Patient.objects.filter(uuid=id), PATIENT)
    if not rows:
        raise Http404
    return rows[0]


def _patient_outcomes(request, id) -> list:
    rows = _rows(
        TreatmentOutcome.objects.filter(treatment__patient__uuid=id).order_by(
            "treatment__started_on", "treatment_id"
        ),
        OUTCOME,
    )
    for row in rows:
        for end in ("baseline", "current"):
            brief_id, brief_on = row.pop(f"{end}_id"), row.pop(f"{end}_on")
            row[end] = None if brief_id is None else {"id": brief_id, "assessed_on": brief_on}
        row["soriano_baron"] = row["soriano_baron"] or None
    return rows


def _plain_view(payload):
    def view(request, **kwargs):
        return JsonResponse(payload(request, **kwargs), safe=False)

    return view


def _duty_view(payload, *, kind: Kind, resource: str, targets):
    """The plain view after the API's duties: key, role, rate; then the audit of what it showed."""

    def view(request, **kwargs):
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        client = api_client_for_key(key.strip()) if scheme == "Token" else None
        if client is None:
            return JsonResponse({"detail": "Unknown or revoked key."}, status=401)
        request.user = client.user
        if not may(request.user, kind, write=False):
            return JsonResponse({"detail": "Not for this role."}, status=403)
        if not ClientRateThrottle().allow_request(request, None):
            return JsonResponse({"detail": "Throttled."}, status=429)
        body = payload(request, **kwargs)
        audit_record(
            request=request, channel="api", resource=resource, status=200, targets=targets(body, kwargs)
        )
        return JsonResponse(body, safe=False)

    return view


def _each_row(patient_field: str):
    return lambda body, kwargs: [(row["id"], row[patient_field]) for row in body["results"]]


# (payload, kind, audit resource, audit targets) of each endpoint; the same answers as the API's.
VIEWS = {
    "patients": (_patients_list, Kind.CONTACT, "patient", _each_row("id")),
    "patient": (_patient_detail, Kind.CONTACT, "patient", lambda body, kw: [(body["id"], body["id"])]),
    "outcomes": (
        _patient_outcomes,
        Kind.CLINICAL,
        "patient_outcomes",
        lambda body, kw: [(kw["id"], kw["id"])],
    ),
    "visits": (_visits_list, Kind.VISIT, "visit", _each_row("patient")),
}
plain = {name: _plain_view(payload) for name, (payload, *_) in VIEWS.items()}
with_duties = {
    name: _duty_view(payload, kind=kind, resource=resource, targets=targets)
    for name, (payload, kind, resource, targets) in VIEWS.items()
}
