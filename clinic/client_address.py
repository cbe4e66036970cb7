"""Who is asking: the client's address, for the audit trail, the throttles and the login lockout.

``NUM_PROXIES`` says how many proxies the deployment puts in front of the application (0 when
clients reach it directly, 1 behind the TLS proxy that compose expects). Each proxy appends the
address it saw to X-Forwarded-For, so the client is the entry that many places from the right;
whatever stands before it was written by the client itself and proves nothing. With no proxy the
header is ignored altogether: anyone could send one, and an attacker would pick a fresh address for
every attempt to slip past a lockout.

The API's throttle (``ClientRateThrottle.get_ident``), the audit trail, the patient pages' limits and
django-axes' lockout all ask here: one rule for every count and every record.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings


def _address(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_address(request) -> str | None:
    """The client's IP address, or None when nothing trustworthy names one.

    A forwarded entry that is not an address (a forged header, a proxy misconfigured) falls back to
    the peer's own address rather than failing the request or reaching the audit trail as text.
    """
    proxies = settings.NUM_PROXIES
    if proxies:
        hops = request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if hops != [""]:
            forwarded = _address(hops[-min(proxies, len(hops))])
            if forwarded:
                return forwarded
    return _address(request.META.get("REMOTE_ADDR", ""))
