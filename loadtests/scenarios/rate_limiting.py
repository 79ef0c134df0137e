"""rate_limiting under load: users logging in again and again and placing orders far faster
than a customer does (shop/bench/scenarios/rate_limiting.py measures the limit itself).

Every user logs in from 127.0.0.1, so their logins share one bucket of the login limit per IP:
off, every login is answered; on, past RATE_LIMITING_LOGIN_CAPACITY the logins are answered 429
with Retry-After, at RATE_LIMITING_LOGIN_PER_MINUTE at most. Orders are limited per token:
each user past RATE_LIMITING_ORDERS_CAPACITY gets 429s. Here a 429 is the expected answer and
is counted as a success (the count is logged when the test stops): watch the share of 429s
and that the server's latency stays flat while it refuses. With LOCUST_WAIT_MIN=0
LOCUST_WAIT_MAX=0 the users hammer it as a script would.

Each accepted order is cancelled at once, so its stock comes back, and a process places at most
LOADTEST_MAX_ORDERS orders (default 200): see OrderingUser.
"""

from locust import task

from loadtests.common import OrderingUser
from shop.bench import holds


class RateLimitingUser(OrderingUser):
    technique = "rate_limiting"
    lines = 1
    hold = holds.RATE_LIMITING
    expects_rate_limit = True

    @task
    def log_in_again(self) -> None:
        self.log_in(
            self.username,
            headers=self.toggles(**holds.RATE_LIMITING),
            name="rate_limiting: /api/auth/token/",
        )

    @task
    def place_order(self) -> None:
        self.order_and_cancel()
