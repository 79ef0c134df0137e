"""materialized_view under load: the staff sales report over the longest range it allows, 366
days up to today (shop/bench/scenarios/materialized_view.py), live off, from the refreshed
materialized views on. Run `manage.py refresh_sales_report` (or the beat process) first, or the
on side answers from the views as the last refresh left them.

Read-only. Holds db_aggregation on (the live side's GROUP BY) and read_replica off (the views
are refreshed on the primary)."""

from datetime import date, timedelta

from locust import task

from loadtests.common import STAFF, TechniqueUser
from shop.bench import holds


class MaterializedViewUser(TechniqueUser):
    technique = "materialized_view"

    def on_start(self) -> None:
        super().on_start()
        self.log_in(STAFF)

    @task
    def sales_report(self) -> None:
        date_to = date.today()
        date_from = date_to - timedelta(days=365)  # 366 days, both ends included
        if self.authenticated():
            self.client.get(
                f"/api/reports/sales/?date_from={date_from}&date_to={date_to}",
                headers=self.toggles(**holds.MATERIALIZED_VIEW),
                name="materialized_view: /api/reports/sales/ (366 days)",
            )
