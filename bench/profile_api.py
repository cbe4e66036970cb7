"""``python -m bench.profile_api``: where an API request's time goes, beyond its floor (in process).

Runs each endpoint in django.test.Client, first as the product has it, then with one piece of
the request path switched off at a time (in this process only), and prints the median time per
request of each variant beside the floor's. Evidence for BENCHMARKS.md, not a target.
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import sys
import time
from contextlib import ExitStack, contextmanager
from unittest import mock

from bench.common import setup_django

REQUESTS = 300


def _median_ms(client, paths, headers) -> float:
    times = []
    for i in range(REQUESTS):
        path = paths[i % len(paths)]
        started = time.perf_counter()
        response = client.get(path, **headers)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, (path, response.status_code)
    return round(statistics.median(times) * 1000, 2)


@contextmanager
def _switched_off(*names):
    with ExitStack() as stack:
        if "audit" in names:
            stack.enter_context(mock.patch("clinic.api.audit_record", lambda **kwargs: None))
        if "throttle" in names:
            from clinic.api import ResourceViewSet

            stack.enter_context(mock.patch.object(ResourceViewSet, "throttle_classes", []))
        if "history_middleware" in names:
            from django.conf import settings
            from django.test import override_settings

            middleware = [m for m in settings.MIDDLEWARE if "simple_history" not in m]
            stack.enter_context(override_settings(MIDDLEWARE=middleware))
        yield


def main() -> None:
    setup_django()
    from django.test import Client

    from bench.endpoints import ENDPOINTS, api_key, sample_patients

    key, patients = api_key(), sample_patients()
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    variants = [(), ("audit",), ("throttle",), ("history_middleware",), ("audit", "throttle")]
    print(f"median ms per request, in process, {REQUESTS} requests each")
    header = f"{'endpoint':<22} {'floor':>7} {'duty':>7} {'api':>7} " + " ".join(
        f"{'-' + '-'.join(v):>18}" for v in variants[1:]
    )
    print(header)
    for endpoint in ENDPOINTS:
        api_paths = endpoint.paths(endpoint.api, patients)
        floor = _median_ms(client, endpoint.paths(endpoint.floor, patients), {})
        duty = _median_ms(client, endpoint.paths(endpoint.duty_floor, patients), auth)
        row = []
        for names in variants:
            with _switched_off(*names):
                _median_ms(client, api_paths, auth)  # warm
                row.append(_median_ms(client, api_paths, auth))
        print(
            f"{endpoint.name:<22} {floor:>7} {duty:>7} {row[0]:>7} " + " ".join(f"{v:>18}" for v in row[1:])
        )
    if "--profile" in sys.argv:
        endpoint = ENDPOINTS[0]
        paths = endpoint.paths(endpoint.api, patients)
        profiler = cProfile.Profile()
        profiler.enable()
        _median_ms(client, paths, auth)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


if __name__ == "__main__":
    main()
