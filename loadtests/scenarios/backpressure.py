"""backpressure under load: users placing orders faster than the payment workers capture them
(start the stack with few payment workers and a slow gateway, e.g.
PAYMENT_GATEWAY_STUB_LATENCY_MS=200, and async_tasks on). Off, every order is taken and the
payment queue grows; on, past BACKPRESSURE_MAX_DEPTH waiting captures the answer is a 503 with
Retry-After, which Locust counts as a failure: watch the failure rate rise while the queue
depth (`redis-cli -p 16380 llen payment`) stays at its bound.

Each accepted order is cancelled at once, so its stock comes back, and a process places at most
LOADTEST_MAX_ORDERS orders (default 200): see OrderingUser.
"""

from locust import task

from loadtests.common import OrderingUser
from shop.bench import holds


class BackpressureUser(OrderingUser):
    technique = "backpressure"
    lines = 1
    hold = holds.BACKPRESSURE

    @task
    def place_order(self) -> None:
        self.order_and_cancel()
