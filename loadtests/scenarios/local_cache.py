"""local_cache under load: the authenticated ping, every request's token lookup from Redis
(off) or from the server process's own L1 (on); see shop/bench/scenarios/local_cache.py.

Each user logs in as a random seeded customer, so the server's L1 holds as many tokens as there
are customers in the pool (LOCUST_USER_POOL), far under its 10 000 entries. cache_aside is
held on, as in the bench: behind L1 is Redis, and off asks Redis on every request.
"""

from locust import task

from loadtests.common import TechniqueUser, customer
from shop.bench import holds


class LocalCacheUser(TechniqueUser):
    technique = "local_cache"

    def on_start(self) -> None:
        super().on_start()
        self.log_in(customer())

    @task
    def authenticated_ping(self) -> None:
        if self.authenticated():
            self.client.get(
                "/api/perf/ping/",
                headers=self.toggles(**holds.LOCAL_CACHE),
                name="local_cache: /api/perf/ping/ (with a token)",
            )
