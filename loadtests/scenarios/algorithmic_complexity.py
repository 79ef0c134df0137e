"""algorithmic_complexity under load: placing an order with 100 lines, the most an order may
have by default (ORDER_MAX_LINES; shop/bench/scenarios/algorithmic_complexity.py), bulk_writes
held on as in the bench. At 100 lines the gap is a fraction of a millisecond: raise the
server's ORDER_MAX_LINES and LOADTEST_ORDER_LINES together to see it grow.

Each order is cancelled at once and a process places at most LOADTEST_MAX_ORDERS orders: see
OrderingUser.
"""

import os

from locust import task

from loadtests.common import OrderingUser
from shop.bench import holds


class AlgorithmicComplexityUser(OrderingUser):
    technique = "algorithmic_complexity"
    lines = int(os.environ.get("LOADTEST_ORDER_LINES", "100"))
    hold = holds.ALGORITHMIC_COMPLEXITY

    @task
    def place_order(self) -> None:
        self.order_and_cancel()
