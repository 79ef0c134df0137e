"""prefetch_related under load: a customer's order history, first page of 50 orders with their
items (shop/bench/scenarios/prefetch_related.py). Each user logs in as a random seeded
customer; the bench takes the busiest one.

fast_serialization is held off, as in the bench: its values() path would replace the lazy
`order.items.all()` that is the naive code here.
"""

from locust import task

from loadtests.common import TechniqueUser, customer
from shop.bench import holds


class PrefetchRelatedUser(TechniqueUser):
    technique = "prefetch_related"

    def on_start(self) -> None:
        super().on_start()
        self.log_in(customer())

    @task
    def order_history(self) -> None:
        if self.authenticated():
            self.client.get(
                "/api/orders/?page_size=50",
                headers=self.toggles(**holds.PREFETCH_RELATED),
                name="prefetch_related: /api/orders/?page_size=50",
            )
