from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found

from clinic.api_docs import SchemaPage, SchemaView
from followups.fhir import operation_outcome
from followups.optout import opt_out


def healthz(request):
    """Liveness for the container's health check: answers without touching patient data."""
    return JsonResponse({"status": "ok"})


def not_found(request, exception):
    """A path that names nothing (``/api/v1/visits/0.5/``): in the API's own format under /api/ and
    /fhir/, as the schema documents every 404, and the HTML page elsewhere."""
    if request.path.startswith("/fhir/"):
        outcome = operation_outcome("not-found", ["No such resource."])
        return JsonResponse(outcome, status=404, content_type="application/fhir+json")
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": "Not found."}, status=404)
    return page_not_found(request, exception)


handler404 = not_found


admin.site.site_header = "HFS Follow-up"
admin.site.site_title = "HFS Follow-up"
admin.site.index_title = "Clinic"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("reminders/opt-out/<str:token>/", opt_out, name="reminders-opt-out"),
    # The pages a patient's booking and rebooking links open (followups.patient_links makes them).
    path("p/", include("followups.patient_pages.urls")),
    path("api/v1/", include("clinic.api_urls")),
    path("fhir/", include("followups.fhir_urls")),
    # For signed-in staff and API clients only (clinic.api_docs).
    path("api/schema/", SchemaView.as_view(), name="api-schema"),
    path("api/docs/", SchemaPage.as_view(url_name="api-schema"), name="api-docs"),
]
