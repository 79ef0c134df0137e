"""db_indexes under load: the staff order filter, the product search and the product list
(shop/bench/scenarios/db_indexes.py), in turn, with the bench's holds.

The indexes are a state of the database, not of a request: the server refuses `db_indexes` in
X-Perf-Toggles. Choose the side with `python manage.py db_indexes off` (or `on`) before the
run, and say which with LOADTEST_TOGGLE; each user checks at its start, with
`GET /api/perf/toggles/`, that the database is in that state, and stops with a failure if not.
"""

from datetime import date, timedelta

from locust import task

from loadtests.common import STAFF, TechniqueUser, json_body

# The examples and holds the bench uses; both import without Django's set-up.
from shop.bench import holds
from shop.bench.query_examples import FILTER_DAYS, FILTER_STATUS, SEARCH_EXAMPLE


class DbIndexesUser(TechniqueUser):
    technique = "db_indexes"
    per_request = False

    def on_start(self) -> None:
        super().on_start()
        self.require_database_state({True: "db_indexes on", False: "db_indexes off"})
        self.log_in(STAFF)
        self.filter_path = self.staff_filter_path()

    def staff_filter_path(self) -> str:
        """FILTER_STATUS over the FILTER_DAYS days up to the newest order's day (UTC)."""
        newest = json_body(
            self.client.get(
                "/api/staff/orders/?page_size=1",
                headers=self.toggles(**holds.DB_INDEXES_STAFF_FILTER),
                name="learn: /api/staff/orders/?page_size=1",
            )
        ).get("results") or [{}]
        created = newest[0].get("created_at")
        date_to = date.fromisoformat(created[:10]) if created else date.today()
        date_from = date_to - timedelta(days=FILTER_DAYS - 1)
        return (
            f"/api/staff/orders/?status={FILTER_STATUS}&date_from={date_from}"
            f"&date_to={date_to}&page_size=50"
        )

    @task
    def staff_filter(self) -> None:
        if self.authenticated():
            self.client.get(
                self.filter_path,
                headers=self.toggles(**holds.DB_INDEXES_STAFF_FILTER),
                name=f"db_indexes: /api/staff/orders/?status={FILTER_STATUS} (last {FILTER_DAYS} days)",
            )

    @task
    def product_search(self) -> None:
        self.client.get(
            f"/api/products/?search={SEARCH_EXAMPLE}&page_size=50",
            headers=self.toggles(**holds.DB_INDEXES),
            name=f"db_indexes: /api/products/?search={SEARCH_EXAMPLE}",
        )

    @task
    def product_list(self) -> None:
        self.client.get(
            "/api/products/?page_size=50",
            headers=self.toggles(**holds.DB_INDEXES),
            name="db_indexes: /api/products/?page_size=50",
        )
