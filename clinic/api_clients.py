"""API clients: create one (its key shown once), find it from a key, revoke it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import OuterRef
from django.utils import timezone

from clinic.models import ApiClient
from clinic.roles import Role, group_for, remember_role, role_column

# last_used_at is a hint for staff, not a log: one write a minute per client is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@transaction.atomic
def api_client_create(*, name: str, role: str) -> tuple[ApiClient, str]:
    """Create a client in ``role``; answer it and its key, which is never stored nor shown again."""
    if role not in Role.values:
        raise ValidationError({"role": [f"Choose one of: {', '.join(Role.values)}."]})
    max_length = ApiClient._meta.get_field("name").max_length
    if not name or len(name) > max_length:
        raise ValidationError({"name": [f"Give a name of 1 to {max_length} characters."]})
    if ApiClient.objects.filter(name=name).exists():
        raise ValidationError({"name": ["Give a name no other client has."]})
    user = get_user_model().objects.create(username=f"api:{name}"[:150], is_staff=False)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    user.groups.add(group_for(Role(role)))
    prefix = secrets.token_hex(6)
    key = f"{prefix}.{secrets.token_urlsafe(32)}"
    client = ApiClient.objects.create(name=name, user=user, key_prefix=prefix, key_hash=_hash(key))
    return client, key


def api_client_for_key(key: str) -> ApiClient | None:
    # Keys are printable ASCII; anything else (a NUL byte, which PostgreSQL refuses in a query)
    # cannot be one, and is answered like any other unknown key instead of reaching the database.
    if not key.isascii() or not key.isprintable():
        return None
    prefix, _, _ = key.partition(".")
    client = (
        ApiClient.objects.select_related("user")
        .annotate(role=role_column(OuterRef("user_id")))
        .filter(key_prefix=prefix, revoked_at__isnull=True, user__is_active=True)
        .first()
    )
    if client is None or not hmac.compare_digest(client.key_hash, _hash(key)):
        return None
    remember_role(client.user, client.role)
    now = timezone.now()
    if client.last_used_at is None or now - client.last_used_at > LAST_USED_RESOLUTION:
        ApiClient.objects.filter(pk=client.pk).update(last_used_at=now)
    return client


@transaction.atomic
def api_client_revoke(*, client: ApiClient) -> ApiClient:
    if client.revoked_at is None:
        client.revoked_at = timezone.now()
        client.save(update_fields=["revoked_at"])
        client.user.is_active = False
        client.user.save(update_fields=["is_active"])
    return client
