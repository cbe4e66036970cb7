"""Rate limits of the patient pages, counted by django-ratelimit in the shared cache.

Two counts for every request, GET and POST alike: one per address (someone trying link after
link) and one per link (a link forwarded and hammered). The rates are settings, read at each
request.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django_ratelimit.core import is_ratelimited
from redis.exceptions import RedisError

from clinic.client_address import client_address as shared_client_address

logger = logging.getLogger(__name__)

GROUP_ADDRESS = "patient-pages-address"
GROUP_LINK = "patient-pages-link"


def rate_per_address(group, request) -> str:
    return settings.PATIENT_PAGES_RATE_PER_ADDRESS


def rate_per_link(group, request) -> str:
    return settings.PATIENT_PAGES_RATE_PER_LINK


def link_token(group, request) -> str:
    return request.resolver_match.kwargs["token"]


def client_address(request) -> str:
    """The patient's address, for ``RATELIMIT_IP_META_KEY``: the one ``NUM_PROXIES`` trusts (behind
    the TLS proxy ``REMOTE_ADDR`` is the proxy's own, and every patient would share one count)."""
    return shared_client_address(request) or request.META.get("REMOTE_ADDR", "")


def over_limit(request) -> bool:
    """Count this request against both limits; True when either is exceeded. Without the cache
    (Redis down) the page is served unlimited: a patient booking matters more than the count."""
    try:
        limited = [
            is_ratelimited(request, group=GROUP_ADDRESS, key="ip", rate=rate_per_address, increment=True),
            is_ratelimited(request, group=GROUP_LINK, key=link_token, rate=rate_per_link, increment=True),
        ]
    except (RedisError, OSError):
        logger.warning("Rate limit counters unavailable: patient page served without a limit.")
        return False
    return any(limited)
