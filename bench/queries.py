"""Item 5: the queries each endpoint runs per request, at page sizes 10, 50 and 500 (in process).

Counted as Django's CaptureQueriesContext sees them, then split: SQL statements (SELECT, INSERT,
UPDATE...), which the target of at most 5 is about, and the transaction control around them
(BEGIN, COMMIT, SAVEPOINT...), which Django logs too and which are round trips as well.
"""

from __future__ import annotations

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.common import log
from bench.endpoints import ENDPOINTS

PAGE_SIZES = (10, 50, 500)


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def _is_control(sql: str) -> bool:
    return sql.strip().upper().startswith(TRANSACTION_CONTROL)


def _count(client: Client, path: str, **headers) -> tuple[int, list[str]]:
    """The SQL statements of one request (transaction control left out), and everything it sent."""
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, **headers)
    if response.status_code != 200:
        raise RuntimeError(f"GET {path} answered {response.status_code}: {response.content[:300]!r}")
    sql = [query["sql"] for query in captured.captured_queries]
    return sum(not _is_control(statement) for statement in sql), sql


def measure(*, key: str, patients: list[str]) -> dict:
    client = Client()
    auth = {"HTTP_AUTHORIZATION": f"Token {key}"}
    # The first request of a client also stamps its last_used_at (once a minute): counted apart.
    first, _ = _count(client, "/api/v1/patients/?page_size=1", **auth)
    results = {"first_request_of_a_client": first, "endpoints": {}}
    worst = worst_trips = 0
    for endpoint in ENDPOINTS:
        row = {}
        sizes = PAGE_SIZES if endpoint.is_list else (None,)
        for size in sizes:
            counts, floor_counts, sql = [], [], []
            for path in endpoint.paths(endpoint.api, patients[:5], page_size=size or 50):
                count, queries = _count(client, path, **auth)
                counts.append(count)
                if count == max(counts):
                    sql = queries
            for path in endpoint.paths(endpoint.floor, patients[:5], page_size=size or 50):
                floor_counts.append(_count(client, path)[0])
            label = f"page_size_{size}" if size else "per_request"
            row[label] = {
                "api": max(counts),
                "api_round_trips": len(sql),
                "floor": max(floor_counts),
                "sql": sql,
            }
            worst = max(worst, max(counts))
            worst_trips = max(worst_trips, len(sql))
        results["endpoints"][endpoint.name] = row
        log(
            f"queries {endpoint.name}: "
            + ", ".join(
                f"{label} {value['api']} (+{value['api_round_trips'] - value['api']} BEGIN/COMMIT; "
                f"floor {value['floor']})"
                for label, value in row.items()
            )
        )
    results["max_queries_per_request"] = worst
    results["max_round_trips_per_request"] = worst_trips
    return results
