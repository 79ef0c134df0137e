"""select_related under load: the product list's first page of 50, category and brand for
every row (shop/bench/scenarios/select_related.py).

fast_serialization is held off, as in the bench: its values() path would stand in for the lazy
model access that is the naive code here.
"""

from locust import task

from loadtests.common import TechniqueUser
from shop.bench import holds


class SelectRelatedUser(TechniqueUser):
    technique = "select_related"

    @task
    def product_list(self) -> None:
        self.client.get(
            "/api/products/?page_size=50",
            headers=self.toggles(**holds.SELECT_RELATED),
            name="select_related: /api/products/?page_size=50",
        )
