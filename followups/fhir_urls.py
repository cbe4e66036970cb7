"""FHIR R4 read endpoints (API.md), under /fhir/; what they answer is in followups.fhir_views."""

from django.urls import path

from followups import fhir_views as views

app_name = "fhir"

urlpatterns = [
    path("metadata", views.Metadata.as_view(), name="metadata"),
    path("Patient/<str:id>/$everything", views.PatientEverything.as_view(), name="patient-everything"),
    path("Patient/<str:id>", views.ResourceRead.as_view(source=views.PATIENTS), name="patient-read"),
]
for _source in views.SEARCHABLE:
    _name = _source.resource_type.lower()
    urlpatterns += [
        path(_source.resource_type, views.ResourceSearch.as_view(source=_source), name=f"{_name}-search"),
        path(
            f"{_source.resource_type}/<str:id>",
            views.ResourceRead.as_view(source=_source),
            name=f"{_name}-read",
        ),
    ]
for _source in views.CLINIC_SOURCES:
    _name = _source.resource_type.lower()
    urlpatterns += [
        path(_source.resource_type, views.ClinicSearch.as_view(source=_source), name=f"{_name}-search"),
        path(
            f"{_source.resource_type}/<str:id>",
            views.ClinicRead.as_view(source=_source),
            name=f"{_name}-read",
        ),
    ]
