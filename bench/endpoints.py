"""The endpoints the benchmark measures, each beside its two floor views (bench/floor.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass

from bench.common import ROOT, bench_environment, log


@dataclass(frozen=True)
class Endpoint:
    name: str
    api: str  # a path, with {patient} and {page_size} to fill in
    floor: str
    duty_floor: str
    is_list: bool

    def paths(self, template: str, patients: list[str], page_size: int = 50) -> list[str]:
        if "{patient}" not in template:
            return [template.format(page_size=page_size)]
        return [template.format(patient=patient, page_size=page_size) for patient in patients]


def _beside_floor(name: str, path: str, *, is_list: bool) -> Endpoint:
    return Endpoint(name, f"/api/v1/{path}", f"/bench/floor/{path}", f"/bench/duty-floor/{path}", is_list)


ENDPOINTS = [
    _beside_floor("patients_list", "patients/?page_size={page_size}", is_list=True),
    _beside_floor("patient_detail", "patients/{patient}/", is_list=False),
    _beside_floor("visits_list", "visits/?page_size={page_size}", is_list=True),
    _beside_floor("patient_visits_list", "visits/?patient={patient}&page_size={page_size}", is_list=True),
    _beside_floor("patient_outcomes", "patients/{patient}/outcomes/", is_list=False),
]


def api_key() -> str:
    """A new clinician API client, made the way API.md says: its key is the last line of the output."""
    name = f"bench-{time.strftime('%Y%m%d-%H%M%S')}-{time.monotonic_ns() % 10_000}"
    out = subprocess.run(
        [sys.executable, "manage.py", "create_api_client", name, "--role", "clinician"],
        cwd=ROOT,
        env={**os.environ, **bench_environment()},
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def sample_patients(count: int = 100) -> list[str]:
    """Patients spread over the whole table, each with treatments; their outcomes computed if missing.

    The seed writes no outcomes (``follow_up_refresh`` would, for every patient, through the
    services); the outcomes endpoint needs rows to show, so the sampled patients get theirs here.
    """
    from django.db import transaction

    from followups.models import TreatmentOutcome
    from followups.outcomes_store import outcomes_recompute
    from patients.models import Patient

    with_treatments = Patient.objects.filter(archived=False, treatments__isnull=False).distinct()
    ids = list(with_treatments.order_by("pk").values_list("pk", flat=True))
    step = max(1, len(ids) // count)
    chosen = ids[::step][:count]
    computed = 0
    for patient in Patient.objects.filter(pk__in=chosen):
        if not TreatmentOutcome.objects.filter(treatment__patient=patient).exists():
            with transaction.atomic():
                outcomes_recompute(patient=patient)
            computed += 1
    if computed:
        log(f"computed the outcomes of {computed} sampled patients")
    uuids = Patient.objects.filter(pk__in=chosen).order_by("pk").values_list("uuid", flat=True)
    return [str(uuid) for uuid in uuids]
