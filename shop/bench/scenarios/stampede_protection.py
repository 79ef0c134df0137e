"""stampede_protection: 50 clients at once on a category page the moment its entry expires,
off (plain cache-aside: every one that misses rebuilds it) against on (one rebuilds it).

The page is the catalog's most expensive read (catalog/payloads.py `category_page`: the
category tree, the page, its count and three facet aggregates), of the top-level category
with the most products below it. Each run is one expiry, a round:

1. the page is read once, untimed, so it is cached (with the side's toggles);
2. it expires: `hard`, the entry is gone (its TTL ran out, or a price change moved the list
   generation); `soft`, the TTL has run out, which on is an entry past its soft expiry and
   still in Redis (stale-while-revalidate), and off, with no soft expiry, an entry gone;
3. 50 threads, each with its own test client and database connection, wait at a barrier,
   then each GETs the page through the whole request path with X-Perf-Toggles set;
4. the recomputations are counted: calls of `catalog.selectors.category_facets`, which one
   build of the page makes once, wrapped for the round.

A run's `ms` is the round's wall time; the clients' own latencies are its metrics
(`client_p50_ms`, `client_p95_ms`), and so is `recomputations`. Every answer must be the page
as it is built uncached (`cache_aside` off), read once before the rounds: `answers_differing`
counts those that are not.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from time import perf_counter

from django.conf import settings
from django.db import connection
from django.db.models import Count
from django.test import Client

from catalog import selectors
from catalog.models import Category, Product
from shop import cache, toggles
from shop.bench import holds
from shop.bench.samples import Sample, percentile
from shop.bench.scenario import Scenario
from shop.bench.targets import Target
from shop.perf_headers import TOGGLE_HEADER
from shop.techniques import cache_aside, stampede_protection

CLIENTS = 50
ROUNDS = 8  # a side: each round is 50 requests
RECOMPUTATIONS = "recomputations"
CLIENT_P50_MS = "client_p50_ms"
CLIENT_P95_MS = "client_p95_ms"
ERRORS = "errors"
ANSWERS_DIFFERING = "answers_differing"

_state: dict = {}


def _prepare() -> None:
    """The top-level category with the most active products below it, and its page as it is
    built uncached."""
    rows = selectors.category_rows()
    counts = dict(
        Product.objects.filter(is_active=True)
        .values_list("category_id")
        .annotate(n=Count("id"))
        .values_list("category_id", "n")
    )
    roots = [row["id"] for row in rows if row["parent_id"] is None]

    def below(category_id: int) -> int:
        ids = selectors.subtree_ids(rows=rows, category_id=category_id)
        return sum(counts.get(i, 0) for i in ids)

    category_id = max(roots, key=below) if roots else Category.objects.order_by("id").first().pk
    _state["path"] = f"/api/categories/{category_id}/products/"
    _state["category_id"] = category_id
    response = Client().get(_state["path"], headers={TOGGLE_HEADER: "cache_aside=off"})
    if response.status_code != 200:
        raise RuntimeError(f"{_state['path']} answered {response.status_code} uncached")
    _state["uncached"] = response.content


def _round(enabled: bool, *, expiry: str) -> Sample:
    flags = SCENARIO.flags(enabled)
    headers = {TOGGLE_HEADER: toggles.format_flags(flags)}
    _warm(headers)
    cache.delete(_page_key())  # as the other side's round left it
    _warm(headers)  # stored by this side's path: an Entry on, a plain payload off
    _expire(enabled, expiry=expiry)
    with _counting(selectors, "category_facets") as recomputations:
        statuses, bodies, latencies, wall_s = _clients(headers)
    differing = sum(body != _state["uncached"] for body in bodies)
    return Sample(
        ms=wall_s * 1000,
        queries={},  # on the clients' connections, not counted here
        bytes=len(bodies[0]),
        status=max(statuses),
        answer={"answers identical to the uncached page": differing == 0},
        metrics={
            RECOMPUTATIONS: recomputations[0],
            CLIENT_P50_MS: round(statistics.median(latencies), 2),
            CLIENT_P95_MS: round(percentile(latencies, 0.95), 2),
            ERRORS: sum(status != 200 for status in statuses),
            ANSWERS_DIFFERING: differing,
        },
    )


def _warm(headers: dict[str, str]) -> None:
    response = Client().get(_state["path"], headers=headers)
    assert response.status_code == 200, response.status_code


def _expire(enabled: bool, *, expiry: str) -> None:
    """Make the page's entry what it is at its expiry: gone, or (on, soft) stale."""
    key = _page_key()
    if expiry == "soft" and enabled:
        entry = cache.get(key)
        assert isinstance(entry, stampede_protection.Entry), type(entry)
        stale = replace(entry, fresh_until=time.time() - 1)
        cache.set(key, stale, timeout=settings.STAMPEDE_STALE_S)
    else:
        cache.delete(key)


def _page_key() -> str:
    """The page's key in the current list generation, found in Redis (the one URL the
    rounds read), without the backend's prefix and version."""
    backend = cache.backend()
    generation = cache_aside.list_generation()
    pattern = backend.make_key(f"*:category-page:*:g{generation}:{_state['category_id']}:*")
    client = backend._cache.get_client(write=False)
    found = [key.decode() for key in client.scan_iter(match=pattern, count=1000)]
    assert len(found) == 1, found
    return found[0].split(":", 2)[2]  # KEY_PREFIX:version:key


def _clients(headers: dict[str, str]) -> tuple[list[int], list[bytes], list[float], float]:
    barrier = threading.Barrier(CLIENTS + 1, timeout=60)  # the clients and the timekeeper

    def client(_: int) -> tuple[int, bytes, float]:
        browser = Client()
        try:
            barrier.wait()
            started = perf_counter()
            response = browser.get(_state["path"], headers=headers)
            return response.status_code, response.content, (perf_counter() - started) * 1000
        finally:
            connection.close()  # this thread's own

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        futures = [pool.submit(client, i) for i in range(CLIENTS)]
        barrier.wait()
        started = perf_counter()
        answers = [future.result() for future in futures]
        wall_s = perf_counter() - started
    statuses, bodies, latencies = (list(column) for column in zip(*answers, strict=True))
    return statuses, bodies, latencies, wall_s


class _counting:
    """`with _counting(module, "name") as calls:` counts the calls of module.name, from any
    thread, while the block runs (calls[0])."""

    def __init__(self, module, name: str) -> None:
        self.module, self.name = module, name
        self.calls = [0]
        self._lock = threading.Lock()

    def __enter__(self) -> list[int]:
        self.original: Callable = getattr(self.module, self.name)

        def counted(*args, **kwargs):
            with self._lock:
                self.calls[0] += 1
            return self.original(*args, **kwargs)

        setattr(self.module, self.name, counted)
        return self.calls

    def __exit__(self, *exc_info: object) -> None:
        setattr(self.module, self.name, self.original)


_TARGETS = (
    Target(f"on.metrics.{RECOMPUTATIONS}.max", at_most=1, label="recomputations per expiry, on"),
    Target(f"off.metrics.{RECOMPUTATIONS}.p50", at_least=2, label="recomputations, off"),
    Target(f"on.metrics.{ANSWERS_DIFFERING}.total", at_most=0, label="answers not the page"),
    Target(f"off.metrics.{ANSWERS_DIFFERING}.total", at_most=0, label="answers not the page, off"),
)

SCENARIO = Scenario(
    name="stampede_protection",
    title="50 clients at once on a category page whose entry has just expired",
    prepare=_prepare,
    run=lambda enabled: _round(enabled, expiry="hard"),
    path="GET /api/categories/<id>/products/ x50, entry gone",
    repeat=ROUNDS,
    hold=holds.STAMPEDE_PROTECTION,
    targets=_TARGETS,
    notes=(
        "A run is a round of 50 concurrent requests right after the entry expired: its time "
        "is the round's; the clients' p50/p95 and the recomputations are its metrics. On, one "
        "request rebuilds the page and the others wait for it (polling Redis)."
    ),
)

EXTRA_SCENARIOS = [
    Scenario(
        name="stampede_protection",
        title="the same at the TTL, where on serves the stale page while one request refreshes",
        prepare=_prepare,
        run=lambda enabled: _round(enabled, expiry="soft"),
        path="GET /api/categories/<id>/products/ x50, TTL reached",
        repeat=ROUNDS,
        hold=holds.STAMPEDE_PROTECTION,
        targets=_TARGETS,
        notes=(
            "Off the entry is gone at its TTL; on it is past its soft expiry and still in Redis "
            "(STAMPEDE_STALE_S): one request refreshes it, 49 get the stale page at once."
        ),
    ),
]
