"""`python manage.py archive --older-than N [--move]`: retire the order event log's old months.

Each partition whose month ended more than N months before this one began is detached
(`DETACH PARTITION ... CONCURRENTLY`) and dropped, or with --move, its rows copied to
orders_orderevent_archive first. The work is shop.techniques.table_partitioning.archive().
"""

from time import perf_counter

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from shop.techniques import table_partitioning


class Command(BaseCommand):
    help = (
        "Detach the order event log's partitions older than N months and drop them, or move "
        "their rows to the archive table (--move)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            required=True,
            metavar="N",
            help="months: a partition goes once its month ended N months before this one began",
        )
        parser.add_argument(
            "--move",
            action="store_true",
            help=f"copy the rows to {table_partitioning.ARCHIVE_TABLE} instead of dropping them",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, older_than: int, move: bool, database: str, **options):
        if not table_partitioning.in_effect(using=database):
            raise CommandError(
                f"{table_partitioning.TABLE} is not partitioned: run `manage.py migrate orders`"
            )
        started = perf_counter()
        try:
            archived = table_partitioning.archive(
                older_than_months=older_than, move=move, using=database
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        for done in archived:
            self.stdout.write(f"  {done.name}  {done.rows:>10,} rows  {done.to}")
        rows = sum(done.rows for done in archived)
        partitions = "partition" if len(archived) == 1 else "partitions"
        self.stdout.write(
            f"archived {len(archived)} {partitions} ({rows:,} rows) older than {older_than} "
            f"months in {perf_counter() - started:.2f} s"
        )
