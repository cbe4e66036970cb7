"""``python -m bench.profile_dispatch``: where one reminder send's time goes (in process, no Celery).

Claims N due reminders (their send tasks not queued), then runs ``reminder_deliver`` on each against
an aiosmtpd sink in a child process, timing its phases: taking the claim (an UPDATE, committed),
rendering the e-mail, the SMTP conversation, and the rest (reading the row, marking it sent).
Evidence for BENCHMARKS.md, not a target.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
from collections import defaultdict
from unittest import mock

from bench.common import free_port, setup_django

N = 300


def _serve(port: int, ready) -> None:
    from aiosmtpd.controller import Controller

    from bench.dispatch import CountingSink

    controller = Controller(CountingSink(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


def main() -> None:
    setup_django()
    from django.core.mail import EmailMessage
    from django.test import override_settings

    from bench.dispatch import _due_reminders
    from followups import reminders
    from followups.reminders import delivery

    port = free_port()
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    sink = context.Process(target=_serve, args=(port, ready), daemon=True)
    sink.start()
    ready.wait(30)
    phases = defaultdict(list)

    def timed(name, function):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                phases[name].append(time.perf_counter() - started)

        return wrapper

    smtp = {"EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend", "EMAIL_HOST": "127.0.0.1"}
    with override_settings(**smtp, EMAIL_PORT=port):
        _due_reminders(N)
        claimed = []
        while batch := reminders.reminders_claim_due():
            claimed += batch
        with (
            mock.patch.object(delivery, "take", timed("take the claim (UPDATE, commit)", delivery.take)),
            mock.patch.object(
                delivery, "reminder_message", timed("render the e-mail", delivery.reminder_message)
            ),
            mock.patch.object(EmailMessage, "send", timed("SMTP conversation", EmailMessage.send)),
        ):
            deliver = timed("whole reminder_deliver", reminders.reminder_deliver)
            for reminder_id, claim_id in claimed:
                deliver(reminder_id=reminder_id, claim_id=claim_id)
    sink.terminate()
    whole = statistics.median(phases["whole reminder_deliver"])
    print(f"median ms per send over {len(claimed)} sends (one process):")
    for name, samples in phases.items():
        print(f"  {name:<36} {statistics.median(samples) * 1000:7.2f}")
    parts = sum(statistics.median(s) for n, s in phases.items() if n != "whole reminder_deliver")
    print(f"  {'rest (read the row, mark it sent)':<36} {(whole - parts) * 1000:7.2f}")


if __name__ == "__main__":
    main()
