"""What every PerfShop Locust file shares: the safety rails, logging in, the toggle header and
placing orders within a budget.

The general shopper (`locustfile.py`) and the technique scenarios (`scenarios/<name>.py`) import
from here. Locust puts the current directory on `sys.path`, so run them from the repository
root (`make loadtest` and loadtests/run.sh do).

Environment: LOCUST_USER_POOL, LOCUST_PASSWORD, LOCUST_WAIT_MIN / LOCUST_WAIT_MAX,
LOADTEST_ALLOW_REMOTE, LOADTEST_MAX_RUN_TIME, LOADTEST_ACCEPT_ENCODING (see loadtests/README.md),
and for the technique scenarios LOADTEST_TOGGLE (on|off) and LOADTEST_MAX_ORDERS.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sys
import uuid
from collections import deque

from gevent.lock import Semaphore
from locust import HttpUser, between, events
from locust.exception import StopUser

from shop.loopback import is_loopback_url  # plain Python, like shop.toggles
from shop.toggles import format_flags  # plain Python: no Django set-up in the Locust process

logger = logging.getLogger("perfshop.loadtest")

DEFAULT_HOST = "http://127.0.0.1:8000"
USER_POOL = int(os.environ.get("LOCUST_USER_POOL", "1000"))
PASSWORD = os.environ.get("LOCUST_PASSWORD", "password")
WAIT_MIN = float(os.environ.get("LOCUST_WAIT_MIN", "0.5"))
WAIT_MAX = float(os.environ.get("LOCUST_WAIT_MAX", "2.0"))
MAX_RUN_TIME = int(os.environ.get("LOADTEST_MAX_RUN_TIME", "300"))
# Sent by every user, stated rather than left to the HTTP library: requests asks for
# "gzip, deflate, br, zstd" by itself, and with the compression technique on, every scenario
# would then measure its technique plus compression. The compression scenario sends its own.
ACCEPT_ENCODING = os.environ.get("LOADTEST_ACCEPT_ENCODING", "identity")
STAFF = "staff"  # the seeded staff account (not a superuser)
TOGGLE_HEADER = "X-Perf-Toggles"  # shop.perf_headers.TOGGLE_HEADER (needs Django to import)
SIDES = {"on": True, "off": False}
# Every simulated user logs in from 127.0.0.1, and the login limit is per client IP
# (rate_limiting): past its burst every further login would be refused. A load test is not a
# password guesser, so logins hold it off unless a scenario sends headers of its own (the
# rate_limiting scenario sends its side).
LOGIN_HEADERS = {TOGGLE_HEADER: format_flags({"rate_limiting": False})}

# Outcomes worth knowing about that are not failures; logged when the test stops.
notes = {"orders_out_of_stock": 0, "orders_placed": 0, "orders_cancelled": 0, "rate_limited": 0}


@events.init.add_listener
def _safety_rails(environment, **_kwargs):
    """Refuse non-loopback targets; never let a headless run go on forever."""
    host = environment.host or DEFAULT_HOST
    if not is_loopback_url(host) and os.environ.get("LOADTEST_ALLOW_REMOTE") != "1":
        logger.error(
            "refusing to load-test %s: only 127.0.0.1/localhost are allowed "
            "(set LOADTEST_ALLOW_REMOTE=1 if you really mean it)",
            host,
        )
        sys.exit(2)
    try:
        toggle_side()
    except ValueError as exc:
        logger.error("%s", exc)
        sys.exit(2)
    options = environment.parsed_options
    unbounded = (
        options is not None
        and getattr(options, "headless", False)
        and not getattr(options, "worker", False)
        and not options.run_time
    )
    if unbounded:
        logger.warning("no --run-time given: stopping after %d s", MAX_RUN_TIME)
        options.run_time = MAX_RUN_TIME


@events.test_stop.add_listener
def _report_notes(**_kwargs):
    if notes["orders_placed"] or notes["orders_out_of_stock"]:
        logger.info(
            "orders placed: %d (cancelled again: %d); answered 409 insufficient stock "
            "(counted as successes): %d",
            notes["orders_placed"],
            notes["orders_cancelled"],
            notes["orders_out_of_stock"],
        )
    if notes["rate_limited"]:
        logger.info(
            "answered 429 by the rate limit (counted as successes where the scenario expects "
            "them): %d",
            notes["rate_limited"],
        )


def toggle_side() -> bool:
    """LOADTEST_TOGGLE: which side of its technique a scenario runs, `on` (the default) or
    `off`. Anything else stops the run before a request is sent."""
    value = os.environ.get("LOADTEST_TOGGLE", "on").strip().lower()
    if value not in SIDES:
        raise ValueError(f"LOADTEST_TOGGLE must be 'on' or 'off', not {value!r}")
    return SIDES[value]


def customer() -> str:
    """A random seeded customer, `user1`..`userN` (N = LOCUST_USER_POOL)."""
    return f"user{random.randint(1, USER_POOL)}"


class PerfShopUser(HttpUser):
    """A simulated client of the PerfShop API that can log in with a token."""

    abstract = True
    host = DEFAULT_HOST
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        self.token: str | None = None
        self.client.headers["Accept-Encoding"] = ACCEPT_ENCODING

    # Whether a 429 of the rate limit is an answer this user expects (the rate_limiting
    # scenario's) rather than a failure.
    expects_rate_limit = False

    def log_in(
        self, username: str, *, headers: dict | None = None, name: str = "/api/auth/token/"
    ) -> bool:
        """POST /api/auth/token/ and keep the token; `headers` replace LOGIN_HEADERS."""
        self.username = username
        with self.client.post(
            "/api/auth/token/",
            json={"username": username, "password": PASSWORD},
            headers=LOGIN_HEADERS if headers is None else headers,
            name=name,
            catch_response=True,
        ) as response:
            token = json_body(response).get("token") if response.status_code == 200 else None
            if token:
                self.token = token
                self.client.headers["Authorization"] = f"Token {token}"
                response.success()
                return True
            if self.rate_limited(response):
                return False
            response.failure(f"login as {username} failed: HTTP {response.status_code}")
            return False

    def rate_limited(self, response) -> bool:
        """A 429 this user expects: counted in the notes and marked a success."""
        if response.status_code == 429 and self.expects_rate_limit:
            notes["rate_limited"] += 1
            response.success()
            return True
        return False

    def authenticated(self) -> bool:
        return self.token is not None or self.log_in(self.username)

    def forget_token(self) -> None:
        self.token = None
        self.client.headers.pop("Authorization", None)

    def post_order(
        self, items: list[dict], *, headers: dict | None = None, name: str = "/api/orders/"
    ) -> int | None:
        """POST /api/orders/ with a fresh Idempotency-Key; the new order's id, or None.

        A 409 (insufficient stock) is a legitimate business answer, counted as a success."""
        with self.client.post(
            "/api/orders/",
            json={"items": items},
            headers={"Idempotency-Key": str(uuid.uuid4()), **(headers or {})},
            name=name,
            catch_response=True,
        ) as response:
            if response.status_code in (200, 201):
                notes["orders_placed"] += 1
                response.success()
                return json_body(response).get("id")
            if response.status_code == 409:
                notes["orders_out_of_stock"] += 1
                response.success()
            elif self.rate_limited(response):
                pass
            elif response.status_code == 401:
                self.forget_token()
                response.failure("token rejected (401)")
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
            return None


class TechniqueUser(PerfShopUser):
    """A user that runs one technique's requests, off or on as LOADTEST_TOGGLE says.

    Each request sends `X-Perf-Toggles` with the technique at that side plus the toggles the
    technique's bench scenario holds, taken from the same entry of shop/bench/holds.py
    (`self.toggles(**holds.SELECT_RELATED)`), so the pair isolates the technique exactly as
    the bench does. A technique that cannot be switched per request
    (db_indexes) sets `per_request = False`: its holds are sent, never its own name.
    """

    abstract = True
    technique: str = ""
    per_request = True

    def on_start(self) -> None:
        super().on_start()
        self.enabled = toggle_side()

    def toggles(self, **hold: bool) -> dict[str, str]:
        """The request headers: X-Perf-Toggles with `hold` and this technique's side."""
        flags = dict(hold)
        if self.per_request:
            flags[self.technique] = self.enabled
        return {TOGGLE_HEADER: format_flags(flags)}

    def require_database_state(self, switch: dict[bool, str]) -> None:
        """For a technique whose side is the database's (`per_request = False`): stop this
        user, with a failure saying which command to run, unless the server reports the
        technique at LOADTEST_TOGGLE's side. `switch` is the command for each side."""
        with self.client.get(
            "/api/perf/toggles/", name="learn: /api/perf/toggles/", catch_response=True
        ) as response:
            rows = response.json() if response.status_code == 200 else []
            state = {row["name"]: row["enabled"] for row in rows}.get(self.technique)
            if state is not self.enabled:
                response.failure(
                    f"LOADTEST_TOGGLE={'on' if self.enabled else 'off'} but {self.technique} "
                    f"is {'on' if state else 'off'} in the database: run "
                    f"`python manage.py {switch[self.enabled]}` first"
                )
                raise StopUser()


class OrderingUser(TechniqueUser):
    """A technique user that places orders of `lines` distinct in-stock SKUs, one unit each,
    and cancels each order at once, so its stock comes back and a run never exhausts it.

    Orders are written for real (the bench rolls its back), so a Locust process places at most
    LOADTEST_MAX_ORDERS of them (default 200), shared by its users; then they stop. The rows a
    run adds are bounded, not only its time. The SKUs (one variant in stock of each of the newest
    products) are learnt once per process; the bench likewise orders the same SKUs every time.
    """

    abstract = True
    lines = 1
    hold: dict[str, bool] = {}
    orders_left = int(os.environ.get("LOADTEST_MAX_ORDERS", "200"))
    _skus: list[str] = []
    _learning = Semaphore()

    def on_start(self) -> None:
        super().on_start()
        self.log_in(customer())
        with self._learning:  # the first user learns; the others wait, then reuse
            if len(self._skus) < self.lines:
                type(self)._skus = self.learn_skus(self.lines)
        if len(self._skus) < self.lines:
            logger.error(
                "found %d in-stock SKUs, %d needed: seed more", len(self._skus), self.lines
            )
            raise StopUser()

    def learn_skus(self, count: int) -> list[str]:
        skus: list[str] = []
        page = 1
        while len(skus) < count:
            listing = json_body(
                self.client.get(
                    "/api/products/",
                    params={"page": page, "page_size": 100},
                    name="learn: /api/products/?page=[n]",
                )
            )
            for product in listing.get("results") or []:
                detail = json_body(
                    self.client.get(
                        f"/api/products/{product['id']}/", name="learn: /api/products/[id]/"
                    )
                )
                in_stock = [v["sku"] for v in detail.get("variants") or [] if v.get("stock", 0) > 0]
                skus.extend(in_stock[:1])
                if len(skus) == count:
                    return skus
            if not listing.get("next"):
                break
            page += 1
        return skus

    def order_and_cancel(self) -> None:
        cls = OrderingUser
        if cls.orders_left <= 0:
            logger.info("LOADTEST_MAX_ORDERS reached: this user stops")
            raise StopUser()
        if not self.authenticated():
            return
        cls.orders_left -= 1
        items = [{"sku": sku, "quantity": 1} for sku in self._skus[: self.lines]]
        order_id = self.post_order(
            items,
            headers=self.toggles(**self.hold),
            name=f"{self.technique}: /api/orders/ ({self.lines} lines)",
        )
        if order_id is None:
            return
        with self.client.post(
            f"/api/orders/{order_id}/cancel/",
            name="/api/orders/[id]/cancel/",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                notes["orders_cancelled"] += 1
            else:
                response.failure(f"cancel: HTTP {response.status_code}: {response.text[:200]}")


ORDER_STOP_TIMEOUT = 30  # seconds; an order of 100 lines and its cancel take well under that


@events.init.add_listener
def _let_orders_finish(environment, **_kwargs):
    """When the run time is up, let an ordering user finish its task (Locust's --stop-timeout).
    Stopped between its order and the cancel, it would leave that order's stock taken."""
    ordering = any(issubclass(cls, OrderingUser) for cls in environment.user_classes or [])
    if ordering and not environment.stop_timeout:
        environment.stop_timeout = ORDER_STOP_TIMEOUT


def json_body(response) -> dict:
    try:
        body = response.json()
    except ValueError:  # requests' JSONDecodeError included
        return {}
    return body if isinstance(body, dict) else {}


def discard(items: deque, value) -> None:
    with contextlib.suppress(ValueError):
        items.remove(value)
