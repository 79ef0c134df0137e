"""`make demo`: migrate, seed, benchmark, and print where everything is."""

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connections

from catalog.models import Product, Review, Variant
from orders.models import Order, OrderItem

SIZES = ["small", "medium", "large"]

# The bench refuses DEBUG and the debug toolbar (they distort timings), and settings cannot
# change inside a running process, so it runs as its own process with load-test settings.
BENCH_SETTINGS = "config.settings.loadtest"

NEXT_STEPS = """\
Next: start the API and workers in another terminal with `make serve`, then:
  curl -s 'http://127.0.0.1:8000/api/products/?page_size=2'
  TOKEN=$(curl -s -X POST http://127.0.0.1:8000/api/auth/token/ \\
    -H 'Content-Type: application/json' -d '{{"username": "user1", "password": "password"}}' \\
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')
  curl -s -X POST http://127.0.0.1:8000/api/orders/ -H "Authorization: Token $TOKEN" \\
    -H 'Content-Type: application/json' -H 'Idempotency-Key: demo-1' \\
    -d '{{"items": [{{"sku": "{sku}", "quantity": 2}}]}}'
  curl -s http://127.0.0.1:8000/api/orders/ -H "Authorization: Token $TOKEN"
API docs: http://127.0.0.1:8000/api/docs/   OpenAPI schema: http://127.0.0.1:8000/api/schema/
"""


class Command(BaseCommand):
    help = (
        "Migrate, seed the database, run the paired benchmark on it and print a summary with "
        "ready-to-run API calls."
    )

    def add_arguments(self, parser):
        parser.add_argument("--size", choices=SIZES, default="small")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--no-bench", action="store_true", help="skip the benchmark")

    def handle(self, *args, size: str, seed: int, **options):
        started = time.monotonic()
        steps = 2 if options.get("no_bench") else 3
        self.stdout.write(self.style.MIGRATE_HEADING(f"1/{steps} migrate"))
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write(self.style.MIGRATE_HEADING(f"2/{steps} seed --size {size} --seed {seed}"))
        seeded = time.monotonic()
        call_command("seed", size=size, seed=seed, stdout=self.stdout)
        seed_seconds = time.monotonic() - seeded
        report, bench_failed = None, False
        if not options.get("no_bench"):
            self.stdout.write(self.style.MIGRATE_HEADING(f"3/{steps} bench --size {size}"))
            report, bench_failed = self._bench(size=size)
        self._summary(
            size=size,
            seed_seconds=seed_seconds,
            total_seconds=time.monotonic() - started,
            report=report,
        )
        if bench_failed:
            raise CommandError("The benchmark did not finish cleanly: see its output above.")

    def _bench(self, *, size: str) -> tuple[Path, bool]:
        """`manage.py bench --size SIZE` with load-test settings; its table and progress go
        straight to this terminal. Returns the report's folder and whether it failed."""
        base = Path(settings.BASE_DIR)
        report = base / "reports" / f"bench-{datetime.now(UTC):%Y%m%d-%H%M%S}"
        command = [sys.executable, str(base / "manage.py"), "bench", "--size", size]
        command += ["--report", str(report)]
        self.stdout.flush()
        bench = subprocess.Popen(
            command, env={**os.environ, "DJANGO_SETTINGS_MODULE": BENCH_SETTINGS}
        )
        # Ctrl-C reaches the bench too (same terminal), which restores what it changed before it
        # stops. This process waits for that instead of killing it half-way.
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            returncode = bench.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
        return report, returncode != 0

    def _summary(
        self, *, size: str, seed_seconds: float, total_seconds: float, report: Path | None
    ) -> None:
        counts = {
            "products": Product.objects.count(),
            "variants": Variant.objects.count(),
            "reviews": Review.objects.count(),
            "orders": Order.objects.count(),
            "order items": OrderItem.objects.count(),
        }
        sku = (
            Variant.objects.filter(stock__gte=5, product__is_active=True)
            .order_by("id")
            .values_list("sku", flat=True)
            .first()
        )
        primary = connections["default"].settings_dict
        replica = connections["replica"].settings_dict
        write = self.stdout.write
        write("")
        write(self.style.SUCCESS(f"PerfShop demo is ready ({size} data set)"))
        for name, count in counts.items():
            write(f"  {name:<12} {count:>12,}")
        write(f"  seed time    {seed_seconds:>10.1f} s   (whole demo: {total_seconds:.1f} s)")
        write("")
        write(f"  primary      postgresql://{primary['HOST']}:{primary['PORT']}/{primary['NAME']}")
        write(f"  replica      postgresql://{replica['HOST']}:{replica['PORT']}/{replica['NAME']}")
        write(f"  redis        {settings.REDIS_URL}")
        if report is not None:
            shown = report.relative_to(Path(settings.BASE_DIR))
            write(f"  benchmark    {shown / 'bench.html'}   (also bench.json, bench.md)")
        write("")
        write(NEXT_STEPS.format(sku=sku))
