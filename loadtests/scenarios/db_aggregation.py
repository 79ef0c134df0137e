"""db_aggregation under load: the staff sales report over the longest range it allows, 366
days up to today (shop/bench/scenarios/db_aggregation.py). materialized_view held off: the
report aggregates live."""

from datetime import date, timedelta

from locust import task

from loadtests.common import STAFF, TechniqueUser
from shop.bench import holds


class DbAggregationUser(TechniqueUser):
    technique = "db_aggregation"

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
                headers=self.toggles(**holds.DB_AGGREGATION),
                name="db_aggregation: /api/reports/sales/ (366 days)",
            )
