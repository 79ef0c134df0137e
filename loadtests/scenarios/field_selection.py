"""field_selection under load: the product list's largest page, 100 rows, without (on) or with
(off) each product's 2-4 kB description (shop/bench/scenarios/field_selection.py).

fast_serialization is held off, as in the bench: its values() rows read only the shown columns,
field_selection or not.
"""

from locust import task

from loadtests.common import TechniqueUser
from shop.bench import holds


class FieldSelectionUser(TechniqueUser):
    technique = "field_selection"

    @task
    def product_list(self) -> None:
        self.client.get(
            "/api/products/?page_size=100",
            headers=self.toggles(**holds.FIELD_SELECTION),
            name="field_selection: /api/products/?page_size=100",
        )
