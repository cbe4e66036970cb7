"""Who is asking, behind zero or more proxies (issue 20: the anonymous throttle trusted any
X-Forwarded-For, so a client could pick a fresh address for every request).

``NUM_PROXIES`` (0 by default) is how many proxies append to X-Forwarded-For in front of the
application; the client is the entry that many places from the right, and with none the header is
ignored. The throttle, the audit trail, the patient pages' limits and the login lockout all use
``clinic.client_address``.
"""

import itertools

import pytest
from django.core.cache import cache
from django.test import RequestFactory

from clinic.client_address import client_address

METADATA = "/fhir/metadata"
_addresses = (f"198.51.100.{n}" for n in itertools.count(1))


def request_from(remote: str, forwarded: str | None = None):
    extra = {"REMOTE_ADDR": remote}
    if forwarded is not None:
        extra["HTTP_X_FORWARDED_FOR"] = forwarded
    return RequestFactory().get("/", **extra)


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.2"),  # no proxy: whatever the client wrote is ignored
        (0, None, "10.0.0.2"),
        (1, "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # the proxy's entry, not the forged one before it
        (1, "2001:db8::7", "2001:db8::7"),
        (2, "1.2.3.4, 203.0.113.9, 10.0.0.9", "203.0.113.9"),
        (2, "203.0.113.9", "203.0.113.9"),  # fewer entries than proxies: the leftmost there is
        (1, "<script>, not-an-address", "10.0.0.2"),  # not an address: the peer, never the text
        (1, None, "10.0.0.2"),
    ],
)
def test_the_client_is_the_entry_the_last_proxy_wrote(settings, proxies, forwarded, expected):
    settings.NUM_PROXIES = proxies

    assert client_address(request_from("10.0.0.2", forwarded)) == expected


def _throttled_at(settings, rate: str):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "client": rate},
    }


def test_without_a_proxy_a_forged_header_does_not_escape_the_anonymous_throttle(anonymous, settings):
    settings.NUM_PROXIES = 0
    _throttled_at(settings, "3/min")
    peer = next(_addresses)
    cache.delete(f"throttle_client_window_{peer}")

    statuses = [
        anonymous.get(METADATA, REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=next(_addresses)).status_code
        for _ in range(4)
    ]

    assert statuses == [200, 200, 200, 429]


def test_behind_one_proxy_each_client_counts_apart_and_a_forged_entry_changes_nothing(anonymous, settings):
    settings.NUM_PROXIES = 1
    _throttled_at(settings, "2/min")
    proxy, first, second = next(_addresses), next(_addresses), next(_addresses)
    cache.delete_many([f"throttle_client_window_{address}" for address in (proxy, first, second)])

    def status(forwarded):
        return anonymous.get(METADATA, REMOTE_ADDR=proxy, HTTP_X_FORWARDED_FOR=forwarded).status_code

    assert [status(first), status(first)] == [200, 200]
    assert status(second) == 200  # another patient behind the same proxy
    assert status(f"{next(_addresses)}, {first}") == 429  # a forged entry before the proxy's
