"""A product page view and the write it costs: one `UPDATE` committed per view (off) against
one `HINCRBY` in Redis (on); and what counting 1,000 views costs PostgreSQL in all, the flush
included.

The page pair holds cache_aside on: the page is served from the cache on both sides (after the
warm-up), which is where a view counter hurts most, since the counting is then the only
database statement the page runs; and http_caching off (its validator read is not the pair's,
and a 304 would skip the page's build). Each side must count the view: the answer is the body plus
the views the request added to PostgreSQL and to Redis together (1 on both sides), and the
counts beyond queries say where each went.

The batch pair counts VIEWS views over PRODUCTS products with `count_view()` (no request) and
ends with them in PostgreSQL: off, VIEWS UPDATEs, each its own commit; on, VIEWS HINCRBYs and one
`flush()` (the cut, one transaction with the ledger row and one UPDATE for every product, the
drop). The answer is what PostgreSQL gained, product by product; `flush_ms` is the flush alone.

A view is a write, so the bench's views stay counted, like anyone's: `after()` flushes those
still in Redis (the beat task is not running in the bench process).
"""

from __future__ import annotations

from time import perf_counter

import redis
from django.http import HttpResponse

from catalog.models import Product
from shop import toggles
from shop.bench import holds
from shop.bench.measure import BenchError, QueryCounter, default_answer
from shop.bench.samples import Sample
from shop.bench.scenario import Call, Scenario
from shop.bench.targets import Target
from shop.techniques import write_behind

TECHNIQUE = "write_behind"
VIEWS = 1000
PRODUCTS = 100
VIEWS_IN_POSTGRESQL = "views_in_postgresql"
VIEWS_IN_REDIS = "views_in_redis"
FLUSH_MS = "flush_ms"

_state: dict = {}


def _counts(product_ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """The products' view counts in PostgreSQL and waiting in Redis."""
    stored = dict(Product.objects.filter(pk__in=product_ids).values_list("pk", "view_count"))
    waiting = write_behind.waiting()
    return stored, {pk: waiting.get(pk, 0) for pk in product_ids}


# --- the page --------------------------------------------------------------------------------


def _page_prepare() -> None:
    product = Product.objects.filter(is_active=True).order_by("id").values_list("pk").first()
    if product is None:
        raise BenchError("write_behind needs products: seed the database first")
    _state["product"] = product[0]
    _state["last"] = _counts([product[0]])


def _page_answer(response: HttpResponse) -> dict:
    """The body, and the views this request counted (PostgreSQL and Redis together)."""
    pk = _state["product"]
    (stored, waiting), (stored_before, waiting_before) = _counts([pk]), _state["last"]
    _state["last"] = (stored, waiting)
    _state["added"] = {
        VIEWS_IN_POSTGRESQL: stored[pk] - stored_before[pk],
        VIEWS_IN_REDIS: waiting[pk] - waiting_before[pk],
    }
    return {"body": default_answer(response), "views counted": sum(_state["added"].values())}


def _page_metrics(response: HttpResponse) -> dict[str, float]:
    return dict(_state.pop("added", {}))


# --- VIEWS views, into PostgreSQL ------------------------------------------------------------


def _batch_prepare() -> None:
    ids = list(Product.objects.filter(is_active=True).order_by("id").values_list("pk", flat=True))[
        :PRODUCTS
    ]
    if len(ids) < PRODUCTS:
        raise BenchError(f"write_behind needs {PRODUCTS} products: seed the database first")
    _state["batch"] = ids
    # Views already waiting (the page pair's, any request's) go into PostgreSQL first, as
    # the next beat tick would put them: the on side's flushes then add its own views only.
    write_behind.flush()


def _batch(enabled: bool) -> Sample:
    ids = _state["batch"]
    stored_before, _ = _counts(ids)
    flush_ms = 0.0
    with toggles.override(write_behind=enabled), QueryCounter() as counter:
        started = perf_counter()
        for n in range(VIEWS):
            write_behind.count_view(product_id=ids[n % PRODUCTS])
        if enabled:
            flushing = perf_counter()
            write_behind.flush()
            flush_ms = (perf_counter() - flushing) * 1000
        elapsed_ms = (perf_counter() - started) * 1000
    stored, waiting = _counts(ids)
    return Sample(
        ms=elapsed_ms,
        db_ms=counter.db_seconds * 1000,
        queries=dict(counter.counts),
        db_statements=counter.statement_ms(),
        bytes=0,
        status=200,
        answer={
            "added in PostgreSQL": {pk: stored[pk] - stored_before[pk] for pk in ids},
            "left in Redis": sum(waiting.values()),
        },
        metrics={FLUSH_MS: round(flush_ms, 3)},
    )


def after() -> list[str]:
    """Flush the views the runs left in Redis, so they are counted like anyone's. Redis down
    (the bench calls this at its start too): they wait there for the next flush."""
    write_behind.reset()
    try:
        done = write_behind.flush()
    except redis.RedisError as exc:
        return [f"could not flush the views waiting in Redis: {exc}"]
    return [f"flushed {done.views} views left in Redis"] if done.views else []


SCENARIO = Scenario(
    name=TECHNIQUE,
    title="a product page view, counted (page from the cache)",
    prepare=_page_prepare,
    call=lambda: Call("GET", f"/api/products/{_state['product']}/"),
    answer=_page_answer,
    metrics=_page_metrics,
    hold=holds.WRITE_BEHIND,
    notes=(
        "Off commits one UPDATE per view, on the cached page's otherwise database-free path; on "
        "counts it with one HINCRBY, in PostgreSQL after the next flush (up to "
        "WRITE_BEHIND_FLUSH_EVERY_S later). The answer includes the view counted: 1 both sides."
    ),
    targets=(
        Target(f"on.metrics.{VIEWS_IN_POSTGRESQL}.total", at_most=0, label="DB writes a view, on"),
        Target(f"off.metrics.{VIEWS_IN_POSTGRESQL}.p50", at_least=1, label="DB writes, off"),
    ),
)

EXTRA_SCENARIOS = [
    Scenario(
        name=TECHNIQUE,
        title=f"{VIEWS:,} views of {PRODUCTS} products, into PostgreSQL",
        prepare=_batch_prepare,
        run=_batch,
        path=f"CALL write_behind.count_view() x {VIEWS:,} (on: + flush())",
        notes=(
            f"Off, {VIEWS:,} UPDATEs, each committed; on, {VIEWS:,} HINCRBYs and one flush: the "
            "cut, one transaction (the ledger row, one UPDATE ... FROM unnest() for every "
            "product, the ledger's pruning) and the drop. Same counts added either way."
        ),
        targets=(Target("on.queries", at_most=5, label=f"statements for {VIEWS:,} views, on"),),
    ),
]
