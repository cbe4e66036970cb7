"""Re-plan visits and recompute outcomes, flags and reminders for patients, through the services.

For demo data after ``seed_demo`` and for a protocol edit the clinic wants applied now. The work
is a ``command`` (or ``protocol``) run of chunks, as the nightly run's: worked through here, chunk
by chunk with a progress line on stderr, or handed to the workers with ``--queue``. Each patient
is refreshed in a transaction of their own.
"""

import time

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from followups.models import FollowUpRun, Protocol
from followups.runs.chunks import run_work_here
from followups.runs.codes import RunKind, RunState
from followups.runs.selection import refresh_patient_ids
from followups.runs.starting import follow_up_run_start, protocol_run_start
from followups.tasks import queue_chunks


class Command(BaseCommand):
    help = "Re-plan every patient's follow-up (visits, outcomes, flags, reminders)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--only-unplanned",
            action="store_true",
            help="Only patients whose follow-up was never derived: no outcome, flag or reminder yet "
            "(fresh demo data).",
        )
        parser.add_argument(
            "--protocol",
            metavar="CODE",
            help="Only the patients an edit of this protocol can re-plan (its treatment's kind).",
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help="Hand the chunks to the Celery workers instead of working through them here.",
        )

    def handle(self, *args, only_unplanned, protocol, queue, **options):
        started = time.perf_counter()
        to_workers = queue_chunks if queue else None
        if protocol:
            found = Protocol.objects.filter(code=protocol).first()
            if found is None:
                raise CommandError(f"No protocol with the code {protocol!r}.")
            run = protocol_run_start(protocol=found, queue=to_workers)
        else:
            run = follow_up_run_start(
                kind=RunKind.COMMAND,
                clinic_day=timezone.localdate(),
                patient_ids=refresh_patient_ids(only_unplanned=only_unplanned),
                queue=to_workers,
            )
        if queue:
            self.stdout.write(
                f"Queued the follow-up of {run.patients} patients as run {run.pk} "
                f"({run.chunks.count()} chunks); `follow_up_run_check --run {run.pk}` tells how far it got."
            )
            return
        run = run_work_here(run=run, on_chunk=self._progress)
        self.stderr.write("")
        self.stdout.write(
            f"Refreshed the follow-up of {run.done} patients in {time.perf_counter() - started:.1f} s."
            + (f" {run.failed} failed: see the log of run {run.pk}." if run.failed else "")
            + ("" if run.state == RunState.FINISHED else " The workers are finishing the rest.")
        )

    def _progress(self, run: FollowUpRun) -> None:
        share = run.done + run.failed
        bar = "#" * (30 * share // max(run.patients, 1))
        self.stderr.write(f"\r[{bar:<30}] {share}/{run.patients} patients, {run.failed} failed", ending="")
        self.stderr.flush()
