"""FHIR R4 read endpoints (API.md), filled in by followups.fhir."""

urlpatterns: list = []
