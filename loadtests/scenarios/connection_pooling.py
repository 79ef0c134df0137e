"""connection_pooling under load: a product's page (shop/bench/scenarios/connection_pooling.py).

A pool is the server process's, built when it starts: the server refuses `connection_pooling`
in X-Perf-Toggles. Choose the side when you start the server, and say which with
LOADTEST_TOGGLE:

    PERF_TOGGLES=connection_pooling=off WEB_THREADS=8 make serve   # a connection per request
    PERF_TOGGLES=connection_pooling=on  WEB_THREADS=8 make serve   # the pool (the default)

Each user asks `GET /api/perf/toggles/` at its start what the server runs with, and logs a
warning when that is not LOADTEST_TOGGLE's side. read_replica is held off, as in the bench:
every query on the primary, where the pool (or PgBouncer) connects.
"""

from locust import task

from loadtests.common import TechniqueUser, json_body, logger
from shop.bench import holds


class ConnectionPoolingUser(TechniqueUser):
    technique = "connection_pooling"
    per_request = False

    def on_start(self) -> None:
        super().on_start()
        response = self.client.get("/api/perf/toggles/", name="learn: /api/perf/toggles/")
        try:
            rows = response.json()
        except ValueError:
            rows = []
        state = {row.get("name"): row.get("enabled") for row in rows if isinstance(row, dict)}.get(
            self.technique
        )
        if state is not None and state is not self.enabled:
            logger.warning(
                "LOADTEST_TOGGLE=%s but the server runs with connection_pooling %s: restart it "
                "with PERF_TOGGLES=connection_pooling=%s",
                "on" if self.enabled else "off",
                "on" if state else "off",
                "on" if self.enabled else "off",
            )
        page = json_body(
            self.client.get("/api/products/?page_size=1", name="learn: /api/products/")
        )
        results = page.get("results") if isinstance(page, dict) else None
        self.product_id = results[0]["id"] if results else 1

    @task
    def product_page(self) -> None:
        self.client.get(
            f"/api/products/{self.product_id}/",
            headers=self.toggles(**holds.CONNECTION_POOLING),
            name="connection_pooling: /api/products/<id>/",
        )
