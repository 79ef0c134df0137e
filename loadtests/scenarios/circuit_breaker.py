"""circuit_breaker under load: users placing orders while the server's payment gateway is
down, with no breaker (off: every order waits the client's timeout, then 504) or with it (on:
after the first few timeouts the breaker opens and orders fail at once with 503 and
Retry-After, until a probe finds the gateway back). See shop/bench/scenarios/circuit_breaker.py
(short_transactions held on as in the bench).

For the outage, start the local stack's stub gateway hung past the client's 3 s timeout
(PAYMENT_GATEWAY_STUB_LATENCY_MS=10000, see docs/techniques/circuit_breaker.md); with a healthy
gateway both sides place orders alike. Failed orders are Locust failures: the failure rate is
the error rate, and the response times are what each error cost. Each placed order is
cancelled at once, so its stock comes back; a process places at most LOADTEST_MAX_ORDERS
orders (default 200): see OrderingUser.
"""

from locust import task

from loadtests.common import OrderingUser
from shop.bench import holds


class CircuitBreakerUser(OrderingUser):
    technique = "circuit_breaker"
    lines = 1
    hold = holds.CIRCUIT_BREAKER

    @task
    def place_order(self) -> None:
        self.order_and_cancel()
