"""compression under load: the 50-row product list to a browser's `Accept-Encoding`
(shop/bench/scenarios/compression.py). Off, identity; on, brotli (the server's first choice
among what the client accepts), compressed per response on the web worker's CPU.

Locust reports the decoded size (requests decompresses the body); the bytes on the wire are
the bench's to count. Compare the two sides' throughput and the web workers' CPU (`top`).
http_caching and cache_aside are held off, as in the bench.
"""

from locust import task

from loadtests.common import TechniqueUser
from shop.bench import holds

BROWSER = "gzip, deflate, br, zstd"


class CompressionUser(TechniqueUser):
    technique = "compression"

    @task
    def product_list(self) -> None:
        self.client.get(
            "/api/products/?page_size=50",
            headers={"Accept-Encoding": BROWSER, **self.toggles(**holds.COMPRESSION)},
            name="compression: /api/products/?page_size=50",
        )
