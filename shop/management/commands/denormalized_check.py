"""`python manage.py denormalized_check [--fix]`: does every stored copy equal what it copies?

For each of Review.author_username, Product.rating_avg, Product.review_count,
Order.item_count and Order.total_amount it prints how many rows differ from the value
computed from their source rows, with a few examples. Exit status 1 when any row drifts,
so a script or CI job can run it. With --fix it repairs them all in one transaction, then
checks again. See docs/techniques/denormalized_fields.md.
"""

import sys

from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS

from shop.techniques import denormalized_fields


class Command(BaseCommand):
    help = (
        "Count the rows whose denormalized copy (author name, rating, review count, order "
        "units and total) differs from what it copies; --fix repairs them. Exit status 1 "
        "when drift is found and not repaired."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="repair the drifted rows")
        parser.add_argument(
            "--examples", type=int, default=3, help="drifted rows shown per copy (default 3)"
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, fix: bool, examples: int, database: str, **options):
        drifted = self.report(examples=examples, using=database)
        if drifted and fix:
            repaired = denormalized_fields.repair(using=database)
            total = sum(repaired.values())
            self.stdout.write(f"repaired {total:,} rows in one transaction; checking again")
            drifted = self.report(examples=examples, using=database)
        if drifted:
            hint = "" if fix else " Run with --fix to repair them."
            self.stdout.write(f"drift: {drifted:,} rows.{hint}")
            sys.exit(1)
        self.stdout.write("no drift: every stored copy equals what it copies")

    def report(self, *, examples: int, using: str) -> int:
        """Print one line per copy (and its examples); return the drifted rows in all."""
        found = denormalized_fields.drift(examples=examples, using=using)
        width = max(len(item.copy.name) for item in found)
        for item in found:
            self.stdout.write(f"  {item.copy.name:<{width}}  {item.rows:>9,} rows drift")
            for row_id, stored, computed in item.examples:
                self.stdout.write(
                    f"      id {row_id}: stored {_shown(stored)}, computed {_shown(computed)}"
                )
        return sum(item.rows for item in found)


def _shown(value) -> str:
    return repr(value) if isinstance(value, str) else str(value)  # quotes show blanks in names
