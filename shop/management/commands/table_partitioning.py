"""`python manage.py table_partitioning status|ahead [--months N]`: the order event log's
partitions, and the months made ahead of time (what the daily task
orders.tasks.event_partitions_ahead runs). See docs/techniques/table_partitioning.md."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

from shop.techniques import table_partitioning


class Command(BaseCommand):
    help = (
        "List the order event log's partitions with their rows (status), or create this "
        "month's and the next N months' partitions (ahead)."
    )

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["status", "ahead"])
        parser.add_argument(
            "--months",
            type=int,
            default=table_partitioning.AHEAD,
            help=f"for ahead: months after this one (default {table_partitioning.AHEAD})",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, action: str, months: int, database: str, **options):
        if not table_partitioning.in_effect(using=database):
            raise CommandError(
                f"{table_partitioning.TABLE} is a plain table (table_partitioning is off): "
                "run `manage.py migrate orders` to partition it"
            )
        if action == "ahead":
            if months < 0:
                raise CommandError(f"--months must be 0 or more, not {months}")
            created = table_partitioning.ensure_ahead(months, using=database)
            for name in created:
                self.stdout.write(f"  {name}")
            self.stdout.write(f"created {len(created)} partitions ({months} months ahead)")
            return
        found = table_partitioning.partitions(using=database)
        with connections[database].cursor() as cursor:
            for partition in found:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE relname = %s", [partition.name]
                )
                (rows,) = cursor.fetchone()
                pending = "  DETACH PENDING: run archive again" if partition.detach_pending else ""
                shown = f"~{max(rows, 0):,}" if rows >= 0 else "not analyzed"
                self.stdout.write(f"  {partition.name}  {shown:>12} rows{pending}")
        last = found[-1].month if found else None
        self.stdout.write(
            f"{len(found)} monthly partitions of {table_partitioning.TABLE}"
            + (f", the last for {last:%Y-%m}" if last else "")
        )
