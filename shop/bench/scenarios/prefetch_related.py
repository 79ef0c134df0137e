"""The order history's first page: 50 orders with their items, for the customer with the most
orders (402 on the medium data set)."""

from orders.models import Order
from orders.selectors import busiest_customer
from shop.bench import holds, sweep_pages
from shop.bench.dataset import busiest_username
from shop.bench.scenario import Call, Scenario
from shop.bench.statements import expect, lazy_sql, sent
from shop.bench.sweep import Sweep

TECHNIQUE = "prefetch_related"
# The naive code is lazy model access: the serializer reads `order.items.all()` and Django
# runs `SELECT ... WHERE order_id = %s` for it. fast_serialization (on by default) would stand
# in for that with its own per-row values() query (and, on, an `= ANY(array)` query instead of
# Django's prefetch), so it is held off: both sides build model instances and go through DRF's
# serializer, and only the prefetch differs.
HOLD = holds.PREFETCH_RELATED


def _call(page_size: int = 50) -> Call:
    return Call("GET", f"/api/orders/?page_size={page_size}", user=busiest_username())


def _prepare(page_size: int = 50) -> None:
    """Off must send one lazy items query per order on the page; on, none of them."""
    order = Order.objects.first()
    if order is None:
        return  # no orders: both sides send the same query, nothing to verify
    lazy = lazy_sql(order, "items")
    off = sent(_call(page_size), {**HOLD, TECHNIQUE: False})
    on = sent(_call(page_size), {**HOLD, TECHNIQUE: True})
    expect(off.times(lazy) == off.rows, TECHNIQUE, f"off sent {off.times(lazy)} of {lazy!r}")
    expect(on.times(lazy) == 0, TECHNIQUE, f"on still sent {lazy!r}")
    expect(
        len(off.statements) == len(on.statements) - 1 + off.rows,
        TECHNIQUE,
        f"off sent {len(off.statements)} queries, on {len(on.statements)}: not 1 + N against 2",
    )


SCENARIO = Scenario(
    name=TECHNIQUE,
    title="order history, 50 orders with their items",
    prepare=_prepare,
    call=_call,
    hold=HOLD,
    notes="fast_serialization is held off: its values() path would replace the lazy "
    "`order.items.all()` that is the naive code here. Checked before timing: off sends one "
    "items query per order.",
)


# --- the sweep: pages of 10, 50 and 200 orders -----------------------------------------------
# Off sends one items query an order, so its cost grows linearly with the page; on sends the
# same two queries at any page size: its database time stays nearly flat, and its p50 grows
# only with the rows serialized.


def _scenario_at(page_size: int) -> Scenario:
    # 200 is past the API's 100: see sweep_pages.
    return sweep_pages.page_scenario(
        SCENARIO,
        page_size,
        title=f"order history, {page_size} orders with their items",
        call=_call,
        prepare=_prepare,
    )


def _fit(page_size: int) -> int | None:
    """A full page of the busiest customer's orders, or the point is skipped."""
    busiest = busiest_customer()
    return page_size if busiest is not None and busiest[1] >= page_size else None


def after() -> list[str]:
    return sweep_pages.restore_cap()


SWEEP = Sweep(
    axis="page size (orders)",
    points=(10, 50, 200),
    scenario_at=_scenario_at,
    fit=_fit,
    shape="off: linear in the page size (a query an order); on: database time nearly flat "
    "(2 queries), the p50 growing only with the rows serialized",
)
