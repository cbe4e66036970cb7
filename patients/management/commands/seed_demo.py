"""Fill the database with synthetic demo patients (patients/demo.py): for demos and benchmarks."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from patients import demo
from patients.models import Patient


class Command(BaseCommand):
    help = "Add synthetic HFS patients with diagnoses, imaging and treatments (refused in production)."

    def add_arguments(self, parser):
        parser.add_argument("--patients", type=int, default=300, help="How many patients to add.")
        parser.add_argument(
            "--seed", type=int, default=demo.DEFAULT_SEED, help="The same seed gives the same records."
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing when the database already holds a patient."
        )

    def handle(self, *args, patients, seed, if_empty, **options):
        # Synthetic patients in a clinic's real record would show on its worklists.
        if settings.IS_PRODUCTION:
            raise CommandError("Demo patients are for development and benchmarks only.")
        if patients < 1:
            raise CommandError("Give --patients 1 or more.")
        if if_empty and Patient.objects.exists():
            self.stdout.write("Patients already exist; --if-empty leaves the database as it is.")
            return
        summary = demo.seed_demo(patients=patients, seed=seed)
        self.stdout.write(
            f"Seeded {summary.patients} demo patients (seed {seed}) in {summary.seconds:.1f} seconds:"
        )
        for label, count in summary.rows.items():
            self.stdout.write(f"  {label}: {count}")
