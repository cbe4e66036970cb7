"""Stored flags (DOMAIN.md sections 4 and 8): the pure rules of ``followups.flags`` run over one
patient's record and written to ``PatientFlag``, inside the caller's transaction."""

from __future__ import annotations

from datetime import date

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS
from django.db import transaction
from django.utils import timezone
from simple_history.utils import bulk_create_with_history

from clinic.errors import FieldErrors
from clinic.roles import Role, role_of
from followups import flags
from followups.codes import FlagAcknowledgeError as E
from followups.models import PatientFlag
from followups.selectors import flag_inputs_for
from patients.models import Patient
from patients.services import patient_lock


def flags_sync(*, patient: Patient, today: date | None = None) -> list[PatientFlag]:
    """Store the flags that hold today and drop those that no longer do.

    A flag whose fact changed (a new ``since``) comes back unacknowledged; one whose fact stands
    keeps its acknowledgement, whatever its wording now says.
    """
    today = today or timezone.localdate()
    wanted = {
        (f.code, f.subject): f
        for f in flags.flags_for(
            flag_inputs_for(patient=patient, today=today),
            today=today,
            lost_after_days=settings.LOST_TO_FOLLOW_UP_DAYS,
        )
    }
    current = {(f.code, f.subject): f for f in patient.flags.all()}
    for key, flag in current.items():
        if key not in wanted:
            flag.delete()  # one by one, so that the history keeps its last state (and acknowledgement)
    new = []
    for key, computed in wanted.items():
        flag = current.get(key)
        if flag is None:
            new.append(
                PatientFlag(
                    patient=patient,
                    code=computed.code,
                    subject=computed.subject,
                    visit_id=computed.visit_id,
                    detail=computed.detail,
                    since=computed.since,
                )
            )
            continue
        changed = {"detail": computed.detail, "since": computed.since, "visit_id": computed.visit_id}
        if flag.since != computed.since:
            changed.update(acknowledged_by=None, acknowledged_at=None, note="")
        if any(getattr(flag, name) != value for name, value in changed.items()):
            for name, value in changed.items():
                setattr(flag, name, value)
            flag.save(update_fields=list(changed))
    if new:
        bulk_create_with_history(new, PatientFlag)
    return list(patient.flags.all())


ACKNOWLEDGE_NOTE_MAX = 500


@transaction.atomic
def flag_acknowledge(*, flag: PatientFlag, by, note: str) -> PatientFlag:
    """A clinician has seen the flag (DOMAIN.md 8 v2): it stays on the patient's page, marked by
    whom and when with the note, and leaves the flagged worklist until its fact changes."""
    patient_lock(flag.patient)
    errors = FieldErrors()
    current = PatientFlag.objects.select_related("patient").filter(pk=flag.pk).first()
    if current is None:  # a refresh took it away while the clinician was reading it
        errors.add(NON_FIELD_ERRORS, "This flag no longer holds: nothing to acknowledge.", E.FLAG_GONE)
        errors.raise_if_any()
    flag = current
    if role_of(by) != Role.CLINICIAN:
        errors.add(NON_FIELD_ERRORS, "Only a clinician acknowledges a flag.", E.NOT_A_CLINICIAN)
    note = (note or "").strip()
    if not note:
        errors.add(
            "note", "Say what was decided (for example: the patient declines surgery).", E.NOTE_REQUIRED
        )
    elif len(note) > ACKNOWLEDGE_NOTE_MAX:
        errors.add("note", f"Keep the note to {ACKNOWLEDGE_NOTE_MAX} characters.", E.NOTE_TOO_LONG)
    errors.raise_if_any()
    flag.acknowledged_by, flag.acknowledged_at, flag.note = by, timezone.now(), note
    flag.save(update_fields=["acknowledged_by", "acknowledged_at", "note"])
    return flag
