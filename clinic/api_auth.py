"""Who is calling and what their role lets them do; imported by DRF's settings, so no views here."""

import math

from django.core.cache import caches
from django.core.cache.backends.redis import RedisCache
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.permissions import BasePermission
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from clinic.api_clients import api_client_for_key
from clinic.client_address import client_address
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


class ClientRateThrottle(SimpleRateThrottle):
    """At most N requests per period per client (API.md: a 429 beyond): a counter per client in
    the shared cache, started by the client's first request of a window and expiring with it.

    DRF's own throttles keep the time of every request of the window in a list that each request
    reads and writes whole: at 1,200/min up to 1,200 floats pickled twice per request (bench:
    1-1.5 ms of a 9 ms list page). A counter is one round trip to Redis. What a fixed window
    allows that a sliding one does not: up to twice the rate across the edge of two windows.
    """

    scope = "client"
    # Not DRF's own key name: a list DRF's throttle left there (a deploy over the old code) must
    # not meet INCR, nor an old worker read a counter as its list.
    cache_format = "throttle_%(scope)s_window_%(ident)s"

    def get_rate(self):
        # DRF reads the rates once, when its throttling module is imported; reading them here
        # lets a changed REST_FRAMEWORK setting (reloaded by DRF on ``setting_changed``) apply.
        return api_settings.DEFAULT_THROTTLE_RATES[self.scope]

    def get_ident(self, request):
        # The address NUM_PROXIES trusts (clinic.client_address), as the audit and the lockout use.
        return client_address(request) or "unknown"

    def get_cache_key(self, request, view):
        user = request.user
        ident = user.pk if user and user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        cache = caches["default"]  # the backend itself, not Django's proxy to it
        counted = self._count_in_redis if isinstance(cache, RedisCache) else self._count_in_cache
        count, self.seconds_left = counted(cache, self.key)
        return count <= self.num_requests

    def _count_in_redis(self, cache, key: str) -> tuple[int, int]:
        """This request counted: the window's count so far and the seconds it has left.

        Create the window if there is none, count, read its time left: one round trip (Django's
        cache API would take three), in MULTI so that the window cannot expire between its
        creation and the count (an INCR of nothing would start a counter that never expires).
        """
        full_key = cache.make_and_validate_key(key)
        pipe = cache._cache.get_client(full_key, write=True).pipeline(transaction=True)
        pipe.set(full_key, 0, ex=self.duration, nx=True).incr(full_key).ttl(full_key)
        _, count, ttl = pipe.execute()
        return count, max(int(ttl), 1)

    def _count_in_cache(self, cache, key: str) -> tuple[int, int]:
        """The same in another cache (the embedded file cache of ``make run``): the window's start
        and count under the key, kept until the window ends. Not atomic across processes, which
        costs at most a few uncounted requests on a development machine."""
        now = self.timer()
        started, count = cache.get(key) or (now, 0)
        if now >= started + self.duration:
            started, count = now, 0
        left = started + self.duration - now
        cache.set(key, (started, count + 1), left)
        return count + 1, max(math.ceil(left), 1)

    def wait(self):
        return self.seconds_left
