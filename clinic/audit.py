"""Recording who read or changed a patient's data (API, FHIR and admin alike)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import cache
from uuid import UUID

from django.db import connection
from django.utils import timezone

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
    targets = [(str(object_id), patient_id) for object_id, patient_id in targets]
    if connection.vendor == "postgresql":
        _insert_unnested(common, targets)
    else:
        AuditEvent.objects.bulk_create(
            [
                AuditEvent(object_id=object_id, patient_id=patient_id, **common)
                for object_id, patient_id in targets
            ]
        )


def _insert_unnested(common: dict, targets: list[tuple[str, UUID | None]]) -> None:
    """One INSERT ... SELECT FROM unnest() for a page of rows.

    A list page audits up to 500 rows; compiling them through bulk_create cost more than the rest
    of the request (bench: 2-3 ms of a 10 ms page of 50). Only the object and patient ids vary.
    """
    if not targets:
        return
    object_ids, patient_ids = zip(*targets, strict=True)
    with connection.cursor() as cursor:
        cursor.execute(
            _unnested_sql(tuple(common)),
            [timezone.now(), *common.values(), list(object_ids), list(patient_ids)],
        )


@cache
def _unnested_sql(common: tuple[str, ...]) -> str:
    fields = {f.name: f for f in AuditEvent._meta.concrete_fields}
    constant = ("at", *common)
    quote = connection.ops.quote_name
    columns = ", ".join(quote(fields[name].column) for name in (*constant, "object_id", "patient_id"))
    values = ", ".join(f"%s::{fields[name].db_type(connection)}" for name in constant)
    return (
        f"INSERT INTO {quote(AuditEvent._meta.db_table)} ({columns}) "
        f"SELECT {values}, t.object_id, t.patient_id "
        "FROM unnest(%s::text[], %s::uuid[]) AS t(object_id, patient_id)"
    )
