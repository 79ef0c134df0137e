"""bulk_writes under load: placing an order with 50 lines, one unit each
(shop/bench/scenarios/bulk_writes.py), algorithmic_complexity held on as in the bench.

Each order is cancelled at once (a request of its own in the stats), so its stock comes back,
and a process places at most LOADTEST_MAX_ORDERS orders (default 200): see OrderingUser. The
bench's second scenario, importing thousands of products, is left out: an import adds rows to
the catalog for good, and every later run would browse them. The bench measures it, rolled back.
"""

from locust import task

from loadtests.common import OrderingUser
from shop.bench import holds


class BulkWritesUser(OrderingUser):
    technique = "bulk_writes"
    lines = 50
    hold = holds.BULK_WRITES

    @task
    def place_order(self) -> None:
        self.order_and_cancel()
