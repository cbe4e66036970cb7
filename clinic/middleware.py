"""Two rules every response and every staff session follow, whatever view answered.

``NoStore``: nothing the application answers is kept by a browser's cache or a proxy. Almost every
page carries patient data (a name, an appointment, a list of MRNs), and a page left in the cache of
a shared front-desk computer outlives the session that fetched it. The project's static files are
served by WhiteNoise before this middleware and keep their long cache lifetimes.

``SessionIdleTimeout``: a signed-in session ends after ``SESSION_IDLE_SECONDS`` without a request
and in any case ``SESSION_COOKIE_AGE`` after signing in. Django alone knows only the second (and
only since the session was last saved); the time of the last request is written at most once a
minute, so a busy page costs no session write per request.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth import logout
from django.contrib.auth.signals import user_logged_in
from django.dispatch import receiver
from django.utils.cache import patch_cache_control

SIGNED_IN_AT = "hfs_signed_in_at"
LAST_SEEN_AT = "hfs_last_seen_at"
# How stale the recorded time of the last request may get before it is written again.
LAST_SEEN_RESOLUTION = 60


class NoStore:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        patch_cache_control(response, no_store=True, private=True)
        return response


@receiver(user_logged_in, dispatch_uid="clinic.session_clocks_start")
def session_clocks_start(sender, request, user, **kwargs):
    """Both clocks start at signing in, written with the login's own save of the session."""
    if request is not None and hasattr(request, "session"):
        request.session[SIGNED_IN_AT] = request.session[LAST_SEEN_AT] = int(time.time())


class SessionIdleTimeout:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            self._check(request)
        return self.get_response(request)

    def _check(self, request) -> None:
        session, now = request.session, int(time.time())
        signed_in_at = session.get(SIGNED_IN_AT)
        last_seen_at = session.get(LAST_SEEN_AT, signed_in_at)
        if signed_in_at is None:
            # A session from before this rule (signed in by an older release): its clock starts now.
            session[SIGNED_IN_AT] = session[LAST_SEEN_AT] = now
            return
        idle = now - last_seen_at > settings.SESSION_IDLE_SECONDS
        too_old = now - signed_in_at > settings.SESSION_COOKIE_AGE
        if idle or too_old:
            # The request goes on as anonymous: the admin sends it to its login page, the API
            # answers 401/403, and a POST of a form left open is not carried out.
            logout(request)
            return
        if now - last_seen_at >= LAST_SEEN_RESOLUTION:
            session[LAST_SEEN_AT] = now
