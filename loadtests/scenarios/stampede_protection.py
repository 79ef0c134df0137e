"""stampede_protection under load: many users reading the same category page (the first
top-level category of the tree), while a price change every so often expires it
(shop/bench/scenarios/stampede_protection.py measures one expiry at a time, with 50 clients).

Each user logs in as the seeded staff account and mostly reads the page; about one task in
twenty rewrites a variant's price with the price it already has (PATCH
/api/staff/variants/<id>/). That is a real write: it moves the list generation, so every
category page is a miss from then on, as at the end of its TTL. Off, every request that
arrives while the page is being rebuilt rebuilds it too; on, one does and the others wait for
it. Compare the page's response times around the writes, off and on; the data is left as
seeded. Held as in the bench: cache_aside on, write_through off.
"""

from locust import task

from loadtests.common import STAFF, TechniqueUser, json_body
from shop.bench import holds


class StampedeProtectionUser(TechniqueUser):
    technique = "stampede_protection"

    def on_start(self) -> None:
        super().on_start()
        self.log_in(STAFF)
        tree = json_body(self.client.get("/api/categories/", name="learn: /api/categories/"))
        roots = tree.get("categories") or [{"id": 1}]
        self.page = f"/api/categories/{roots[0]['id']}/products/"
        first = (
            json_body(self.client.get(self.page, name="learn: category page")).get("results")
            or [{}]
        )[0]
        detail = json_body(
            self.client.get(f"/api/products/{first.get('id')}/", name="learn: /api/products/[id]/")
        )
        self.variant = (detail.get("variants") or [None])[0]

    @task(20)
    def category_page(self) -> None:
        self.client.get(
            self.page,
            headers=self.toggles(**holds.STAMPEDE_PROTECTION),
            name="stampede_protection: /api/categories/[id]/products/",
        )

    @task(1)
    def price_change(self) -> None:
        if self.variant and self.authenticated():
            self.client.patch(
                f"/api/staff/variants/{self.variant['id']}/",
                json={"price": self.variant["price"]},
                headers=self.toggles(**holds.STAMPEDE_PROTECTION),
                name="stampede_protection: PATCH /api/staff/variants/[id]/ (expires the pages)",
            )
