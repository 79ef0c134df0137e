"""write_through under load: 9 reads to 1 write over the 10 newest products' pages
(shop/bench/scenarios/write_through.py measures the same mix, one request at a time).

Each user logs in as the seeded staff account. A read GETs one of the pages; a write rewrites
a variant of one of them with the price it already has (PATCH /api/staff/variants/<id>/), so
the whole write path runs and the data is left as seeded. Off, the write deletes the page's
entry and the next read of it rebuilds it; on, the write stores the page rebuilt and the next
read is a hit. Compare the reads' response times (and the writes', which pay for it on), off
and on. Held as in the bench: cache_aside on, stampede_protection off.
"""

import random

from locust import task

from loadtests.common import STAFF, TechniqueUser, json_body
from shop.bench import holds

HOT_PRODUCTS = 10


class WriteThroughUser(TechniqueUser):
    technique = "write_through"

    def on_start(self) -> None:
        super().on_start()
        self.log_in(STAFF)
        listing = json_body(
            self.client.get(
                f"/api/products/?page_size={HOT_PRODUCTS}", name="learn: /api/products/"
            )
        )
        self.variants: dict[int, dict] = {}
        for product in listing.get("results") or []:
            detail = json_body(
                self.client.get(
                    f"/api/products/{product['id']}/", name="learn: /api/products/[id]/"
                )
            )
            if detail.get("variants"):
                self.variants[product["id"]] = detail["variants"][0]

    @task(9)
    def read(self) -> None:
        if self.variants:
            self.client.get(
                f"/api/products/{random.choice(list(self.variants))}/",
                headers=self.toggles(**holds.WRITE_THROUGH),
                name="write_through: /api/products/[id]/",
            )

    @task(1)
    def write(self) -> None:
        if self.variants and self.authenticated():
            variant = self.variants[random.choice(list(self.variants))]
            self.client.patch(
                f"/api/staff/variants/{variant['id']}/",
                json={"price": variant["price"]},
                headers=self.toggles(**holds.WRITE_THROUGH),
                name="write_through: PATCH /api/staff/variants/[id]/",
            )
