"""Stored flags (DOMAIN.md sections 4 and 8): the pure rules of ``followups.flags`` run over one
patient's record and written to ``PatientFlag``, inside the caller's transaction."""

from __future__ import annotations

from datetime import date

from django.utils import timezone

from followups import flags
from followups.models import PatientFlag
from followups.selectors import flag_inputs_for
from patients.models import Patient


def flags_sync(*, patient: Patient, today: date | None = None) -> list[PatientFlag]:
    """Store the flags that hold today and drop those that no longer do.

    A flag whose fact changed (a new ``since``) comes back unacknowledged; one whose fact stands
    keeps its acknowledgement, whatever its wording now says.
    """
    today = today or timezone.localdate()
    wanted = {
        (f.code, f.subject): f
        for f in flags.flags_for(flag_inputs_for(patient=patient, today=today), today=today)
    }
    current = {(f.code, f.subject): f for f in patient.flags.all()}
    stale = [flag.pk for key, flag in current.items() if key not in wanted]
    if stale:
        PatientFlag.objects.filter(pk__in=stale).delete()
    new = []
    for key, computed in wanted.items():
        flag = current.get(key)
        if flag is None:
            new.append(
                PatientFlag(
                    patient=patient,
                    code=computed.code,
                    subject=computed.subject,
                    detail=computed.detail,
                    since=computed.since,
                )
            )
            continue
        changed = {"detail": computed.detail, "since": computed.since}
        if flag.since != computed.since:
            changed.update(acknowledged_by=None, acknowledged_at=None, note="")
        if any(getattr(flag, name) != value for name, value in changed.items()):
            for name, value in changed.items():
                setattr(flag, name, value)
            flag.save(update_fields=list(changed))
    PatientFlag.objects.bulk_create(new)
    return list(patient.flags.all())
