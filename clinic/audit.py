"""Recording who read or changed a patient's data (API, FHIR and admin alike)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from uuid import UUID

from clinic.models import AuditEvent

ACTION_FOR_METHOD = {
    "GET": AuditEvent.Action.READ,
    "HEAD": AuditEvent.Action.READ,
    "POST": AuditEvent.Action.CREATE,
    "PUT": AuditEvent.Action.UPDATE,
    "PATCH": AuditEvent.Action.UPDATE,
    "DELETE": AuditEvent.Action.DELETE,
}


def _ip(value) -> str | None:
    try:
        return str(ipaddress.ip_address(str(value).strip()))
    except ValueError:
        return None


def _remote_addr(request) -> str | None:
    """Where the request came from: an IP address, or None.

    Behind the proxy REMOTE_ADDR is the proxy, and the client is the hop the proxy appended last to
    X-Forwarded-For; whatever comes before it was sent by the client and proves nothing. A value
    that is not an address is dropped, so a forged header can neither fail the request nor end up
    in the trail.
    """
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    return _ip(forwarded.split(",")[-1]) or _ip(request.META.get("REMOTE_ADDR", ""))


def audit_record(
    *,
    request,
    channel: str,
    resource: str,
    status: int,
    targets: Iterable[tuple[str, UUID | None]],
    action: str | None = None,
) -> None:
    """One row per (object, patient) touched; a list page writes one row per row it showed."""
    user = getattr(request, "user", None)
    actor_id = user.pk if user is not None and user.is_authenticated else None
    actor = user.get_username() if actor_id else "anonymous"
    action = action or ACTION_FOR_METHOD.get(request.method, AuditEvent.Action.READ)
    common = {
        "actor_id": actor_id,
        "actor": actor,
        "channel": channel,
        "action": action,
        "resource": resource,
        "method": request.method,
        "path": request.path[:300],
        "status": status,
        "remote_addr": _remote_addr(request),
    }
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(object_id=str(object_id), patient_id=patient_id, **common)
            for object_id, patient_id in targets
        ]
    )
