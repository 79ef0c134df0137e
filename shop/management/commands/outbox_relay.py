"""`python manage.py outbox_relay`: the transactional_outbox relay, in the foreground until
SIGTERM or Ctrl-C. It publishes the outbox's unsent rows to the broker and prunes old sent ones
(shop/techniques/transactional_outbox.py: `relay()` is the loop, `relay_once()` its body).

Run one or several: each claims its rows with SKIP LOCKED, so two relays never publish the same
row at once. The Procfile's `relay` line and docker-compose's `relay` service run this."""

import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop.techniques import transactional_outbox


class Command(BaseCommand):
    help = "Relay the transactional outbox to the Celery broker, until interrupted."

    def add_arguments(self, parser):
        parser.add_argument(
            "--batch", type=int, default=settings.TRANSACTIONAL_OUTBOX_BATCH,
            help="rows claimed per transaction (TRANSACTIONAL_OUTBOX_BATCH)",
        )  # fmt: skip
        parser.add_argument(
            "--poll", type=float, default=settings.TRANSACTIONAL_OUTBOX_POLL_S,
            help="seconds between polls when no NOTIFY comes (TRANSACTIONAL_OUTBOX_POLL_S)",
        )  # fmt: skip
        parser.add_argument(
            "--once", action="store_true", help="relay what is waiting now, then exit"
        )

    def handle(self, *args, batch: int, poll: float, once: bool, **options):
        if batch < 1 or poll <= 0:
            raise CommandError("--batch must be at least 1 and --poll above 0")
        if once:
            total = 0
            while True:
                done = transactional_outbox.relay_once(batch=batch)
                total += done.sent
                if done.error:
                    raise CommandError(f"{total} published; the broker refused: {done.error}")
                if done.claimed < batch:
                    break
            self.stdout.write(f"published {total}")
            return
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        self.stdout.write(f"outbox relay: batch {batch}, poll {poll:g} s", ending="\n")
        self.stdout.flush()

        def say(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        transactional_outbox.relay(stop=stop, poll_s=poll, batch=batch, say=say)
        self.stdout.write("outbox relay stopped")
