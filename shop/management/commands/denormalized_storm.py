"""`python manage.py denormalized_storm [--seconds 30] [--workers 8]`: concurrent writes to what
the denormalized copies copy, for a bounded time, then `denormalized_check`.

It writes to the database for good (reviews, renames, order items): run it on a seeded
scratch database. The storm is in shop/denormalized_storm.py; the chapter
docs/techniques/denormalized_fields.md explains what it shows. Exit status 1 when the check
finds drift or a write failed for a reason other than an expected refusal or a deadlock
(which PostgreSQL resolves by rolling one transaction back whole).
"""

import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from shop import denormalized_storm


class Command(BaseCommand):
    help = (
        "Run a randomized storm of concurrent review creates and deletes, renames and order "
        "item changes on separate connections, then check every denormalized copy."
    )

    def add_arguments(self, parser):
        parser.add_argument("--seconds", type=float, default=30.0)
        parser.add_argument("--workers", type=int, default=8, help="threads, one connection each")
        parser.add_argument("--seed", type=int, default=1, help="random seed of the mix")

    def handle(self, *args, seconds: float, workers: int, seed: int, **options):
        if seconds <= 0 or workers < 1:
            raise CommandError("--seconds must be positive and --workers at least 1")
        self.stdout.write(f"storm: {workers} workers for {seconds:g} s (seed {seed})")
        try:
            totals = denormalized_storm.run(
                seconds=seconds, workers=workers, seed=seed, progress=self._progress
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        done = sum(totals.done.values())
        self.stdout.write(f"\nwrites committed: {done:,} ({done / seconds:,.0f}/s)")
        for kind, n in sorted(totals.done.items()):
            self.stdout.write(f"  {kind:<28} {n:>8,}")
        self.stdout.write(
            f"refused (another writer got there first): {sum(totals.refused.values()):,}"
        )
        for kind, n in sorted(totals.refused.items()):
            self.stdout.write(f"  {kind:<40} {n:>8,}")
        self.stdout.write(f"deadlocks (rolled back whole): {sum(totals.deadlocks.values()):,}")
        for kind, n in sorted(totals.deadlocks.items()):
            self.stdout.write(f"  {kind:<40} {n:>8,}")
        if totals.first_deadlock:
            self.stdout.write("  the first, as PostgreSQL tells it:")
            for line in totals.first_deadlock.splitlines():
                self.stdout.write(f"    {line}")
        self.stdout.write(f"errors: {sum(totals.errors.values()):,}")
        for kind, n in sorted(totals.errors.items()):
            self.stdout.write(f"  {kind:<40} {n:>8,}")
        self.stdout.write("\ndenormalized_check:")
        try:
            call_command("denormalized_check", stdout=self.stdout._out)
        except SystemExit as exc:
            sys.exit(exc.code)
        if totals.errors:
            sys.exit(1)

    def _progress(self, elapsed: float, totals: denormalized_storm.Totals) -> None:
        with totals.lock:
            done, refused = sum(totals.done.values()), sum(totals.refused.values())
            deadlocks, errors = sum(totals.deadlocks.values()), sum(totals.errors.values())
        self.stdout.write(
            f"  {elapsed:5.1f} s  {done:>8,} committed  {refused:>6,} refused  "
            f"{deadlocks:>4,} deadlocks  {errors:>4,} errors"
        )
