"""async_tasks under load: customers placing orders while the payment gateway and the mail
server take their time (start the stub with PAYMENT_GATEWAY_STUB_LATENCY_MS=200), with the
charge, the stock ledger and the confirmation email in the request (off) or on Celery workers
(on: run the stack's workers, `make serve` / the Procfile's `worker` line).

Each user places an order of two variants, then, as the tutorial's customer does, polls
`GET /api/orders/{id}/` every POLL_S until it settles (`confirmed` or `payment_failed`), at
most LOADTEST_SETTLE_S seconds (default 10; the polls have a name of their own in the stats).
The order is then cancelled, so its stock comes back. Off, the first poll finds it settled.
With no worker running, an order placed with the toggle on stays `placed`: the polls give up
and the order is cancelled anyway (its capture then finds it cancelled and charges nothing).
"""

import os
import time

from locust import task

from loadtests.common import OrderingUser, json_body, notes
from shop.bench import holds

POLL_S = 0.25
SETTLE_S = float(os.environ.get("LOADTEST_SETTLE_S", "10"))
SETTLED = {"confirmed", "payment_failed"}


class AsyncTasksUser(OrderingUser):
    technique = "async_tasks"
    lines = 2
    hold = holds.ASYNC_TASKS

    @task
    def place_and_poll(self) -> None:
        cls = OrderingUser
        if cls.orders_left <= 0 or not self.authenticated():
            self.order_and_cancel()  # stops the user once the budget is spent
            return
        cls.orders_left -= 1
        items = [{"sku": sku, "quantity": 1} for sku in self._skus[: self.lines]]
        order_id = self.post_order(
            items,
            headers=self.toggles(**holds.ASYNC_TASKS),
            name=f"{self.technique}: /api/orders/ ({self.lines} lines)",
        )
        if order_id is None:
            return
        deadline = time.monotonic() + SETTLE_S
        while time.monotonic() < deadline:
            response = self.client.get(
                f"/api/orders/{order_id}/", name="async_tasks poll: /api/orders/[id]/"
            )
            if json_body(response).get("status") in SETTLED:
                break
            time.sleep(POLL_S)
        response = self.client.post(
            f"/api/orders/{order_id}/cancel/", name="/api/orders/[id]/cancel/"
        )
        if response.status_code == 200:
            notes["orders_cancelled"] += 1
