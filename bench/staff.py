"""Issue 18: the staff's daily pages at the bench's size, in process, as a superuser (who sees every
tile and list): the dashboard, each worklist in the admin and in the API, the call list and the
lost-to-follow-up list, a patient's page and the patient search. Each page ``PASSES`` times after
one warm-up request; p50 and worst in ms, and the queries of one request. The worst p50 is
``staff_worst_p50_ms`` (target < 300).
"""

from __future__ import annotations

import statistics
import time

from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from bench.common import log

PASSES = 5


def _superuser():
    from django.contrib.auth import get_user_model

    user, _ = get_user_model().objects.get_or_create(
        username="bench-superuser", defaults={"is_staff": True, "is_superuser": True}
    )
    return user


def _pages(key: str) -> dict[str, tuple[str, dict]]:
    from django.urls import reverse

    from followups.codes import FlagCode
    from patients.models import Patient

    # A patient from the middle of the table, with visits.
    middle = Patient.objects.count() // 2
    patient = Patient.objects.filter(archived=False, pk__gte=middle, visits__isnull=False)
    patient = patient.order_by("pk").values("pk", "family_name").first()
    api = {"HTTP_AUTHORIZATION": f"Token {key}"}
    flag = FlagCode.IMAGING_MISSING
    admin = {}
    return {
        "admin_dashboard": ("/admin/", admin),
        "admin_overdue": ("/admin/followups/visit/?worklist=overdue", admin),
        "admin_due_week": ("/admin/followups/visit/?worklist=week", admin),
        "admin_today": ("/admin/followups/visit/?worklist=today", admin),
        "admin_flagged": (f"/admin/patients/patient/?flag={flag}&archived__exact=0", admin),
        "admin_call_list": (reverse("admin:followups_call_list"), admin),
        "admin_lost": (reverse("admin:followups_lost_list"), admin),
        "admin_patient_page": (f"/admin/patients/patient/{patient['pk']}/change/", admin),
        "admin_patient_search": (f"/admin/patients/patient/?q={patient['family_name']}", admin),
        "api_overdue": ("/api/v1/worklists/overdue/", api),
        "api_due": ("/api/v1/worklists/due/?days=7", api),
        "api_flagged": (f"/api/v1/worklists/flagged/?code={flag}", api),
        "api_call_list": ("/api/v1/worklists/call-list/", api),
        "api_lost": ("/api/v1/worklists/lost-to-follow-up/", api),
    }


def measure(*, key: str) -> dict:
    client = Client()
    client.force_login(_superuser())
    pages = {}
    for name, (path, headers) in _pages(key).items():
        first = client.get(path, **headers)
        if first.status_code != 200:
            raise RuntimeError(f"GET {path} answered {first.status_code}")
        samples = []
        for _ in range(PASSES):
            with CaptureQueriesContext(connection) as captured:
                started = time.perf_counter()
                client.get(path, **headers)
                samples.append(time.perf_counter() - started)
        pages[name] = {
            "p50_ms": round(statistics.median(samples) * 1000, 1),
            "worst_ms": round(max(samples) * 1000, 1),
            "queries": len(captured),
        }
        log(f"{name}: {pages[name]}")
    worst = max(pages, key=lambda name: pages[name]["p50_ms"])
    return {"staff_worst_p50_ms": pages[worst]["p50_ms"], "staff_worst_page": worst, "pages": pages}
