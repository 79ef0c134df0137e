"""`python manage.py refresh_sales_report`: refresh the sales report's read model now (what the
beat task orders.tasks.refresh_sales_report does every SALES_REPORT_REFRESH_S). See
docs/techniques/materialized_view.md."""

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import DEFAULT_DB_ALIAS

from shop.techniques import materialized_view


class Command(BaseCommand):
    help = (
        "Refresh the sales report's materialized views CONCURRENTLY (readers are not blocked) "
        "and record the time: the report's X-Report-As-Of header."
    )

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, database: str, **options):
        as_of, _seconds = materialized_view.last_refresh(using=database)
        self.stdout.write(f"last refreshed {as_of.isoformat()}")
        self.stdout.write(f"refreshing {', '.join(materialized_view.VIEWS)} ...")
        seconds = materialized_view.refresh(using=database)
        as_of, _seconds = materialized_view.last_refresh(using=database)
        self.stdout.write(
            f"refreshed in {seconds:.2f} s; the report is as of {as_of.isoformat()}. "
            f"Staleness bound with the beat task: {settings.SALES_REPORT_REFRESH_S} s "
            f"(SALES_REPORT_REFRESH_S) + {seconds:.2f} s."
        )
