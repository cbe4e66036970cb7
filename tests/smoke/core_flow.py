"""The product's core flow, end to end, on whatever database the settings give.

`make test` runs it on the embedded SQLite defaults that `make run` uses (tests/test_sqlite_smoke.py);
by hand: `python tests/smoke/core_flow.py` after `python manage.py migrate`. It goes through the
services as the API and admin do, each step reads back what it wrote, and the summary is printed
as JSON. The flow grows by appending steps to ``STEPS`` (next: plan visits, send a reminder).
"""

import json
import os
import sys
import uuid
from datetime import date
from pathlib import Path

if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clinic.settings")
    import django

    django.setup()

# Models can only be imported once Django is set up, which the lines above do when run as a script.
from django.db import connection

from patients import codes, services
from patients.models import Patient, Treatment


def database_in_use(flow: dict) -> dict:
    return {"vendor": connection.vendor, "name": str(connection.settings_dict["NAME"])}


def patient_registered(flow: dict) -> dict:
    # A fresh MRN each run, so the flow also runs against a database that already holds one.
    created = services.patient_create(
        mrn=f"SMOKE-{uuid.uuid4().hex[:10].upper()}",
        given_name="Ada",
        family_name="Smoke",
        date_of_birth=date(1966, 4, 2),
        sex=codes.Sex.FEMALE,
        email="ada.smoke@patients.example",
        email_reminders=True,
    )
    flow["patient"] = patient = Patient.objects.get(pk=created.pk)
    return {
        "email_reminders": patient.email_reminders,
        "consent_recorded": patient.email_reminders_consented_at is not None,
        "history_rows": patient.history.count(),
    }


def diagnosis_recorded(flow: dict) -> dict:
    recorded = services.diagnosis_record(
        patient=flow["patient"],
        kind=codes.HfsKind.PRIMARY,
        side=codes.Side.LEFT,
        onset_date=date(2022, 9, 1),
        diagnosed_on=date(2023, 3, 1),
        muscles=[codes.Muscle.ORBICULARIS_OCULI, codes.Muscle.ZYGOMATICUS],
    )
    flow["diagnosis"] = diagnosis = flow["patient"].diagnoses.get(pk=recorded.pk)
    return {
        "kind": diagnosis.kind,
        "side": diagnosis.side,
        "muscles": sorted(diagnosis.muscle_rows.values_list("muscle", flat=True)),
    }


def treatments_recorded(flow: dict) -> dict:
    """One treatment of each kind with its typed detail, as a patient's history often runs."""
    common = {"patient": flow["patient"], "diagnosis": flow["diagnosis"]}
    services.treatment_record(
        **common,
        kind=codes.TreatmentKind.MEDICATION,
        status=codes.TreatmentStatus.STOPPED,
        started_on=date(2023, 3, 1),
        ended_on=date(2023, 8, 1),
        medication={
            "drug": codes.Drug.CARBAMAZEPINE,
            "daily_dose_mg": "400",
            "stop_reason": codes.StopReason.INEFFECTIVE,
        },
    )
    services.treatment_record(
        **common,
        kind=codes.TreatmentKind.BOTULINUM_TOXIN,
        status=codes.TreatmentStatus.COMPLETED,
        started_on=date(2023, 9, 4),
        botulinum_toxin={
            "product": codes.ToxinProduct.ONABOTULINUMTOXINA,
            "injections": [
                {"muscle": codes.Muscle.ORBICULARIS_OCULI, "units": "15"},
                {"muscle": codes.Muscle.ZYGOMATICUS, "units": "5"},
            ],
        },
    )
    services.treatment_record(
        **common,
        kind=codes.TreatmentKind.MVD,
        status=codes.TreatmentStatus.COMPLETED,
        started_on=date(2024, 6, 3),
        mvd={"technique": codes.MvdTechnique.INTERPOSITION, "offending_vessels": [codes.Vessel.AICA]},
    )
    treatments = {t.kind: t for t in Treatment.objects.filter(patient=flow["patient"])}
    medication = treatments[codes.TreatmentKind.MEDICATION].medication
    toxin = treatments[codes.TreatmentKind.BOTULINUM_TOXIN].botulinum_toxin
    mvd = treatments[codes.TreatmentKind.MVD].mvd
    return {
        "medication": {"drug": medication.drug, "daily_dose_mg": str(medication.daily_dose_mg)},
        "botulinum_toxin": {
            "product": toxin.product,
            "units": {row.muscle: str(row.units) for row in toxin.injections.all()},
        },
        "mvd": {
            "technique": mvd.technique,
            "offending_vessels": sorted(mvd.vessel_rows.values_list("vessel", flat=True)),
        },
        "history_rows": sum(t.history.count() for t in treatments.values()),
    }


STEPS = [database_in_use, patient_registered, diagnosis_recorded, treatments_recorded]


def run(steps=STEPS) -> dict:
    """Run ``steps`` in order; each gets the state the earlier ones left and adds its summary."""
    flow: dict = {}
    return {step.__name__: step(flow) for step in steps}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2, sort_keys=True))
