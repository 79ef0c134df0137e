"""`python manage.py payment_gateway_stub [--port N]`: run the stub payment gateway
(shop/payment_gateway_stub.py) in the foreground, with the latency and failure rate of the
settings (PAYMENT_GATEWAY_STUB_LATENCY_MS, PAYMENT_GATEWAY_STUB_FAILURE_RATE). The Procfile's
`gateway` line and docker-compose's `gateway` service run this.

The local stack (`devstack up`) starts the same stub on the same port, and `make serve` runs
the stack and then the Procfile. So when a stub already answers on the port, this command
says so and stands by until it is stopped, instead of failing (which would stop every other
Procfile process with it)."""

import threading
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop import payment_gateway_stub
from shop.devstack.gateway import gateway_ping


class Command(BaseCommand):
    help = "Serve the stub payment gateway on loopback (or --host), until interrupted."

    def add_arguments(self, parser):
        url = urlsplit(settings.PAYMENT_GATEWAY_URL)
        parser.add_argument("--host", default=url.hostname or "127.0.0.1")
        parser.add_argument("--port", type=int, default=url.port or 80)

    def handle(self, *args, host: str, port: int, **options):
        latency_ms = settings.PAYMENT_GATEWAY_STUB_LATENCY_MS
        failure_rate = settings.PAYMENT_GATEWAY_STUB_FAILURE_RATE
        if not 0.0 <= failure_rate <= 1.0 or latency_ms < 0:
            raise CommandError(
                "PAYMENT_GATEWAY_STUB_FAILURE_RATE must be within 0..1 and "
                "PAYMENT_GATEWAY_STUB_LATENCY_MS not negative"
            )
        if not 1 <= port <= 65535:
            raise CommandError(f"--port {port} is not a TCP port (1-65535)")
        if gateway_ping(port, host="127.0.0.1" if host == "0.0.0.0" else host):
            self.stdout.write(
                f"a payment gateway stub already answers on {host}:{port} (the local stack's): "
                "standing by",
                ending="\n",
            )
            self.stdout.flush()
            threading.Event().wait()  # until SIGTERM or Ctrl-C ends the process
        try:
            payment_gateway_stub.serve_forever(
                host=host, port=port, latency_ms=latency_ms, failure_rate=failure_rate
            )
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}:{port}: {exc}") from exc
