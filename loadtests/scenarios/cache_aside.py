"""cache_aside under load: category pages with facet counts and product pages
(shop/bench/scenarios/cache_aside.py), the data-access techniques held on (holds.CACHE_ASIDE).

Each user walks the category tree and opens category pages (the first two pages of each) and
the product pages they list, as a browsing visitor does. Off, every request runs its queries;
on, the first visitor of each page builds it and the rest read it from Redis: watch the
`X-Cache-Ops` header of any response, PostgreSQL's load (`pg_stat_database`, `top`), and the
latency of the category pages, the heaviest reads of the catalog.

Read-only, so a run leaves nothing behind.
"""

import random

from locust import task

from loadtests.common import TechniqueUser, json_body
from shop.bench import holds


class CacheAsideUser(TechniqueUser):
    technique = "cache_aside"

    def on_start(self) -> None:
        super().on_start()
        tree = (
            json_body(
                self.client.get(
                    "/api/categories/",
                    headers=self.toggles(**holds.CACHE_ASIDE),
                    name="cache_aside: /api/categories/",
                )
            ).get("categories")
            or []
        )
        self.category_ids = [node["id"] for node in _walk(tree)]
        self.product_ids: list[int] = []

    @task(3)
    def category_page(self) -> None:
        if not self.category_ids:
            return
        category_id = random.choice(self.category_ids)
        page = random.choice((1, 2))
        with self.client.get(
            f"/api/categories/{category_id}/products/?page={page}",
            headers=self.toggles(**holds.CACHE_ASIDE),
            name="cache_aside: /api/categories/[id]/products/?page=[1-2]",
            catch_response=True,
        ) as response:
            if response.status_code == 404:  # a small category has no page 2
                response.success()
                return
            results = json_body(response).get("results") or []
        self.product_ids = [product["id"] for product in results] or self.product_ids

    @task(2)
    def product_page(self) -> None:
        if self.product_ids:
            self.client.get(
                f"/api/products/{random.choice(self.product_ids)}/",
                headers=self.toggles(**holds.CACHE_ASIDE),
                name="cache_aside: /api/products/[id]/",
            )


def _walk(nodes: list[dict]):
    for node in nodes:
        yield node
        yield from _walk(node.get("children") or [])
