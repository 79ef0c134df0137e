"""`python manage.py smtp_sink [--port N] [--dir FOLDER]`: run the SMTP sink (shop/smtp_sink.py)
in the foreground, writing each message to FOLDER (default: SMTP_SINK_DIR, else the local
stack's .stack/smtp/mail) after SMTP_SINK_DELAY_MS. The Procfile's `smtp` line and docker-compose's `smtp` service run this.

As with the payment gateway stub, the local stack (`devstack up`) starts the same sink on the same
port before `make serve` runs the Procfile; when a sink already answers there, this command says
so and stands by until it is stopped, instead of failing (which would stop every other process)."""

import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop import smtp_sink
from shop.devstack import Stack
from shop.devstack.smtp import smtp_ping


class Command(BaseCommand):
    help = "Serve the SMTP sink on loopback (or --host), until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=settings.EMAIL_PORT)
        parser.add_argument("--dir", type=Path, default=None, help="where messages are written")

    def handle(self, *args, host: str, port: int, dir: Path | None, **options):
        delay_ms = settings.SMTP_SINK_DELAY_MS
        if not 1 <= port <= 65535:
            raise CommandError(f"--port {port} is not a TCP port (1-65535)")
        if smtp_ping(port, host="127.0.0.1" if host == "0.0.0.0" else host):
            self.stdout.write(
                f"an SMTP server already answers on {host}:{port} (the local stack's sink): "
                "standing by"
            )
            self.stdout.flush()
            threading.Event().wait()  # until SIGTERM or Ctrl-C ends the process
        folder = dir or Path(settings.SMTP_SINK_DIR or Stack.default().smtp_mail_dir)
        try:
            smtp_sink.serve_forever(host=host, port=port, folder=folder, delay_ms=delay_ms)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
