"""table_partitioning under load: the staff activity feed and one month's counts by kind
(shop/bench/scenarios/table_partitioning.py), in turn. read_replica is held off, as in the
bench: both read the primary's log. Retiring a month is a job, not a request (`manage.py archive`), so it is not here.

The layout is a state of the database, not of a request: the server refuses
`table_partitioning` in X-Perf-Toggles. Choose the side before the run (`manage.py migrate
orders 0006` makes the log a plain table, `manage.py migrate orders` partitions it again) and
say which with LOADTEST_TOGGLE; each user checks at its start, with `GET /api/perf/toggles/`,
that the database is in that state, and stops with a failure if not.
"""

from datetime import date

from locust import task

from loadtests.common import STAFF, TechniqueUser
from shop.bench import holds

RECENT_HOURS = 24  # as the bench's feed


class TablePartitioningUser(TechniqueUser):
    technique = "table_partitioning"
    per_request = False

    def on_start(self) -> None:
        super().on_start()
        self.require_database_state({True: "migrate orders", False: "migrate orders 0006"})
        self.log_in(STAFF)
        today = date.today()
        # The last whole month, as the bench counts.
        self.month = f"{today.year - (today.month == 1)}-{(today.month - 2) % 12 + 1:02d}"

    @task
    def activity_feed(self) -> None:
        if self.authenticated():
            self.client.get(
                f"/api/staff/events/?hours={RECENT_HOURS}",
                headers=self.toggles(**holds.TABLE_PARTITIONING),
                name=f"table_partitioning: /api/staff/events/ (last {RECENT_HOURS} h)",
            )

    @task
    def month_counts(self) -> None:
        if self.authenticated():
            self.client.get(
                f"/api/staff/events/month/?month={self.month}",
                headers=self.toggles(**holds.TABLE_PARTITIONING),
                name="table_partitioning: /api/staff/events/month/ (last whole month)",
            )
