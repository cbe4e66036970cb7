"""The API router: every resource of API.md under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from followups import api as followup_api
from followups.calls import api as call_api
from patients import api as record_api

STANDARD_ACTIONS = {"list", "create", "retrieve", "update", "partial_update", "destroy"}


class ResourceRouter(SimpleRouter):
    """Routes what a resource offers.

    ``ResourceViewSet`` defines every standard action, and a router routes every action a viewset
    has: a resource that offers fewer (read-only reminders, visits that change only by PATCH) names
    them in ``routed_actions``. Its extra actions (``@action``) are routed as always.
    """

    def get_method_map(self, viewset, method_map):
        bound = super().get_method_map(viewset, method_map)
        routed = getattr(viewset, "routed_actions", None)
        if routed is None:
            return bound
        return {
            method: name for method, name in bound.items() if name in routed or name not in STANDARD_ACTIONS
        }


router = ResourceRouter()
router.register("patients", record_api.PatientViewSet, basename="patient")
router.register("diagnoses", record_api.DiagnosisViewSet, basename="diagnosis")
router.register("imaging-studies", record_api.ImagingStudyViewSet, basename="imaging-study")
router.register("treatments", record_api.TreatmentViewSet, basename="treatment")

router.register("visits", followup_api.VisitViewSet, basename="visit")
router.register("assessments", followup_api.AssessmentViewSet, basename="assessment")
router.register("lab-results", followup_api.LabResultViewSet, basename="lab-result")
router.register("flags", followup_api.FlagViewSet, basename="flag")
router.register("reminders", followup_api.ReminderViewSet, basename="reminder")
router.register("session-templates", followup_api.SessionTemplateViewSet, basename="session-template")
router.register("sessions", followup_api.ClinicSessionViewSet, basename="clinic-session")
router.register("slots", followup_api.SlotViewSet, basename="slot")
router.register("worklists/overdue", followup_api.OverdueWorklistViewSet, basename="worklist-overdue")
router.register("worklists/due", followup_api.DueWorklistViewSet, basename="worklist-due")
router.register("worklists/flagged", followup_api.FlaggedWorklistViewSet, basename="worklist-flagged")
router.register("contact-attempts", call_api.ContactAttemptViewSet, basename="contact-attempt")
router.register("worklists/call-list", call_api.CallListViewSet, basename="worklist-call-list")
router.register(
    "worklists/lost-to-follow-up", call_api.LostToFollowUpViewSet, basename="worklist-lost-to-follow-up"
)

urlpatterns = [
    *router.urls,
    # Derived rows of one patient, served by followups (patients does not import followups).
    path(
        "patients/<uuid:id>/outcomes/",
        followup_api.PatientOutcomesView.as_view({"get": "retrieve"}),
        name="patient-outcomes",
    ),
    path(
        "patients/<uuid:id>/end-follow-up/",
        followup_api.PatientFollowUpView.as_view({"post": "end"}),
        name="patient-end-follow-up",
    ),
    path(
        "patients/<uuid:id>/resume-follow-up/",
        followup_api.PatientFollowUpView.as_view({"post": "resume"}),
        name="patient-resume-follow-up",
    ),
    path(
        "patients/<uuid:id>/flags/",
        followup_api.PatientFlagsView.as_view({"get": "retrieve"}),
        name="patient-flags",
    ),
]
