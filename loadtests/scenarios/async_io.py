"""async_io under load: shipping estimates, each asking the three carriers one after another
(off) or all at once (on) (shop/bench/scenarios/async_io.py). Start the carriers with their
100/200/300 ms (the local stack does) and point Locust at the ASGI server (the `asgi` process,
port 8001) to see what the async view does there; at gunicorn (8000) each estimate holds a
worker for its whole wait either way.
"""

from locust import task

from loadtests.common import TechniqueUser


class AsyncIoUser(TechniqueUser):
    technique = "async_io"

    @task
    def shipping_quotes(self) -> None:
        self.client.get(
            "/api/shipping/quotes/?country=de&postcode=10115&weight_grams=1200",
            headers=self.toggles(),
            name="async_io: /api/shipping/quotes/",
        )
