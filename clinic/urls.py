from django.contrib import admin
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import include, path, reverse
from django.views.defaults import page_not_found, permission_denied

from clinic.api_docs import SchemaPage, SchemaView
from clinic.roles import Kind, may, role_of
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


# What a refusal names, in a sentence: "Your role (Front desk) does not include the clinical record."
KIND_WORDS = {
    Kind.CONTACT: "patients' contact data",
    Kind.CLINICAL: "the clinical record",
    Kind.VISIT: "visits",
    Kind.ASSESSMENT: "assessments",
    Kind.REMINDER: "reminders",
    Kind.LAB_RESULT: "laboratory results",
}


def forbidden(request, exception):
    """A staff member refused a page of the panel gets the panel's own page: its header, the way
    back, who they are signed in as and why. Anything else (the API and FHIR answer their own JSON
    403s before this is reached, the patients' pages) keeps Django's plain page."""
    user = getattr(request, "user", None)
    if not (request.path.startswith(reverse("admin:index")) and user and user.is_active and user.is_staff):
        return permission_denied(request, exception)
    role = role_of(user)
    context = {
        **admin.site.each_context(request),
        "title": "Not open to your role",
        "role_label": role.label if role else "no role",
        "why": str(exception) or refusal_reason(request, user, role),
    }
    return render(request, "admin/403.html", context, status=403)


def refusal_reason(request, user, role) -> str:
    who = f"Your role ({role.label})" if role else "Your account has no role yet, so it"
    general = f"{who} does not open this page. Ask a clinician or the clinic's administrator if you need it."
    # A model admin's own pages carry it (Django's ``wrapper.model_admin``), and with it the kind of
    # record the page shows; the panel's other pages say less.
    model_admin = getattr(request.resolver_match and request.resolver_match.func, "model_admin", None)
    if model_admin is None:
        return general
    kind = getattr(model_admin, "kind", None)
    if kind is None:
        return "This page is for the clinic's administrators only."
    if not may(user, kind, write=False):
        return f"{who} does not include {KIND_WORDS[kind]}. Ask a clinician if you need something from it."
    if not may(user, kind, write=True):
        return f"{who} may only read {KIND_WORDS[kind]} here. Ask a clinician to make the change."
    return general


handler403 = forbidden
handler404 = not_found


admin.site.site_header = "HFS Follow-up"
# The app list beside every page took 300 of the 1280 px a clinic screen has, and cut off the
# lists' right-hand columns (their actions); the dashboard and the breadcrumbs lead everywhere.
admin.site.enable_nav_sidebar = False
admin.site.site_title = "HFS Follow-up"
admin.site.index_title = "Clinic"
# There is no public site to view: the admin's "View site" link would open a 404.
admin.site.site_url = None

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
