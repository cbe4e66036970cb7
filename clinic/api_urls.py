"""The API router: every resource of API.md under /api/v1/."""

from rest_framework.routers import SimpleRouter

from patients import api as record_api

router = SimpleRouter()
router.register("patients", record_api.PatientViewSet, basename="patient")
router.register("diagnoses", record_api.DiagnosisViewSet, basename="diagnosis")
router.register("imaging-studies", record_api.ImagingStudyViewSet, basename="imaging-study")
router.register("treatments", record_api.TreatmentViewSet, basename="treatment")

urlpatterns = router.urls
