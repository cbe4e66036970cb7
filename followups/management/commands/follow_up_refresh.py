"""Re-plan visits and recompute outcomes, flags and reminders for patients, through the services.

For demo data after ``seed_demo`` and after a protocol edit the clinic wants applied now; each
patient is refreshed in a transaction of its own.
"""

import time

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Exists, OuterRef

from followups.models import PatientFlag, Reminder, TreatmentOutcome
from followups.services import patient_follow_up_refresh
from patients.models import Patient
from patients.services import patient_lock


class Command(BaseCommand):
    help = "Re-plan every patient's follow-up (visits, outcomes, flags, reminders)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only-unplanned",
            action="store_true",
            help="Only patients whose follow-up was never derived: no outcome, flag or reminder yet "
            "(fresh demo data).",
        )

    def handle(self, *args, only_unplanned, **options):
        started = time.perf_counter()
        patients = Patient.objects.filter(archived=False, diagnoses__isnull=False)
        if only_unplanned:
            # seed_demo writes visits (the planner's own plan) but leaves outcomes, flags and
            # reminders to this command, so "no visit yet" no longer tells fresh demo patients
            # apart; what they lack is anything a refresh derives.
            patients = patients.exclude(
                Exists(TreatmentOutcome.objects.filter(treatment__patient=OuterRef("pk")))
                | Exists(PatientFlag.objects.filter(patient=OuterRef("pk")))
                | Exists(Reminder.objects.filter(visit__patient=OuterRef("pk")))
            )
        ids = list(patients.order_by("pk").values_list("pk", flat=True).distinct())
        for patient_id in ids:
            with transaction.atomic():
                patient_follow_up_refresh(patient=patient_lock(Patient(pk=patient_id)))
        self.stdout.write(
            f"Refreshed the follow-up of {len(ids)} patients in {time.perf_counter() - started:.1f} s."
        )
