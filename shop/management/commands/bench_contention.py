"""`python manage.py bench_contention [--buyers 8] [--orders 5] [--latency-ms 200]`: concurrent
buyers of the same item, with short_transactions off and on, orders committed for real
(shop/bench/gateway_contention.py). It writes, then deletes what it wrote: run it on a seeded scratch
database, not one that serves traffic."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from shop.bench import gateway_contention


class Command(BaseCommand):
    help = (
        "Throughput and lock wait of concurrent buyers of the same item, with the payment "
        "call inside the stock transaction (short_transactions off) and outside it (on)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--buyers", type=int, default=8, help="threads, one connection each")
        parser.add_argument("--orders", type=int, default=5, help="orders per buyer per round")
        parser.add_argument("--latency-ms", type=int, default=200, help="the gateway's latency")
        parser.add_argument("--rounds", type=int, default=2, help="rounds per side, ABBA")
        parser.add_argument("--lines", type=int, default=1, help="variants in every order")
        parser.add_argument(
            "--json", type=Path, dest="json_path", help="also write the result here"
        )

    def handle(self, *args, buyers, orders, latency_ms, rounds, lines, json_path, **opts):
        if buyers < 1 or orders < 1 or rounds < 1 or lines < 1 or latency_ms < 0:
            raise CommandError("--buyers, --orders, --rounds and --lines must be at least 1, "
                               "--latency-ms not negative")  # fmt: skip
        self.stdout.write(
            f"{buyers} buyers x {orders} orders of the same {lines} variant(s), gateway "
            f"{latency_ms} ms, {rounds} rounds a side"
        )
        try:
            result = gateway_contention.run(
                buyers=buyers, orders=orders, latency_ms=latency_ms, rounds=rounds, lines=lines,
                progress=lambda line: self.stdout.write(f"  {line}"),
            )  # fmt: skip
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        summary = result.summary()
        for side in ("off", "on"):
            figures = summary[side]
            self.stdout.write(
                f"{side:>3}: {figures['throughput_per_s']:6.1f} orders/s   "
                f"lock wait {figures['lock_wait_s']:6.2f} s/round   "
                f"p50 {figures['p50_ms']:7.1f} ms   p95 {figures['p95_ms']:7.1f} ms   "
                f"most waiting at once {figures['max_waiting']}"
            )
        self.stdout.write(f"throughput on/off: {summary['throughput_ratio']:.1f}x")
        if json_path is not None:
            json_path.write_text(json.dumps(summary, indent=2) + "\n")
            self.stdout.write(f"written to {json_path}")
        if not result.same_work:
            raise CommandError("the sides did not do the same work: " + "; ".join(result.problems))
