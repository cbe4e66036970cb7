from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from followups.optout import opt_out


def healthz(request):
    """Liveness for the container's health check: answers without touching patient data."""
    return JsonResponse({"status": "ok"})


admin.site.site_header = "HFS Follow-up"
admin.site.site_title = "HFS Follow-up"
admin.site.index_title = "Clinic"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("reminders/opt-out/<str:token>/", opt_out, name="reminders-opt-out"),
    path("api/v1/", include("clinic.api_urls")),
    path("fhir/", include("followups.fhir_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
]
