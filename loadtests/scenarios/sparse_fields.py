"""sparse_fields under load: the product list's largest page with three of its fields, the
columns trimmed in SQL (on) or the JSON alone (off) (shop/bench/scenarios/sparse_fields.py).

cache_aside, http_caching and compression are held off, as in the bench: a cached page would
answer both sides, and the bytes are the JSON's.
"""

from locust import task

from loadtests.common import TechniqueUser
from shop.bench import holds

PATH = "/api/products/?page_size=100&fields=id,name,slug"


class SparseFieldsUser(TechniqueUser):
    technique = "sparse_fields"

    @task
    def product_list(self) -> None:
        self.client.get(
            PATH, headers=self.toggles(**holds.SPARSE_FIELDS), name=f"sparse_fields: {PATH}"
        )
