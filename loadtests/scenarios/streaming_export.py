"""streaming_export under load: the staff CSV export of every order
(shop/bench/scenarios/streaming_export.py). Nothing held.

Heavy on purpose: off, each request builds the whole CSV in a worker's memory (100,000 rows on
the medium data set). Start with few users (LOADTEST_USERS=2) and watch the server's memory.
"""

from locust import task

from loadtests.common import STAFF, TechniqueUser


class StreamingExportUser(TechniqueUser):
    technique = "streaming_export"

    def on_start(self) -> None:
        super().on_start()
        self.log_in(STAFF)

    @task
    def export_all_orders(self) -> None:
        if self.authenticated():
            # From a day before any seeded order: the whole table, as the bench exports.
            self.client.get(
                "/api/staff/orders/export.csv?date_from=2000-01-01",
                headers=self.toggles(),
                name="streaming_export: /api/staff/orders/export.csv",
            )
