"""The one-click opt-out of e-mail reminders: a signed link, no login (DOMAIN.md section 6).

The token names the patient by their public id only and never expires: an opt-out link in an
old e-mail must still work. Opening the link shows a page with one button (mail scanners that
fetch links change nothing); the button, or a mail client's RFC 8058 one-click POST, records it.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from simple_history.utils import update_change_reason

from clinic.audit import audit_record
from clinic.models import AuditEvent
from followups.patient_links import OPT_OUT, LinkInvalid, link_read
from patients.models import Patient
from patients.services import patient_reminders_withdraw

# Who withdrew consent, in the audit trail and the patient's history: nobody logged in, the link did.
LINK_ACTOR = "patient-link"
LINK_CHANNEL = "patient"
OPT_OUT_REASON = "opt-out by the patient's link"


def _patient_for(token: str) -> Patient:
    try:
        public_id = link_read(token, OPT_OUT).public_id
    except LinkInvalid as error:
        raise Http404("This link is not valid.") from error
    try:
        return Patient.objects.get(uuid=public_id)
    except (Patient.DoesNotExist, ValidationError) as error:
        raise Http404("This link is not valid.") from error


@csrf_exempt  # the signed token is the credential; mail clients post without a form
@require_http_methods(["GET", "POST"])
def opt_out(request, token: str):
    patient = _patient_for(token)
    context = {"clinic_name": settings.CLINIC_NAME, "clinic_phone": settings.CLINIC_PHONE}
    if request.method == "GET":
        return render(request, "followups/optout/confirm.html", context)
    if patient.email_reminders:
        _consent_withdraw(request, patient)
    if request.POST.get("List-Unsubscribe") == "One-Click":
        return HttpResponse(_("You will receive no more e-mail reminders."), content_type="text/plain")
    return render(request, "followups/optout/done.html", context)


@transaction.atomic
def _consent_withdraw(request, patient: Patient) -> None:
    """A consent change like any other: a history row that says how, and an audit row with ids only."""
    patient = patient_reminders_withdraw(patient=patient)
    update_change_reason(patient, OPT_OUT_REASON)
    audit_record(
        request=request,
        channel=LINK_CHANNEL,
        resource="patient",
        status=200,
        targets=[(patient.uuid, patient.uuid)],
        action=AuditEvent.Action.UPDATE,
        actor=LINK_ACTOR,
    )
