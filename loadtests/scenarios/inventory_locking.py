"""inventory_locking under load: every user orders one unit of the same SKU, the one the
bench's pair orders (shop/bench/scenarios/inventory_locking.py), so every request contends
for one row; bulk_writes and algorithmic_complexity held on as in the bench.

The strategy is the server's: start it with INVENTORY_LOCKING_STRATEGY set (default
conditional_update). Each order is cancelled at once, so its unit comes back, and a process
places at most LOADTEST_MAX_ORDERS orders: see OrderingUser. Locust sees latencies and 409s;
the units oversold are counted by the bench's rounds, which own their stock.
"""

from locust import task

from loadtests.common import OrderingUser
from shop.bench import holds


class InventoryLockingUser(OrderingUser):
    technique = "inventory_locking"
    lines = 1
    hold = holds.INVENTORY_LOCKING

    @task
    def place_order(self) -> None:
        self.order_and_cancel()
