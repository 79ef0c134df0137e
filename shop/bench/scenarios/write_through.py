"""write_through: what a price change costs the reads after it, and the write itself, with
the write deleting the product page's entry (off: cache-aside's invalidation) or storing the
page rebuilt from the committed rows (on).

Three scenarios, each run committed for real (an entry is deleted or stored only once the
write commits, so a rolled-back write would measure nothing). Each write sets the variant's
price to the price it already has: the write path runs whole (the UPDATE, the invalidation
or the read-back and the store, the list generation's bump), and the data is left as seeded
even if the bench is killed.

1. **Read after a write** (the pair): a staff PATCH of a variant's price, untimed, then the
   product's page, timed. Off the read misses and rebuilds the page; on it is a hit.
2. **The write**: the PATCH, timed, its product's page cached before it. On pays the
   rebuild (a drop, then a GET and a compare-and-set around it); off pays a drop.
3. **A mix of 9 reads to 1 write** over the 10 newest products, warmed first: 100 requests a
   run in a fixed random order. The run's `ms` is the 100 requests'; its metrics are the
   reads' miss rate (`read_miss_rate_pct`) and the reads' and writes' own p50 and p95.
"""

from __future__ import annotations

import random
import statistics
from decimal import Decimal
from time import perf_counter

from catalog.models import Variant
from shop.bench import holds
from shop.bench.measure import Prepared, Requester, send
from shop.bench.metrics import CACHE_MISSES
from shop.bench.samples import Sample, percentile
from shop.bench.scenario import Call, Scenario
from shop.bench.targets import Target

STAFF = "staff"  # the seeded staff account
HOT_PRODUCTS = 10
MIX_REQUESTS = 100  # a run of the mix: 10 writes, 90 reads
MIX_SEED = 11
READ_MISS_RATE_PCT = "read_miss_rate_pct"
READ_P50_MS, READ_P95_MS = "read_p50_ms", "read_p95_ms"
WRITE_P50_MS, WRITE_P95_MS = "write_p50_ms", "write_p95_ms"

_state: dict = {}


def _prepare() -> None:
    """The newest active products with a variant, each with its first variant's id and price."""
    if "requester" in _state:
        return
    variants = (
        Variant.objects.filter(product__is_active=True)
        .order_by("-product__created_at", "-product_id", "id")
        .values_list("product_id", "id", "price")
    )
    hot: dict[int, tuple[int, Decimal]] = {}
    for product_id, variant_id, price in variants[: HOT_PRODUCTS * 10]:
        hot.setdefault(product_id, (variant_id, price))
        if len(hot) == HOT_PRODUCTS:
            break
    requester = Requester()
    _state.update(requester=requester, hot=hot)
    _state["reads"] = {
        product_id: Prepared.of(Call("GET", f"/api/products/{product_id}/"), requester)
        for product_id in hot
    }
    _state["writes"] = {
        product_id: Prepared.of(
            Call(
                "PATCH",
                f"/api/staff/variants/{variant_id}/",
                data={"price": str(price)},
                user=STAFF,
            ),
            requester,
        )
        for product_id, (variant_id, price) in hot.items()
    }


def after() -> list[str]:
    requester = _state.pop("requester", None)
    if requester is not None:
        requester.close()
    _state.clear()
    return []


def _first() -> int:
    return next(iter(_state["hot"]))


def _send(prepared: Prepared, enabled: bool) -> Sample:
    return send(_state["requester"], prepared, flags=SCENARIO.flags(enabled))


def _read_after_write(enabled: bool) -> Sample:
    product_id = _first()
    _send(_state["reads"][product_id], enabled)  # cached, as a page that is read is
    wrote = _send(_state["writes"][product_id], enabled)
    assert wrote.status == 200, wrote.status
    return _send(_state["reads"][product_id], enabled)


def _write(enabled: bool) -> Sample:
    product_id = _first()
    _send(_state["reads"][product_id], enabled)
    return _send(_state["writes"][product_id], enabled)


def _mix(enabled: bool) -> Sample:
    products = list(_state["hot"])
    for product_id in products:  # warm: every page cached before the run
        _send(_state["reads"][product_id], enabled)
    order = random.Random(MIX_SEED)  # the same sequence every run, off and on
    reads, writes, misses, statuses = [], [], 0, set()
    started = perf_counter()
    for i in range(MIX_REQUESTS):
        product_id = order.choice(products)
        if i % 10 == 0:
            sample = _send(_state["writes"][product_id], enabled)
            writes.append(sample.ms)
        else:
            sample = _send(_state["reads"][product_id], enabled)
            reads.append(sample.ms)
            misses += _rebuilt(sample)
        statuses.add(sample.status)
    wall_ms = (perf_counter() - started) * 1000
    return Sample(
        ms=wall_ms,
        queries={},
        bytes=0,
        status=max(statuses),
        answer={"statuses": sorted(statuses)},
        metrics={
            READ_MISS_RATE_PCT: round(100 * misses / len(reads), 1),
            READ_P50_MS: round(statistics.median(reads), 2),
            READ_P95_MS: round(percentile(reads, 0.95), 2),
            WRITE_P50_MS: round(statistics.median(writes), 2),
            WRITE_P95_MS: round(percentile(writes, 0.95), 2),
        },
    )


def _rebuilt(sample: Sample) -> bool:
    """A read that missed and built its page: it ran queries (a hit runs none)."""
    return sum(sample.queries.values()) > 0


SCENARIO = Scenario(
    name="write_through",
    title="a product page read right after a staff price change",
    prepare=_prepare,
    run=_read_after_write,
    path="PATCH /api/staff/variants/<id>/ (untimed), then GET /api/products/<id>/",
    hold=holds.WRITE_THROUGH,
    targets=(
        Target("on.queries", at_most=0, label="queries of the read after a write, on"),
        Target(
            f"off.metrics.{CACHE_MISSES}.p50", at_least=1, label="cache misses of that read, off"
        ),
    ),
    notes=(
        "Off the write deleted the page's entry, so this read rebuilds it; on the write stored "
        "it, so this read is a hit. Each write sets the price the variant already has."
    ),
)

EXTRA_SCENARIOS = [
    Scenario(
        name="write_through",
        title="the staff price change itself",
        prepare=_prepare,
        run=_write,
        path="PATCH /api/staff/variants/<id>/ (its product's page cached)",
        hold=holds.WRITE_THROUGH,
        notes="On, the write reads its product's page back under a row lock and stores it; off "
        "it deletes the entry. What write-through costs the writer.",
    ),
    Scenario(
        name="write_through",
        title="9 reads to 1 write over 10 hot product pages",
        prepare=_prepare,
        run=_mix,
        path="GET /api/products/<id>/ x90, PATCH /api/staff/variants/<id>/ x10",
        repeat=10,
        hold=holds.WRITE_THROUGH,
        targets=(
            Target(f"on.metrics.{READ_MISS_RATE_PCT}.max", at_most=0, label="read miss rate, on"),
        ),
        notes="A run is 100 requests in a fixed random order; its time is theirs. The reads' "
        "miss rate and p50/p95, and the writes', are its metrics.",
    ),
]
