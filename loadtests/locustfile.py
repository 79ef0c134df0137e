"""PerfShop load test: a shopper who browses a lot, looks at products and reviews, and sometimes
orders.

    locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 \\
        --users 20 --spawn-rate 5 --run-time 60s

(`make loadtest`, or loadtests/run.sh, runs exactly that with CSV output.) Each simulated user
logs in once as one of the seeded users `user1`..`userN` (N = LOCUST_USER_POOL, default 1000,
password "password") and learns product ids and SKUs from the API itself.

Safety rails: only loopback hosts are accepted unless LOADTEST_ALLOW_REMOTE=1, and a headless
run without --run-time is capped at LOADTEST_MAX_RUN_TIME seconds (default 300).

Environment: LOCUST_USER_POOL, LOCUST_PASSWORD, LOCUST_WAIT_MIN / LOCUST_WAIT_MAX (seconds
between tasks, default 0.5 / 2.0), LOADTEST_ALLOW_REMOTE, LOADTEST_MAX_RUN_TIME.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import re
import sys
import uuid
from collections import deque
from urllib.parse import urlparse

from locust import HttpUser, between, events, task

logger = logging.getLogger("perfshop.loadtest")

DEFAULT_HOST = "http://127.0.0.1:8000"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
USER_POOL = int(os.environ.get("LOCUST_USER_POOL", "1000"))
PASSWORD = os.environ.get("LOCUST_PASSWORD", "password")
WAIT_MIN = float(os.environ.get("LOCUST_WAIT_MIN", "0.5"))
WAIT_MAX = float(os.environ.get("LOCUST_WAIT_MAX", "2.0"))
MAX_RUN_TIME = int(os.environ.get("LOADTEST_MAX_RUN_TIME", "300"))
DEFAULT_PAGE_SIZE = 20
MAX_CACHED_PRODUCTS = 50
MAX_CACHED_SKUS = 20
MAX_CACHED_WORDS = 50
_WORD = re.compile(r"[A-Za-z]{3,}")

# Outcomes worth knowing about that are not failures; logged when the test stops.
notes = {"orders_out_of_stock": 0, "orders_placed": 0}


@events.init.add_listener
def _safety_rails(environment, **_kwargs):
    """Refuse non-loopback targets; never let a headless run go on forever."""
    host = environment.host or DEFAULT_HOST
    hostname = urlparse(host).hostname or ""
    if hostname not in LOOPBACK_HOSTS and os.environ.get("LOADTEST_ALLOW_REMOTE") != "1":
        logger.error(
            "refusing to load-test %s: only 127.0.0.1/localhost are allowed "
            "(set LOADTEST_ALLOW_REMOTE=1 if you really mean it)",
            host,
        )
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
    logger.info(
        "orders placed: %d; answered 409 insufficient stock (counted as successes): %d",
        notes["orders_placed"],
        notes["orders_out_of_stock"],
    )


class Shopper(HttpUser):
    host = DEFAULT_HOST
    wait_time = between(WAIT_MIN, WAIT_MAX)

    def on_start(self) -> None:
        self.username = f"user{random.randint(1, USER_POOL)}"
        self.token: str | None = None
        self.product_ids: deque[int] = deque(maxlen=MAX_CACHED_PRODUCTS)
        self.category_ids: set[int] = set()
        self.words: deque[str] = deque(maxlen=MAX_CACHED_WORDS)
        self.skus: deque[str] = deque(maxlen=MAX_CACHED_SKUS)
        self.page_count = 1
        self.log_in()
        self.browse_page(1)

    # --- helpers ------------------------------------------------------------------------------

    def log_in(self) -> bool:
        with self.client.post(
            "/api/auth/token/",
            json={"username": self.username, "password": PASSWORD},
            name="/api/auth/token/",
            catch_response=True,
        ) as response:
            token = _json(response).get("token") if response.status_code == 200 else None
            if token:
                self.token = token
                self.client.headers["Authorization"] = f"Token {token}"
                response.success()
                return True
            response.failure(f"login as {self.username} failed: HTTP {response.status_code}")
            return False

    def authenticated(self) -> bool:
        return self.token is not None or self.log_in()

    def learn_from_page(self, body: dict) -> None:
        results = body.get("results") or []
        count = body.get("count")
        if isinstance(count, int) and results and body.get("previous") is None:
            page_size = max(len(results), 1) if body.get("next") else DEFAULT_PAGE_SIZE
            self.page_count = max(1, math.ceil(count / page_size))
        for product in results:
            if isinstance(product.get("id"), int):
                self.product_ids.append(product["id"])
            category = product.get("category") or {}
            if isinstance(category.get("id"), int):
                self.category_ids.add(category["id"])
            self.words.extend(w.lower() for w in _WORD.findall(product.get("name") or "")[:2])

    def learn_from_product(self, body: dict) -> None:
        for variant in body.get("variants") or []:
            sku, stock = variant.get("sku"), variant.get("stock")
            if sku and (not isinstance(stock, int) or stock > 0) and sku not in self.skus:
                self.skus.append(sku)

    def pick_product(self) -> int | None:
        return random.choice(self.product_ids) if self.product_ids else None

    def browse_page(self, page: int) -> None:
        with self.client.get(
            "/api/products/",
            params={"page": page},
            name="/api/products/?page=[n]",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                self.learn_from_page(_json(response))
            elif response.status_code == 404 and page > 1:
                # The catalogue shrank under us: start over from the first page.
                self.page_count = 1
                response.success()

    def fetch_product(self, product_id: int) -> None:
        with self.client.get(
            f"/api/products/{product_id}/", name="/api/products/[id]/", catch_response=True
        ) as response:
            if response.status_code == 200:
                self.learn_from_product(_json(response))
            elif response.status_code == 404:
                _discard(self.product_ids, product_id)
                response.failure("product vanished (404)")

    # --- tasks (weights 10/8/4/1/3) -----------------------------------------------------------

    @task(10)
    def browse_products(self) -> None:
        roll = random.random()
        if roll < 0.15 and self.category_ids:
            self.client.get(
                "/api/products/",
                params={"category": random.choice(sorted(self.category_ids))},
                name="/api/products/?category=[id]",
            )
        elif roll < 0.30 and self.words:
            self.client.get(
                "/api/products/",
                params={"search": random.choice(self.words)},
                name="/api/products/?search=[word]",
            )
        else:
            # Most shoppers stay on the first few pages; a few dig deep.
            page = min(1 + int(random.expovariate(1 / 3)), self.page_count)
            self.browse_page(page)

    @task(8)
    def view_product(self) -> None:
        product_id = self.pick_product()
        if product_id is None:
            self.browse_page(1)
            return
        self.fetch_product(product_id)

    @task(4)
    def read_reviews(self) -> None:
        product_id = self.pick_product()
        if product_id is None:
            return
        self.client.get(f"/api/products/{product_id}/reviews/", name="/api/products/[id]/reviews/")

    @task(1)
    def place_order(self) -> None:
        if not self.authenticated():
            return
        if not self.skus:
            product_id = self.pick_product()
            if product_id is None:
                return
            self.fetch_product(product_id)
            if not self.skus:
                return
        sku = random.choice(self.skus)
        with self.client.post(
            "/api/orders/",
            json={"items": [{"sku": sku, "quantity": 1}]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
            name="/api/orders/",
            catch_response=True,
        ) as response:
            if response.status_code in (200, 201):
                notes["orders_placed"] += 1
                response.success()
            elif response.status_code == 409:
                # Insufficient stock is a legitimate business answer, not a server failure.
                notes["orders_out_of_stock"] += 1
                _discard(self.skus, sku)
                response.success()
            elif response.status_code == 401:
                self.token = None
                self.client.headers.pop("Authorization", None)
                response.failure("token rejected (401)")
            else:
                response.failure(f"HTTP {response.status_code}: {response.text[:200]}")

    @task(3)
    def list_my_orders(self) -> None:
        if not self.authenticated():
            return
        self.client.get("/api/orders/", name="/api/orders/")


def _json(response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _discard(items: deque, value) -> None:
    with contextlib.suppress(ValueError):
        items.remove(value)
