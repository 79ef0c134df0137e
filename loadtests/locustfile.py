"""PerfShop load test: a shopper who browses a lot, looks at products and reviews, and sometimes
orders.

    locust -f loadtests/locustfile.py --headless --host http://127.0.0.1:8000 \\
        --users 20 --spawn-rate 5 --run-time 60s

(`make loadtest`, or loadtests/run.sh, runs exactly that with CSV output.) Each simulated user
logs in once as one of the seeded users `user1`..`userN` (N = LOCUST_USER_POOL, default 1000,
password "password") and learns product ids and SKUs from the API itself.

Safety rails (loadtests/common.py, shared with the technique scenarios in scenarios/): only
loopback hosts are accepted unless LOADTEST_ALLOW_REMOTE=1, and a headless run without
--run-time is capped at LOADTEST_MAX_RUN_TIME seconds (default 300).

Environment: LOCUST_USER_POOL, LOCUST_PASSWORD, LOCUST_WAIT_MIN / LOCUST_WAIT_MAX (seconds
between tasks, default 0.5 / 2.0), LOADTEST_ALLOW_REMOTE, LOADTEST_MAX_RUN_TIME.
"""

from __future__ import annotations

import math
import random
import re
from collections import deque

from locust import task

from loadtests.common import PerfShopUser, customer, discard, json_body

DEFAULT_PAGE_SIZE = 20
MAX_CACHED_PRODUCTS = 50
MAX_CACHED_SKUS = 20
MAX_CACHED_WORDS = 50
_WORD = re.compile(r"[A-Za-z]{3,}")


class Shopper(PerfShopUser):
    def on_start(self) -> None:
        super().on_start()
        self.product_ids: deque[int] = deque(maxlen=MAX_CACHED_PRODUCTS)
        self.category_ids: set[int] = set()
        self.words: deque[str] = deque(maxlen=MAX_CACHED_WORDS)
        self.skus: deque[str] = deque(maxlen=MAX_CACHED_SKUS)
        self.page_count = 1
        self.log_in(customer())
        self.browse_page(1)

    # --- helpers ------------------------------------------------------------------------------

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
                self.learn_from_page(json_body(response))
            elif response.status_code == 404 and page > 1:
                # The catalogue shrank under us: start over from the first page.
                self.page_count = 1
                response.success()

    def fetch_product(self, product_id: int) -> None:
        with self.client.get(
            f"/api/products/{product_id}/", name="/api/products/[id]/", catch_response=True
        ) as response:
            if response.status_code == 200:
                self.learn_from_product(json_body(response))
            elif response.status_code == 404:
                discard(self.product_ids, product_id)
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
        if self.post_order([{"sku": sku, "quantity": 1}]) is None:
            discard(self.skus, sku)  # out of stock (409), or an error already reported

    @task(3)
    def list_my_orders(self) -> None:
        if not self.authenticated():
            return
        self.client.get("/api/orders/", name="/api/orders/")
