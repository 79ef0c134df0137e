"""The catalog's most expensive read, a category page with facet counts, and its cheapest, a
product page: built from PostgreSQL on every request (off) against read from Redis (on).

The on side's warm runs are hits (the warm-up filled the entry, and nothing writes during the
bench); its cold runs follow a reset that empties the project's cache and closes the database
connections (`shop/bench/cold.py`), so each is a miss that builds the page and stores it: what
the first visitor after an invalidation pays. The cold off side is the same request without
the cache, on a new connection too.

`redis_get_ms` is the cache read itself: a GET of the page's payload, timed alone after each on
run (outside the request's time), deserialization included; the median of GETS of them.
"""

from __future__ import annotations

import statistics
from time import perf_counter

from django.db.models import Count
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.request import Request

from catalog import payloads, selectors
from catalog.apis import CategoryProductsApi
from catalog.models import Product
from shop import cache, toggles
from shop.bench import holds
from shop.bench.measure import BenchError
from shop.bench.scenario import Call, Scenario
from shop.bench.targets import Target
from shop.perf_headers import TOGGLE_HEADER

TECHNIQUE = "cache_aside"
PAGE_SIZE = 24
# GETs timed after each run, their median kept: one GET alone on a busy machine measures the
# scheduler (the process is often switched out when it wakes Redis up) more than Redis.
GETS = 5
_ids: dict[str, int] = {}
_probe: dict[str, dict] = {}  # the category page's payload, whose GET is timed
_GET_PROBE = cache.key("bench-get-probe", version=1)


def _largest_root() -> int:
    """The top category with the most active products below it: the heaviest category page."""
    rows = selectors.category_rows()
    per_category = dict(
        Product.objects.filter(is_active=True)
        .values("category_id")
        .annotate(n=Count("id"))
        .values_list("category_id", "n")
    )
    roots = [row["id"] for row in rows if row["parent_id"] is None]
    if not roots or not per_category:
        raise BenchError("cache_aside needs categories and products: seed the database first")

    def below(root: int) -> int:
        return sum(
            per_category.get(i, 0) for i in selectors.subtree_ids(rows=rows, category_id=root)
        )

    return max(roots, key=below)


def _category_prepare() -> None:
    _ids["category"] = _largest_root()
    # The payload whose GET is timed: this page's, stored under a key of the bench's own.
    request = Request(RequestFactory().get(_category_path()))
    with toggles.override(cache_aside=False):
        _probe["payload"] = payloads.category_page(
            request=request, view=CategoryProductsApi(), category_id=_ids["category"]
        )


def _category_path() -> str:
    return f"/api/categories/{_ids['category']}/products/?page_size={PAGE_SIZE}"


def _product_prepare() -> None:
    product = Product.objects.filter(is_active=True).order_by("id").values("id").first()
    if product is None:
        raise BenchError("cache_aside needs products: seed the database first")
    _ids["product"] = product["id"]


def _redis_get(response: HttpResponse) -> dict[str, float]:
    """On runs only: one GET of a category page's payload, in milliseconds."""
    echoed = toggles.parse(response.get(TOGGLE_HEADER, ""))
    if not echoed.get(TECHNIQUE, toggles.is_enabled(TECHNIQUE)):
        return {}
    # Stored again each time, untimed: a cold run's reset has emptied the cache.
    cache.set(_GET_PROBE, _probe["payload"], timeout=60)
    timings = []
    for _ in range(GETS):
        started = perf_counter()
        found = cache.get(_GET_PROBE)
        timings.append((perf_counter() - started) * 1000)
        if found != _probe["payload"]:
            raise BenchError("the GET probe did not read back the payload it stored")
    return {"redis_get_ms": round(statistics.median(timings), 3)}


def after() -> None:
    cache.delete(_GET_PROBE)


NOTES = (
    "Warm on runs are hits: 0 queries, 2 cache reads (the list generation, then the page). "
    "Cold runs start with an empty cache and a new database connection: on is then a miss "
    "that builds the page and stores it. redis_get_ms is a GET of the page's payload, timed "
    "alone (the median of 5 after each run)."
)

SCENARIO = Scenario(
    name=TECHNIQUE,
    title=f"category page with facet counts, {PAGE_SIZE} products, the largest top category",
    prepare=_category_prepare,
    call=lambda: Call("GET", _category_path()),
    cold=True,
    metrics=_redis_get,
    hold=holds.CACHE_ASIDE,
    targets=(
        Target("on.queries", at_most=0, label="a hit, queries"),
        Target("speedup_p50", at_least=10, label="a hit against no cache, p50"),
        Target("on.metrics.redis_get_ms.p50", at_most=1, label="the Redis GET itself, ms"),
    ),
    notes=NOTES,
)

EXTRA_SCENARIOS = [
    Scenario(
        name=TECHNIQUE,
        title="product page with its variants (a cheap page)",
        prepare=_product_prepare,
        call=lambda: Call("GET", f"/api/products/{_ids['product']}/"),
        cold=True,
        hold=holds.CACHE_ASIDE,
        targets=(Target("on.queries", at_most=0, label="a hit, queries"),),
        notes="Two queries off; a hit saves them, but not the request's fixed cost: the "
        "baseline column is that cost, and the ceiling it puts on any speedup of this page.",
    ),
]
