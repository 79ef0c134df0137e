"""`python manage.py seed --size small|medium|large [--seed N] [--anchor YYYY-MM-DD]`."""

import json
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from orders.rates import seed_rates
from shop.seed import DEFAULT_SEED, SIZES
from shop.seed import seed as run_seed
from shop.seed.redis_state import WARNING


def parse_anchor(value: str) -> date:
    try:
        if len(value) != 10:
            raise ValueError
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--anchor must be a date as YYYY-MM-DD, got {value!r}") from None


class Command(BaseCommand):
    help = (
        "Replace all shop data (users, catalog, orders) with a deterministic generated data set. "
        "Sizes: "
        + "; ".join(
            f"{name}: {s.users:,} users, {s.products:,} products, ~{s.reviews:,} reviews, "
            f"{s.orders:,} orders"
            for name, s in SIZES.items()
        )
        + ". Every account's password is 'password' (user1..userN, staff, admin)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--size", choices=list(SIZES), required=True)
        parser.add_argument(
            "--seed",
            type=int,
            default=DEFAULT_SEED,
            help=f"RNG seed (default {DEFAULT_SEED}); the same seed and anchor give identical rows",
        )
        parser.add_argument(
            "--anchor",
            metavar="YYYY-MM-DD",
            help="timestamps end at this date's UTC midnight (default: today, UTC)",
        )
        parser.add_argument(
            "--quiet",
            action="store_true",
            help="no progress or tables: print only the summary and targets",
        )
        parser.add_argument("--json", metavar="PATH", help="also write the report as JSON here")
        parser.add_argument(
            "--database", default=DEFAULT_DB_ALIAS, help="database alias to seed (default: default)"
        )

    def _warnings_only(self, line: str) -> None:
        """--quiet: no progress, but a warning still reaches stderr (a Redis that did not
        answer when the seed dropped its keys, say)."""
        if line.startswith(WARNING):
            self.stderr.write(line)

    def handle(self, *args, **options):
        anchor = parse_anchor(options["anchor"]) if options.get("anchor") else None
        quiet = options.get("quiet", False)
        write = self.stdout.write
        try:
            report = run_seed(
                size=options["size"],
                seed=options.get("seed", DEFAULT_SEED),
                anchor=anchor,
                using=options.get("database", DEFAULT_DB_ALIAS),
                out=self._warnings_only if quiet else write,
            )
        except KeyboardInterrupt:
            raise CommandError(
                "interrupted: rolled back, the previous data is unchanged", returncode=130
            ) from None
        # The shop's reference tables, which the seed does not replace: their default rows.
        tax_rates, shipping_rates = seed_rates(using=options.get("database", DEFAULT_DB_ALIAS))
        if not quiet:
            write(f"Rates: {tax_rates} tax rates, {shipping_rates} shipping rates")
        if quiet:
            write(report.summary_line())
            for target in report.targets():
                write(target.line())
        if options.get("json"):
            path = Path(options["json"])
            path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
            if not quiet:
                write(f"Report written to {path}")
