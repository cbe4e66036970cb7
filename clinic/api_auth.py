"""Who is calling and what their role lets them do; imported by DRF's settings, so no views here."""

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import UserRateThrottle

from clinic.api_clients import api_client_for_key
from clinic.roles import may


class ApiTokenAuthentication(BaseAuthentication):
    """``Authorization: Token <key>`` for integration clients."""

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != b"token":
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Give the key after 'Token ', with no spaces in it.")
        client = api_client_for_key(parts[1].decode(errors="replace"))
        if client is None:
            raise exceptions.AuthenticationFailed("This key is unknown or revoked.")
        return client.user, client

    def authenticate_header(self, request):
        return "Token"


class RolePermission(BasePermission):
    """The view's ``kind`` against the caller's role: reading or writing it."""

    def has_permission(self, request, view):
        if not request.user or not request.user.is_authenticated:
            return False
        kind = getattr(view, "get_kind", None)
        if kind is None:
            return False
        write = request.method not in ("GET", "HEAD", "OPTIONS")
        return may(request.user, kind(), write=write)


class ClientRateThrottle(UserRateThrottle):
    scope = "client"

    def get_rate(self):
        # DRF reads the rates once, when its throttling module is imported; reading them here
        # lets a changed REST_FRAMEWORK setting (reloaded by DRF on ``setting_changed``) apply.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
