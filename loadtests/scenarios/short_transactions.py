"""short_transactions under load: many users placing orders for the same few variants while
the server's payment gateway takes its time (start the stub with
PAYMENT_GATEWAY_STUB_LATENCY_MS=200), with the gateway call inside the stock transaction or
outside it (shop/bench/scenarios/short_transactions.py; bulk_writes and algorithmic_complexity
held on as in the bench).

Every user orders the same two variants, one unit each, so the orders contend for the same row
locks: with the toggle off they queue behind each other's gateway calls. Each order is
cancelled at once (a request of its own in the stats), so its stock comes back, and a process
places at most LOADTEST_MAX_ORDERS orders (default 200): see OrderingUser.
"""

from locust import task

from loadtests.common import OrderingUser
from shop.bench import holds


class ShortTransactionsUser(OrderingUser):
    technique = "short_transactions"
    lines = 2
    hold = holds.SHORT_TRANSACTIONS

    @task
    def place_order(self) -> None:
        self.order_and_cancel()
