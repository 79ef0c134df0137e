"""denormalized_fields under load: the three reads of its bench scenario
(shop/bench/scenarios/denormalized_fields.py), in turn, cache_aside held off on the product
list (holds.DENORMALIZED_FIELDS, http_caching and compression off too) so it is built every time:

- the product list, 50 rows with rating and review count;
- a product's reviews, 50 rows with author names: the most reviewed product of the newest 100
  (the bench takes the most reviewed of all);
- a customer's order history, 50 orders with item count and total.

The bench's fourth scenario, the write cost of a new review, is left out: a customer may review
a product once, and each review would stay in the database. The bench measures it, rolled back.
"""

from locust import task

from loadtests.common import TechniqueUser, customer, json_body
from shop.bench import holds


class DenormalizedFieldsUser(TechniqueUser):
    technique = "denormalized_fields"

    def on_start(self) -> None:
        super().on_start()
        self.log_in(customer())
        products = json_body(
            self.client.get("/api/products/?page_size=100", name="learn: /api/products/")
        ).get("results") or [{"id": None}]
        self.reviewed = max(products, key=lambda product: product.get("review_count") or 0)["id"]

    @task
    def product_list(self) -> None:
        self.client.get(
            "/api/products/?page_size=50",
            headers=self.toggles(**holds.DENORMALIZED_FIELDS),
            name="denormalized_fields: /api/products/?page_size=50",
        )

    @task
    def reviews(self) -> None:
        if self.reviewed is not None:
            self.client.get(
                f"/api/products/{self.reviewed}/reviews/?page_size=50",
                headers=self.toggles(),
                name="denormalized_fields: /api/products/[id]/reviews/?page_size=50",
            )

    @task
    def order_history(self) -> None:
        if self.authenticated():
            self.client.get(
                "/api/orders/?page_size=50",
                headers=self.toggles(),
                name="denormalized_fields: /api/orders/?page_size=50",
            )
