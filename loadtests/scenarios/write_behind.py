"""write_behind under load: anonymous shoppers viewing product pages, each view counted by one
UPDATE committed on the primary (off) or one HINCRBY in Redis (on), flushed to PostgreSQL by
beat (shop/bench/scenarios/write_behind.py; cache_aside held on and http_caching off,
as in the bench).

Watch the primary while it runs: off, its commits per second (`pg_stat_database.xact_commit`)
and WAL follow the page views; on, they stay flat between flushes. Run `make serve` (beat and
the `default` worker flush every WRITE_BEHIND_FLUSH_EVERY_S), or `manage.py write_behind_flush`
after the run. The views are real: they stay counted.
"""

import random

from locust import task

from loadtests.common import TechniqueUser, json_body
from shop.bench import holds

HOT = 50  # the newest products: a shop's views are skewed towards a few pages


class WriteBehindUser(TechniqueUser):
    technique = "write_behind"
    _product_ids: list[int] = []

    def on_start(self) -> None:
        super().on_start()
        if not type(self)._product_ids:
            listing = json_body(
                self.client.get(f"/api/products/?page_size={HOT}", name="learn: /api/products/")
            )
            type(self)._product_ids = [row["id"] for row in listing.get("results") or []]

    @task
    def product_page(self) -> None:
        if not self._product_ids:
            return
        self.client.get(
            f"/api/products/{random.choice(self._product_ids)}/",
            headers=self.toggles(**holds.WRITE_BEHIND),
            name="write_behind: /api/products/[id]/",
        )
