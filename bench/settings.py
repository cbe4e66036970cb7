"""The product's settings, plus what only the benchmark needs; used by gunicorn and the harness.

- ``bench.urls``: the product's URLs and the floor views beside them, in the same server;
- DEBUG off whatever the environment says (DEBUG keeps every query in memory);
- the client throttle raised so that it does not cut the load; it still counts every request
  (one Redis round trip, as in the product). The window of a second dates from DRF's sliding
  log, whose cost grew with the requests of a window; the product's counter costs the same for
  any window.
"""

from clinic.settings import *  # noqa: F403
from clinic.settings import ALLOWED_HOSTS, REST_FRAMEWORK

ROOT_URLCONF = "bench.urls"
DEBUG = False
# django.test.Client (the query counts) calls itself "testserver".
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"client": "100000/s"}}
