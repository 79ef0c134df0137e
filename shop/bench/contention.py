"""Many buyers at once for a few units: a round of concurrent orders, timed and counted.

A scenario's pair times one request at a time, rolled back; a race needs the opposite: real
transactions on separate connections, committed, at the same instant. One round here:

1. a variant of its own (a product with the prefix `PREFIX`) gets `stock` units, committed;
2. `buyers` threads, each with its own test client and so its own database connection, wait at
   a barrier, then each POSTs one order of one unit through the whole request path (URL
   routing, middleware, token authentication, the order service), with `X-Perf-Toggles` set;
3. the round's time is the wall time from the barrier to the last answer; each buyer's own
   latency is kept too, for its p50 and p95;
4. it counts what was sold against what there was, then deletes the orders, the variant and
   the product (and the token it made), so the data is as it was.

`arm()` wraps a round as a scenario's extra arm (shop/bench/scenario.py: `ExtraArm`), so the
bench alternates the rounds with the pair and reports them in its JSON and its reports:
`arms.<label>.side.metrics.units_oversold`, `buyers_per_s`, `buyer_p95_ms`, ... A round's
`ms` is the whole round's, for the report's p50/p95 of rounds.
"""

from __future__ import annotations

import logging
import statistics
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from time import perf_counter
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.test import Client
from django.test.utils import override_settings
from django.utils import timezone
from rest_framework.authtoken.models import Token

from catalog.models import Brand, Category, Product, Variant
from orders.models import Order
from shop import toggles
from shop.bench import metrics, placed_orders
from shop.bench.samples import Sample, percentile
from shop.bench.scenario import ExtraArm
from shop.perf_headers import TOGGLE_HEADER
from shop.techniques import inventory_locking, read_replica

BUYERS = 50
STOCK = 10
PREFIX = "bench-contention-"  # the seed's slugs and SKUs never start with it

# The round's own counts, reported next to the common ones (shop/bench/metrics.py).
ORDERS_PLACED = "orders_placed"
CONFLICTS = "conflicts_409"
ERRORS = "errors"  # any answer but 201 and 409: must stay 0
BUYERS_PER_S = "buyers_per_s"  # answers per second of the round: the throughput
BUYER_P50_MS = "buyer_p50_ms"
BUYER_P95_MS = "buyer_p95_ms"
RETRIES = "retries"  # attempts started over (optimistic, serializable)


def arm(
    label: str,
    title: str,
    *,
    flags: Mapping[str, bool],
    settings: Mapping[str, Any],
    username: str,
    buyers: int = BUYERS,
    stock: int = STOCK,
) -> ExtraArm:
    """An extra arm whose every run is one round, with `flags` sent as X-Perf-Toggles and
    `settings` overridden (process-wide, so every buyer's thread sees them)."""

    def run() -> Sample:
        with override_settings(**settings):
            return run_round(flags=flags, username=username, buyers=buyers, stock=stock)

    return ExtraArm(
        label=label,
        title=title,
        run=run,
        compare=False,  # a round answers with counts, not a body like on's
        source=f"{buyers} buyers, {stock} units, {toggles.format_flags(dict(flags))}, "
        + ", ".join(f"{name}={value}" for name, value in settings.items()),
    )


def run_round(*, flags: Mapping[str, bool], username: str, buyers: int, stock: int) -> Sample:
    variant = _variant_create(stock)
    token, created = _token(username)
    headers = {"Authorization": f"Token {token.key}", TOGGLE_HEADER: toggles.format_flags(flags)}
    body = {"items": [{"sku": variant.sku, "quantity": 1}]}
    retries_before = _retries()
    try:
        # Django logs every 4xx as a warning: 40 of them a round would bury the bench's output.
        with _quiet("django.request"):
            statuses, latencies, wall_s = _race(headers, body, buyers)
        sold = Order.objects.filter(items__variant=variant).count()
    finally:
        cleanup(variant_ids=[variant.pk])
        # The round's orders are gone: so is the read-your-writes pin they left on the buyer.
        read_replica.forget_writes(token.user_id)
        if created:
            token.delete()
    counts = Counter(statuses)
    errors = buyers - counts[201] - counts[409]
    return Sample(
        ms=wall_s * 1000,
        queries={},  # on the buyers' connections, not counted here
        bytes=0,
        status=201 if counts[201] else 409,
        metrics={
            metrics.UNITS_OVERSOLD: max(0, sold - stock),
            ORDERS_PLACED: counts[201],
            CONFLICTS: counts[409],
            ERRORS: errors,
            BUYERS_PER_S: round(buyers / wall_s, 1),
            BUYER_P50_MS: round(statistics.median(latencies), 2),
            BUYER_P95_MS: round(percentile(latencies, 0.95), 2),
            RETRIES: _retries() - retries_before,
        },
    )


def _race(headers: dict[str, str], body: dict, buyers: int) -> tuple[list[int], list[float], float]:
    barrier = threading.Barrier(buyers + 1, timeout=60)  # the buyers and the timekeeper

    def buyer(_: int) -> tuple[int, float]:
        client = Client()  # not raising: a 500 is counted as an error, not a crash
        try:
            barrier.wait()
            started = perf_counter()
            response = client.post(
                "/api/orders/", body, content_type="application/json", headers=headers
            )
            return response.status_code, (perf_counter() - started) * 1000
        finally:
            connection.close()  # this thread's own

    with ThreadPoolExecutor(max_workers=buyers) as pool:
        futures = [pool.submit(buyer, i) for i in range(buyers)]
        barrier.wait()
        started = perf_counter()
        answers = [future.result() for future in futures]
        wall_s = perf_counter() - started
    return [status for status, _ in answers], [ms for _, ms in answers], wall_s


@contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _variant_create(stock: int) -> Variant:
    """A product and variant of the round's own: committed, so every buyer sees them."""
    stamp = f"{PREFIX}{timezone.now():%H%M%S%f}"
    product = Product.objects.create(
        name="Contended product",
        slug=stamp,
        description="The last units, wanted by everyone at once.",
        category=Category.objects.order_by("id").first(),
        brand=Brand.objects.order_by("id").first(),
        created_at=timezone.now(),
    )
    return Variant.objects.create(
        product=product, sku=stamp.upper(), name="Only size", price=Decimal("9.99"), stock=stock
    )


def _token(username: str) -> tuple[Token, bool]:
    user = get_user_model().objects.get(username=username)
    return Token.objects.get_or_create(user=user)


def cleanup(variant_ids: list[int] | None = None) -> list[str]:
    """Delete the rounds' orders, variants and products: these variants, or every one a
    round made (after an interrupted run). Returns what it deleted, for the bench to print."""
    variants = Variant.objects.filter(product__slug__startswith=PREFIX)
    if variant_ids is not None:
        variants = variants.filter(pk__in=variant_ids)
    variant_ids = list(variants.values_list("pk", flat=True))
    if not variant_ids:
        return []
    orders = Order.objects.filter(items__variant_id__in=variant_ids)
    with transaction.atomic():
        deleted = placed_orders.delete(orders)
        Product.objects.filter(variants__pk__in=variant_ids).delete()
    return [f"{len(variant_ids)} contended variants and their {deleted} orders"]


def _retries() -> int:
    return inventory_locking.retries()
