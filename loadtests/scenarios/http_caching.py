"""http_caching under load: clients that keep what they fetched, as a browser does, and
revalidate it (shop/bench/scenarios/http_caching.py): the 50-row product list and a product
page, each sent with `If-None-Match` once the client holds an ETag for it (a product page's
first 200 carries none: the client fetches it twice to learn it).

Off, the server sends no validators, so the client has none to send: a full 200 each time. On,
an unchanged page is a 304 answered before the view runs, from one Redis round trip. Writes
elsewhere (orders taking stock, reviews) move the validators of the pages they change, and the
next revalidation of those is a 200 again. compression, cache_aside and local_cache are held
off, as in the bench.
"""

from locust import task

from loadtests.common import TechniqueUser, json_body
from shop.bench import holds

LIST = "/api/products/?page_size=50"


def remember(etags: dict[str, str], path: str, response) -> None:
    """What a browser keeps after an answer: a 200 is a new copy, with its ETag or, without
    one (Redis down, a change settling, a validator renewed), with none, so the old ETag is
    not sent again; a 304 keeps the copy and its ETag."""
    if response.status_code == 200:
        if "ETag" in response.headers:
            etags[path] = response.headers["ETag"]
        else:
            etags.pop(path, None)


class HttpCachingUser(TechniqueUser):
    technique = "http_caching"

    def on_start(self) -> None:
        super().on_start()
        self.etags: dict[str, str] = {}  # the client's cache: URL -> ETag of the copy it holds
        listing = self._get(LIST, name="learn: /api/products/?page_size=50")
        results = listing.get("results") or [{"id": None}]
        self.product = results[0]["id"]
        if self.product is not None:
            # Twice: a product page's first 200 starts its validator and carries no ETag.
            for _ in range(2):
                self._get(f"/api/products/{self.product}/", name="learn: /api/products/[id]/")

    def _get(self, path: str, *, name: str) -> dict:
        headers = self.toggles(**holds.HTTP_CACHING)
        if path in self.etags:
            headers["If-None-Match"] = self.etags[path]
        response = self.client.get(path, headers=headers, name=name)
        remember(self.etags, path, response)
        return json_body(response)

    @task
    def product_list(self) -> None:
        self._get(LIST, name="http_caching: /api/products/?page_size=50")

    @task
    def product_page(self) -> None:
        if self.product is not None:
            self._get(f"/api/products/{self.product}/", name="http_caching: /api/products/[id]/")
