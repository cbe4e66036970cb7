"""The floor: plain Django views answering the same JSON as the API's pages, each from one ``.values()``
query, for the load test to measure the API against (BENCHMARKS.md).

Bench only (``bench.urls``), never routed by the product. No authentication, throttle, audit, role
check or serializer: what is left is Django, the database and JSON, the least any endpoint serving
these rows could cost. The rows, their order, the page size and the field names are the API's.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.http import Http404, JsonResponse
from django.utils import timezone

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


def _page(request, queryset, fields: dict[str, str]) -> JsonResponse:
    size = min(int(request.GET.get("page_size", PAGE_SIZE)), MAX_PAGE_SIZE)
    # The API's cursor pages: newest row first, the next page after the last id shown.
    before = request.GET.get("before")
    if before:
        queryset = queryset.filter(pk__lt=int(before))
    rows = queryset.order_by("-pk").values("pk", *fields.values())[:size]
    results = [{name: _plain(row[source]) for name, source in fields.items()} for row in rows]
    following = f"{request.path}?page_size={size}&before={rows[len(rows) - 1]['pk']}" if rows else None
    return JsonResponse({"next": following, "previous": None, "results": results})


def patients_list(request):
    return _page(request, Patient.objects.all(), PATIENT)


def visits_list(request):
    visits = Visit.objects.all()
    if "patient" in request.GET:
        visits = visits.filter(patient__uuid=request.GET["patient"])
    return _page(request, visits, VISIT)


def patient_detail(request, id):
    rows = _rows(Patient.objects.filter(uuid=id), PATIENT)
    if not rows:
        raise Http404
    return JsonResponse(rows[0])


def patient_outcomes(request, id):
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
    return JsonResponse(rows, safe=False)
