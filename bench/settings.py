"""The product's settings, plus what only the benchmark needs; used by gunicorn and the harness.

- ``bench.urls``: the product's URLs and the floor views beside them, in the same server;
- DEBUG off whatever the environment says (DEBUG keeps every query in memory);
- the client throttle raised so that it does not cut the load. Its window is one second, not a
  minute: DRF's throttle keeps one timestamp per request of the window in the cache, so a minute at
  benchmark rates would read and write a list of tens of thousands of entries per request, which
  the product at its real rate (1200/min) never does. A one-second window keeps the list about as
  long as the product's own.
"""

from clinic.settings import *  # noqa: F403
from clinic.settings import ALLOWED_HOSTS, REST_FRAMEWORK

ROOT_URLCONF = "bench.urls"
DEBUG = False
# django.test.Client (the query counts) calls itself "testserver".
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "100000/s"}}
