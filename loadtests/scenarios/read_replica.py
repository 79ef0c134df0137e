"""read_replica under load: the read-only endpoints a shop serves most, the product list, a
product page, a search and a customer's order history (shop/bench/scenarios/read_replica.py).
Off, all their queries run on the primary; on, on the replica: compare the two servers' load
(`pg_stat_database`, `top`) while it runs, and the `X-DB-Queries` header of any response.

The catalog reads hold cache_aside off (holds.READ_REPLICA): a cache hit would run no query
on either server; and http_caching and compression, as every catalog pair does. Read-only, so
a run leaves nothing behind; the bench measures read-your-writes, with a replica held 2 s
behind.
"""

from locust import task

from loadtests.common import TechniqueUser, customer, json_body
from shop.bench import holds

PAGE = 20


class ReadReplicaUser(TechniqueUser):
    technique = "read_replica"

    def on_start(self) -> None:
        super().on_start()
        # The bench's read-back pair's hold, rate_limiting off, on the login too: every user
        # logs in from 127.0.0.1, which the login limit per IP would refuse after its burst.
        self.log_in(customer(), headers=self.toggles(**holds.READ_REPLICA_READ_BACK))
        self.product_id = None

    @task
    def product_list(self) -> None:
        listing = json_body(
            self.client.get(
                f"/api/products/?page_size={PAGE}",
                headers=self.toggles(**holds.READ_REPLICA),
                name=f"read_replica: /api/products/?page_size={PAGE}",
            )
        )
        results = listing.get("results") or []
        if results:
            self.product_id = results[0]["id"]

    @task
    def product_page(self) -> None:
        if self.product_id is None:
            self.product_list()
        if self.product_id is not None:
            self.client.get(
                f"/api/products/{self.product_id}/",
                headers=self.toggles(**holds.READ_REPLICA),
                name="read_replica: /api/products/[id]/",
            )

    @task
    def search(self) -> None:
        self.client.get(
            f"/api/products/?search=pro&page_size={PAGE}",
            headers=self.toggles(**holds.READ_REPLICA),
            name=f"read_replica: /api/products/?search=pro&page_size={PAGE}",
        )

    @task
    def order_history(self) -> None:
        if self.authenticated():
            self.client.get(
                f"/api/orders/?page_size={PAGE}",
                headers=self.toggles(),
                name=f"read_replica: /api/orders/?page_size={PAGE}",
            )
