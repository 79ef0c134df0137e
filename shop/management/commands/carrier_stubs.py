"""`python manage.py carrier_stubs`: run the three stub shipping carriers
(shop/carrier_stub.py) in the foreground, each on the port of its URL in
settings.SHIPPING_CARRIERS, with the latencies of CARRIER_STUB_LATENCIES_MS. The Procfile's
`carriers` line and docker-compose's `carriers` service run this.

The local stack (`devstack up`) starts the same stubs on the same ports, and `make serve` runs
the stack and then the Procfile. So when stubs already answer on those ports, this command says
so and stands by until it is stopped, instead of failing (which would stop every other Procfile
process with it)."""

import threading
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from shop import carrier_stub
from shop.devstack.carriers import carriers_ping


class Command(BaseCommand):
    help = "Serve the stub shipping carriers on loopback (or --host), until interrupted."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")

    def handle(self, *args, host: str, **options):
        carriers = []
        for (name, url), latency_ms in zip(
            settings.SHIPPING_CARRIERS.items(), settings.CARRIER_STUB_LATENCIES_MS, strict=True
        ):
            port = urlsplit(url).port
            if port is None:
                raise CommandError(f"the URL of carrier {name} ({url}) names no port")
            carriers.append((name, port, latency_ms))
        ports = [port for _name, port, _latency in carriers]
        if carriers_ping(ports, host="127.0.0.1" if host == "0.0.0.0" else host):
            self.stdout.write(
                f"stub carriers already answer on ports {', '.join(map(str, ports))} "
                "(the local stack's): standing by",
                ending="\n",
            )
            self.stdout.flush()
            threading.Event().wait()  # until SIGTERM or Ctrl-C ends the process
        try:
            carrier_stub.serve_forever(carriers, host=host)
        except OSError as exc:
            raise CommandError(f"cannot listen on {host}: {exc}") from exc
